"""Starting the system's processes on one machine and stopping every one of them, whatever happens.

Each process runs in its own session (so a stop reaches whatever it spawned:
a daemon's camera and SuperNode children, a SuperNode's ClientApps), writes
to its own log file, and is registered before anything else can fail. `stop_all`
sends SIGTERM to each group, waits, then SIGKILLs what is left, and does the same
to what a process started outside its group (the SuperLink's SuperExec); it runs
on a normal exit, on an error and on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from server.processes import VENV_BIN, end_tree

__all__ = ["VENV_BIN", "DemoError", "ProcessGroup", "Service", "run_command", "wait_for"]


class DemoError(Exception):
    """A step of the demo failed; the message says which and where its log is."""


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class ProcessGroup:
    """Every long-running process the demo started, in start order."""

    logs: Path
    env: dict[str, str] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> Service:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with open(log, "ab") as output:
            process = subprocess.Popen(list(argv), stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
                                       env={**os.environ, **self.env, **(env or {})})
        return self.adopt(name, process, log)

    def adopt(self, name: str, process: subprocess.Popen[bytes], log: Path) -> Service:
        """A process started elsewhere (in its own session) that this group stops with the others."""
        service = Service(name, process, log)
        self.services.append(service)
        return service

    def check(self) -> None:
        """Fail early, with its log, if a service died."""
        for service in self.services:
            if not service.alive():
                raise DemoError(f"{service.name} exited with {service.process.returncode}; its log "
                                f"({service.log}) ends with:\n{service.tail()}")

    def stop_all(self, keep: Callable[[Service], bool] = lambda _s: False) -> None:
        """Stop in reverse start order (daemons before the broker they say goodbye to). A stop that fails or
        is interrupted (a second Ctrl-C, a test's timeout) SIGKILLs that service and goes on with the others;
        the first such error is raised once every one has been stopped."""
        first_error: BaseException | None = None
        for service in reversed(self.services):
            if keep(service):
                continue
            try:
                end_tree(service.process)
            except BaseException as exc:  # noqa: BLE001 (nothing may stay running: raised after the others)
                first_error = first_error or exc
                with contextlib.suppress(Exception):
                    end_tree(service.process, signal.SIGKILL, grace=5.0)
        self.services = [s for s in self.services if keep(s)]
        if first_error is not None:
            raise first_error


def wait_for(check: Callable[[], object], seconds: float, what: str, group: ProcessGroup | None = None,
             every: float = 0.5) -> object:
    """Poll `check` until it returns something true; a dead service or the deadline is a DemoError."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if group is not None:
            group.check()
        try:
            value = check()
        except (OSError, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(every)
    raise DemoError(f"{what} did not happen within {seconds:.0f} s")


def run_command(argv: Sequence[str], log: Path, env: dict[str, str] | None = None, timeout: float = 900,
                stdin: str | None = None) -> str:
    """Run a command to its end; its stdout is returned, its stderr appended to `log`; failure → DemoError."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as errors:
        result = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=errors, input=stdin.encode() if stdin else None,
                                timeout=timeout, env={**os.environ, **(env or {})})
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-8:])
        raise DemoError(f"{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''} failed "
                        f"(exit {result.returncode}); {log} ends with:\n{tail}")
    return result.stdout.decode()
