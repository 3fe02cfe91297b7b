"""A Flower deployment on this machine over local store databases: a SuperLink and a SuperNode per store.

Real `flower-superlink` and `flower-supernode` processes on loopback ports
(no TLS: nothing leaves the machine), each with its own FLWR_HOME, so that
`churn-server backtest --mode federated` and the federation benchmark exercise
the deployment engine the stores run, not an in-process imitation. Everything
started, including what Flower starts in its own process groups (SuperExec,
ServerApp, ClientApps), is stopped on exit, on error and on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from models.flower_protocol import SUPEREXEC_ENV, Node

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A loopback port free right now (the OS picks it); shared by the demo and the tests."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, seconds: float = 20.0) -> None:
    """Until something accepts connections on 127.0.0.1:`port`; TimeoutError after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {seconds:.0f} s")


def _children_map() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc (Flower's SuperExec starts its own process groups)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def _tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    children, found, queue = _children_map(), [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class Processes:
    """Every process a deployment starts, and whatever those start (SuperExec, ServerApp, ClientApps)."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, command: list[str], folder: Path) -> subprocess.Popen[bytes]:
        folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "FLWR_HOME": str(folder / "home"), "FLWR_TELEMETRY_ENABLED": "0", **SUPEREXEC_ENV,
               "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        with open(folder / "process.log", "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        """Children first (so their parents can still reap them), then the services; SIGKILL after 10 s."""
        roots = [process.pid for process in self.started]
        pids = [pid for root in roots for pid in _tree(root)]
        _signal([pid for pid in pids if pid not in roots], signal.SIGTERM)
        self._wait(pids, roots, 5)
        _signal(roots, signal.SIGTERM)
        self._wait(pids, [], 10)
        _signal([pid for pid in pids if _alive(pid)], signal.SIGKILL)
        for process in self.started:
            process.wait()
        self.started.clear()

    def _wait(self, pids: list[int], exempt: list[int], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while any(_alive(pid) for pid in pids if pid not in exempt) and time.monotonic() < deadline:
            for process in self.started:
                process.poll()  # reap our own children
            time.sleep(0.2)



class LocalDeployment:
    """`with LocalDeployment(dbs, folder) as deployment:` gives a SuperLink at `deployment.address`."""

    def __init__(self, db_paths: list[Path], folder: Path, threads: int = 1, start_seconds: float = 60.0):
        self.db_paths, self.folder, self.threads, self.start_seconds = db_paths, folder, threads, start_seconds
        self.processes = Processes()
        self.address = ""
        self._previous_handler: Any = None

    def __enter__(self) -> LocalDeployment:
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            self.address = self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.processes.stop_all()
        if self._previous_handler is not None:
            signal.signal(signal.SIGTERM, self._previous_handler)
            self._previous_handler = None

    def _on_sigterm(self, signum: int, frame: object) -> None:
        """Stop the services before unwinding: the runner waits on `flwr run`, which ends once they are gone."""
        self.processes.stop_all()
        raise KeyboardInterrupt

    def _start(self) -> str:
        """An insecure SuperLink on loopback and one SuperNode per store database; returns its address."""
        port = free_port()
        self.processes.start(
            [str(VENV_BIN / "flower-superlink"), "--insecure", "--host", "127.0.0.1", "--port", str(port),
             "--database", str(self.folder / "superlink" / "state.db"), "--disable-runtime-dependency-installation"],
            self.folder / "superlink")
        wait_for_port(port, self.start_seconds)
        for index, db in enumerate(self.db_paths):
            self.processes.start(
                [str(VENV_BIN / "flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{port}",
                 "--port", str(free_port()), "--node-config", f'{Node.STORE_DB}="{db.resolve()}" {Node.THREADS}={self.threads}'],
                self.folder / f"supernode-{index:02d}-{db.stem}")
        return f"127.0.0.1:{port}"
