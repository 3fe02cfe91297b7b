"""`churn-server console` as an operator runs it: a real process on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from server.processes import VENV_BIN, free_port, kill_group, wait_for_port


@dataclass
class ConsoleProcess:
    db: str
    folder: Path
    extra_args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.folder / f"console-{self.port}.log"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def start(self) -> ConsoleProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "churn-server"), "console", "--db", self.db, "--port", str(self.port),
                 *self.extra_args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(self.port, 20)
        except TimeoutError:
            self.kill()
            raise AssertionError(f"the console did not start:\n{self.log()}") from None
        return self

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; return its exit status."""
        assert self.process is not None
        process, self.process = self.process, None
        os.killpg(process.pid, signal.SIGTERM)
        return process.wait(timeout=20)

    def kill(self) -> None:
        if self.process is not None:
            kill_group(self.process)
            self.process = None
