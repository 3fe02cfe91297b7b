"""Child processes the daemon keeps alive: one per camera, and the Flower SuperNode.

Why processes and not threads: OpenCV's FFmpeg backend and torch (loaded by
the ClientApp the SuperNode starts) are native code and heavy imports; a
crashed decoder or a training run must not take the daemon down, and the
daemon itself stays small (no torch, no cv2 decode buffers). Each child runs in
its own process group, is restarted with exponential backoff when it dies, and
is stopped with SIGTERM (SIGKILL after a grace period) when the daemon stops.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("edge_agent.children")


@dataclass
class ChildState:
    name: str
    state: str = "starting"  # starting, running, restarting, finished, stopped
    pid: int | None = None
    restarts: int = 0
    last_exit: int | None = None
    since: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class SupervisedChild:
    """Runs `argv` until stopped; restarts it on failure (and, unless `finite`, on any exit)."""

    def __init__(self, name: str, argv: list[str], stop: threading.Event, *, env: dict[str, str] | None = None,
                 finite: bool = False, log_path: Path | None = None, backoff: tuple[float, float] = (1.0, 60.0),
                 grace_seconds: float = 20.0, pid_file: Path | None = None):
        self.name = name
        self.argv = argv
        self.stop = stop
        self.env = env
        self.finite = finite  # a video file ends; a camera or a SuperNode should not
        self.log_path = log_path
        self.backoff = backoff
        self.grace_seconds = grace_seconds
        self.pid_file = pid_file
        self.status = ChildState(name)
        self.process: subprocess.Popen[bytes] | None = None
        self.thread = threading.Thread(target=self._run, name=f"child-{name}", daemon=True)

    def start(self) -> None:
        self.reap_orphan()
        self.thread.start()

    def _set(self, state: str) -> None:
        if state != self.status.state:
            self.status.state, self.status.since = state, time.time()
            log.info("%s is %s", self.name, state, extra={"child": self.name, "state": state})

    def _spawn(self) -> subprocess.Popen[bytes]:
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            return subprocess.Popen(self.argv, stdout=output, stderr=subprocess.STDOUT, env=self.env,
                                    start_new_session=True)
        finally:
            if self.log_path:
                output.close()  # type: ignore[union-attr]

    def _run(self) -> None:
        delay = self.backoff[0]
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                self.process = self._spawn()
            except OSError as exc:
                log.error("%s cannot start: %s", self.name, exc, extra={"child": self.name})
                self._set("restarting")
                if self.stop.wait(delay):
                    break
                delay = min(delay * 2, self.backoff[1])
                continue
            self.status.pid = self.process.pid
            if self.pid_file is not None:
                self.pid_file.write_text(str(self.process.pid))
            self._set("running")
            while self.process.poll() is None:
                if self.stop.wait(0.5):
                    self.terminate()
                    self._set("stopped")
                    return
            code = self.process.returncode
            self.status.last_exit, self.status.pid = code, None
            if code == 0 and self.finite:
                self._set("finished")
                return
            if time.monotonic() - started > 60:
                delay = self.backoff[0]  # it ran a while: this is a new failure, not a crash loop
            self.status.restarts += 1
            log.warning("%s exited with %s; restarting in %.0f s", self.name, code, delay,
                        extra={"child": self.name, "exit_code": code})
            self._set("restarting")
            if self.stop.wait(delay):
                break
            delay = min(delay * 2, self.backoff[1])
        self._set("stopped")

    def reap_orphan(self) -> bool:
        """A child left running by a daemon that was killed (no service manager to clean up):
        stop it before starting ours, or two would count the same camera."""
        if self.pid_file is None or not self.pid_file.exists():
            return False
        try:
            pid = int(self.pid_file.read_text())
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            return False
        ours = all(part in command for part in (Path(self.argv[0]).name, self.argv[1]))
        try:
            leader = os.getpgid(pid) == pid  # our children lead their own process group
        except ProcessLookupError:
            return False
        if not ours or not leader:
            return False  # the pid was reused by something else
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        deadline = time.monotonic() + self.grace_seconds
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if Path(f"/proc/{pid}").exists():
            os.killpg(pid, signal.SIGKILL)
        log.warning("stopped %s left running by an earlier daemon (pid %d)", self.name, pid)
        return True

    def terminate(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=self.grace_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            pass

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)
