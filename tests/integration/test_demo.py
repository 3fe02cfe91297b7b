"""`make demo`, reduced (two stores, two rounds): the whole system end to end, checked through the console's API."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from demo.chain import DemoSpec
from demo.console_client import ConsoleClient
from demo.run import run_demo
from tests.browser import chromium, severe_errors, visit_every_view
from tests.server.console.process import ConsoleProcess

pytestmark = pytest.mark.integration


def our_processes(marker: str) -> list[str]:
    """Command lines of the processes still running with `marker` in them."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in command:
                found.append(command)
    return found


@pytest.mark.timeout(600)  # the whole system end to end: minutes on a busy 2-core machine, bounded inside
def test_reduced_demo_delivers_every_alert_to_the_console_and_stops_everything(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = run_demo(DemoSpec(stores=2, customers=400, days=450, rounds=2, clip_seconds=15), out, quiet=True)

    assert [r["round"] for r in result.federation["rounds"]] == [1, 2]  # type: ignore[index]
    assert all(len(r["trained"]) == 2 for r in result.federation["rounds"])  # type: ignore[index]
    by_store = {o.store_id: o for o in result.outcomes}
    assert set(by_store) == {"store-01", "store-02"}
    for outcome in result.outcomes:
        assert outcome.on_box > 0 and outcome.unacked == 0
        assert outcome.model_version == result.federation["manifest"]["version"]  # type: ignore[index]
    # Every alert recorded on a box reached the console's API exactly once, with the contract's fields.
    assert len(result.alerts) == sum(o.on_box for o in result.outcomes)
    assert len({a["alert_id"] for a in result.alerts}) == len(result.alerts)
    assert {a["level"] for a in result.alerts} <= {"orange", "red", "purple"}
    assert all(a["reasons"] and a["model_version"] == result.federation["manifest"]["version"]  # type: ignore[index]
               for a in result.alerts)
    # The camera clips were counted on the boxes.
    assert all(o.camera is not None and sum(o.camera) > 0 for o in result.outcomes)
    # The summary the operator reads: AUC per round and the comparison, alerts per store, delivery.
    assert "error" not in result.backtests.get("local", {}) and "error" not in result.backtests.get("centralized", {})
    screen = Console(width=160, record=True, file=io.StringIO())
    screen.print(result.summary())
    text = screen.export_text()
    assert "round 2" in text and "alone" in text and "pooled" in text
    for outcome in result.outcomes:
        assert re.search(rf"{outcome.store_id} .*\b{outcome.on_box}\b.*\b{outcome.on_box}\b", text), text
    # Nothing the demo started is left running.
    assert our_processes(str(out)) == []
    with pytest.raises(OSError):
        ConsoleClient(result.console_url).login(result.username, result.password)
    # Every page of the console opens on what the demo left (a federation without differential privacy...).
    console = ConsoleProcess(str(out / "central" / "central.db"), tmp_path).start()
    try:
        for browser in chromium():
            views = visit_every_view(browser, console.url, result.username, result.password)
            assert views == ["alerts", "stores", "footfall", "quality", "results", "rounds", "users"]
            assert severe_errors(browser) == []
    finally:
        console.kill()


def _as_a_background_job() -> None:
    """What `make demo &` (or `make test &`) does to a job: it starts with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_ctrl_c_stops_every_process_the_demo_started(tmp_path: Path) -> None:
    out = tmp_path / "demo"  # given relative, as `make demo` gives its default
    process = subprocess.Popen([sys.executable, "-m", "demo", "--out", "demo", "--stores", "2", "--customers", "300",
                                "--rounds", "1"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True, preexec_fn=_as_a_background_job)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not any("edge-agent run" in c for c in our_processes(str(out))):
            time.sleep(0.5)
        assert any("flower-superlink" in c for c in our_processes(str(out)))
        assert any("edge-agent run" in c for c in our_processes(str(out)))
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=120)[0].decode()
        assert process.returncode == 130, output[-2000:]
        assert "stopping every process" in output
        assert our_processes(str(out)) == []
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
