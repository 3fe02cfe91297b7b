"""Ctrl-C stops every long-running command, even one started as a background job (`make test &`, nohup).

Such a job inherits SIGINT as ignored, and Python keeps it ignored unless the
command installs its own handler. Each command here is started that way,
given time to get going, then sent SIGINT: it must stop promptly.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from server.central import open_central_db
from server.pki import create_ca, server_certificate
from server.processes import VENV_BIN, free_port, kill_group, wait_for_port

pytestmark = pytest.mark.integration


def _as_a_background_job() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def simulate(tmp_path: Path) -> tuple[list[str], Callable[[], None]]:
    out = tmp_path / "chain"
    argv = ["churn-server", "simulate", "--stores", "40", "--customers-per-store", "5000", "--days", "700",
            "--seed", "1", "--out", str(out)]

    def ready() -> None:
        assert out.exists(), "not writing yet"
        time.sleep(1.0)  # well into its work

    return argv, ready


def console(tmp_path: Path) -> tuple[list[str], Callable[[], None]]:
    db, port = tmp_path / "central.db", free_port()
    open_central_db(str(db)).close()
    return ["churn-server", "console", "--db", str(db), "--port", str(port)], lambda: wait_for_port(port, 30)


def gateway(tmp_path: Path) -> tuple[list[str], Callable[[], None]]:
    pki, port = tmp_path / "pki", free_port()
    create_ca(pki, "Demo Retail")
    server_certificate(pki, "superlink", ["127.0.0.1"])
    return (["churn-server", "fleet-gateway", "--superlink", f"127.0.0.1:{free_port()}", "--host", "127.0.0.1",
             "--port", str(port), "--ssl-certfile", str(pki / "superlink.crt"), "--ssl-keyfile",
             str(pki / "superlink.key"), "--ca-file", str(pki / "ca.crt")], lambda: wait_for_port(port, 30))


def daemon(tmp_path: Path) -> tuple[list[str], Callable[[], None]]:
    config, data = tmp_path / "edge-agent.toml", tmp_path / "data"
    config.write_text(f'[store]\nchain = "demo"\nstore_id = "s1"\ndata_dir = "{data}"\n[daemon]\nhttp_port = 0\n')
    port_file = data / "run" / "http.port"

    def ready() -> None:
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert time.monotonic() < deadline, "the daemon did not start"
            time.sleep(0.1)

    return ["edge-agent", "run", "--config", str(config)], ready


@pytest.mark.parametrize("command", [simulate, console, gateway, daemon], ids=lambda c: c.__name__)
def test_sigint_stops_a_command_started_with_sigint_ignored(
        command: Callable[[Path], tuple[list[str], Callable[[], None]]], tmp_path: Path) -> None:
    argv, ready = command(tmp_path)
    process = subprocess.Popen([str(VENV_BIN / argv[0]), *argv[1:]], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_as_a_background_job)
    try:
        deadline = time.monotonic() + 60
        while True:  # until it is at work
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                ready()
                break
            except (TimeoutError, AssertionError):
                assert time.monotonic() < deadline, "the command never got going"
                time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            kill_group(process)
            pytest.fail(f"{argv[0]} {argv[1]} ignored Ctrl-C")
