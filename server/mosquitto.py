"""A Mosquitto broker run as a child process: the demo's, the tests' and the benchmarks' one starter.

Production brokers run under systemd on `firmware_configs/mosquitto`; this is
for a broker on this machine's loopback, in its own folder, that its starter
can stop cleanly (SIGTERM: the persistence file is written), crash (SIGKILL)
and restart on the same port. The configuration is either the loopback one
written here or a whole file given (the demo's shipped configuration).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .processes import end_group, free_port, kill_group, wait_for_port

MOSQUITTO = "/usr/sbin/mosquitto"


def keep_root_user(config: str) -> str:
    """Started as root, Mosquitto drops to its own user, which cannot write a folder of ours (no log, no
    persistence file to survive a restart with): so as root it stays root, unless the file names a user."""
    if os.geteuid() == 0 and not any(line.startswith("user ") for line in config.splitlines()):
        return config.rstrip("\n") + "\nuser root\n"
    return config


def loopback_config(folder: Path, port: int, persistence: bool = True, log_types: Sequence[str] = ("all",),
                    nodelay: bool = False, extra: str = "") -> str:
    """One listener on 127.0.0.1:`port`, state and log in `folder`; anonymous unless `extra` says otherwise."""
    lines = [
        f"listener {port} 127.0.0.1",
        f"persistence {'true' if persistence else 'false'}",
        f"persistence_location {folder}/",
        # As shipped: Mosquitto's default (1000) drops QoS 1 messages queued for a slow aggregator,
        # which the stores would then only resend after `resend_after`.
        "max_queued_messages 100000",
        f"log_dest file {folder / 'mosquitto.log'}",
        *(f"log_type {kind}" for kind in log_types),
    ]
    if nodelay:
        lines.append("set_tcp_nodelay true")
    if "allow_anonymous" not in extra and "password_file" not in extra:
        lines.append("allow_anonymous true")
    return keep_root_user("\n".join(lines) + "\n" + extra + "\n")


@dataclass
class Mosquitto:
    """A private broker in `folder`. Its configuration is `config_text` when given (a whole file), else the
    loopback one with `extra` appended; `port` is where clients connect, `also_wait_for` other listeners."""

    folder: Path
    extra: str = ""
    port: int = field(default_factory=free_port)
    persistence: bool = True
    log_types: Sequence[str] = ("all",)
    nodelay: bool = False
    config_text: str | None = None
    also_wait_for: Sequence[int] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Where Mosquitto's own stdout and stderr go (its log file is set in the configuration)."""
        return self.folder / "mosquitto.out"

    def config(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        text = self.config_text if self.config_text is not None else loopback_config(
            self.folder, self.port, self.persistence, self.log_types, self.nodelay, self.extra)
        path = self.folder / "mosquitto.conf"
        path.write_text(text)
        return path

    def start(self, seconds: float = 30.0) -> Mosquitto:
        config = self.config()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        try:
            for port in (self.port, *self.also_wait_for):
                wait_for_port(port, seconds, self.process)
        except (TimeoutError, RuntimeError):
            self.kill()
            raise
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """A crash: nothing written on the way out."""
        if self.process is not None:
            kill_group(self.process)
            self.process = None

    def stop(self) -> None:
        """A clean stop: Mosquitto writes its persistence file on the way out."""
        if self.process is not None:
            end_group(self.process, signal.SIGTERM, grace=10.0)
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()
