"""A Flower SuperLink run as a child process: the one starter for the demo, the tests and local deployments.

On loopback only (its Control API with it), its state in a database so a
restart keeps the registered nodes. With a `pki` folder it runs as shipped
(firmware_configs/systemd/flower-superlink.service): TLS with the chain's CA
and SuperNode authentication; without one, insecure, for deployments whose
every process is on this machine (`churn-server backtest --mode federated`).
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from models.flower_protocol import SUPEREXEC_ENV

from ..processes import VENV_BIN, end_group, end_tree, free_port, kill_group, wait_for_port


def flower_env(flwr_home: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a Flower process: its own FLWR_HOME, no telemetry, this install's scripts first."""
    env = dict(os.environ if base is None else base)
    env.update({"FLWR_HOME": str(flwr_home), "FLWR_TELEMETRY_ENABLED": "0", **SUPEREXEC_ENV,
                "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"})
    return env


@dataclass
class SuperLinkProcess:
    """`flower-superlink` on 127.0.0.1:`port`, its state, FLWR_HOME and log in `folder`."""

    folder: Path
    pki: Path | None = None  # ca.crt, superlink.crt and superlink.key; None: insecure
    port: int = field(default_factory=free_port)
    log_path: Path | None = None  # default: folder/superlink.log
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        argv = [str(VENV_BIN / "flower-superlink"), "--host", "127.0.0.1", "--port", str(self.port),
                "--database", str(self.folder / "state.db"), "--disable-runtime-dependency-installation"]
        if self.pki is None:
            return [*argv, "--insecure"]
        return [*argv, "--ssl-ca-certfile", str(self.pki / "ca.crt"), "--ssl-certfile", str(self.pki / "superlink.crt"),
                "--ssl-keyfile", str(self.pki / "superlink.key"), "--enable-supernode-auth"]

    def start(self, seconds: float = 60.0) -> SuperLinkProcess:
        """Start it and return once it listens; a SuperLink that exits or never listens is stopped and raised."""
        self.folder.mkdir(parents=True, exist_ok=True)
        log_path = self.log_path or self.folder / "superlink.log"
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            env=flower_env(self.folder / "home"), start_new_session=True)
        try:
            wait_for_port(self.port, seconds, self.process)
        except (TimeoutError, RuntimeError):
            self.kill()
            raise
        return self

    def kill(self) -> None:
        """A crash of the central server: the SuperLink and what it started (its SuperExec, which detaches
        into a session of its own, and the ServerApp that one runs)."""
        if self.process is not None:
            end_tree(self.process, signal.SIGKILL, grace=10.0)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            end_tree(self.process, signal.SIGTERM)
            self.process = None

    def cli_home(self) -> Path:
        """A FLWR_HOME whose default connection is this SuperLink, for the operator's `flwr` commands
        (`flwr supernode register`)."""
        home = self.folder / "cli-home"
        home.mkdir(parents=True, exist_ok=True)
        certificates = f'root-certificates = "{self.pki / "ca.crt"}"\n' if self.pki is not None else "insecure = true\n"
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "churn"\n\n[superlink.churn]\naddress = "{self.address}"\n{certificates}')
        return home

    def register_command(self, public_key: Path) -> list[str]:
        """Registers a store's SuperNode key, as the operator does on the central server (env: cli_env())."""
        return [str(VENV_BIN / "flwr"), "supernode", "register", str(public_key), "churn"]

    def cli_env(self) -> dict[str, str]:
        return flower_env(self.cli_home())

    def register(self, public_key: Path) -> None:
        result = subprocess.run(self.register_command(public_key), env=self.cli_env(), capture_output=True, text=True,
                                timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"flwr supernode register {public_key} failed ({result.returncode}): "
                               f"{result.stderr.strip()[-2000:]}")


@dataclass
class FleetGatewayProcess:
    """`churn-server fleet-gateway` on 127.0.0.1:`port`: the stores' only door to the SuperLink's Fleet API,
    with the SuperLink's certificate; log in `folder`."""

    folder: Path
    pki: Path
    superlink: str
    port: int = field(default_factory=free_port)
    log_path: Path | None = None  # default: folder/gateway.log
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, seconds: float = 30.0) -> FleetGatewayProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.log_path or self.folder / "gateway.log", "ab") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "churn-server"), "fleet-gateway", "--superlink", self.superlink, "--host", "127.0.0.1",
                 "--port", str(self.port), "--ssl-certfile", str(self.pki / "superlink.crt"),
                 "--ssl-keyfile", str(self.pki / "superlink.key"), "--ca-file", str(self.pki / "ca.crt")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(self.port, seconds, self.process)
        except (TimeoutError, RuntimeError):
            self.kill()
            raise
        return self

    def kill(self) -> None:
        if self.process is not None:
            kill_group(self.process)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            end_group(self.process, signal.SIGTERM)
            self.process = None
