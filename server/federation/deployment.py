"""A Flower deployment on this machine over local store databases: a SuperLink and a SuperNode per store.

Real `flower-superlink` and `flower-supernode` processes on loopback ports
(no TLS: nothing leaves the machine), each with its own FLWR_HOME, so that
`churn-server backtest --mode federated` and the federation benchmark exercise
the deployment engine the stores run, not an in-process imitation. Everything
started, including what Flower starts in its own process groups (SuperExec,
ServerApp, ClientApps), is stopped on exit, on error and on Ctrl-C.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from models.flower_protocol import Node

from ..processes import VENV_BIN, free_port, pid_alive, process_tree, signal_pids
from .superlink import SuperLinkProcess, flower_env


class Processes:
    """Every process a deployment starts, and whatever those start (SuperExec, ServerApp, ClientApps)."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, command: list[str], folder: Path) -> subprocess.Popen[bytes]:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "process.log", "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=flower_env(folder / "home"),
                                       start_new_session=True)
        return self.adopt(process)

    def adopt(self, process: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        """Stop `process` (started elsewhere, in its own session) with the others."""
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        """Children first (so their parents can still reap them), then the services; SIGKILL after 10 s."""
        roots = [process.pid for process in self.started]
        pids = [pid for root in roots for pid in process_tree(root)]
        signal_pids([pid for pid in pids if pid not in roots], signal.SIGTERM)
        self._wait(pids, roots, 5)
        signal_pids(roots, signal.SIGTERM)
        self._wait(pids, [], 10)
        signal_pids([pid for pid in pids if pid_alive(pid)], signal.SIGKILL)
        for process in self.started:
            process.wait()
        self.started.clear()

    def _wait(self, pids: list[int], exempt: list[int], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while any(pid_alive(pid) for pid in pids if pid not in exempt) and time.monotonic() < deadline:
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
        superlink = SuperLinkProcess(self.folder / "superlink").start(self.start_seconds)  # stops itself if it fails
        assert superlink.process is not None
        self.processes.adopt(superlink.process)
        port = superlink.port
        for index, db in enumerate(self.db_paths):
            self.processes.start(
                [str(VENV_BIN / "flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{port}",
                 "--port", str(free_port()), "--node-config", f'{Node.STORE_DB}="{db.resolve()}" {Node.THREADS}={self.threads}'],
                self.folder / f"supernode-{index:02d}-{db.stem}")
        return f"127.0.0.1:{port}"
