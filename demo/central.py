"""The central side of the demo: keys and certificates, the broker, the SuperLink, the aggregator and
the console, each started with the same commands and files an operator uses (docs/operator-guide.md)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from models.flower_protocol import SUPEREXEC_ENV
from server.federation.superlink import FleetGatewayProcess, SuperLinkProcess
from server.mosquitto import Mosquitto
from server.processes import free_port, port_open

from .broker import shipped_config
from .chain import CHAIN
from .processes import VENV_BIN, DemoError, ProcessGroup, run_command, wait_for

FLOWER_ENV = {"FLWR_TELEMETRY_ENABLED": "0", **SUPEREXEC_ENV}


@dataclass
class Central:
    root: Path
    group: ProcessGroup
    broker_url: str | None = None  # an existing broker to use instead of a private one
    console_port: int = 0
    tls_port: int = field(default_factory=free_port)
    plain_port: int = field(default_factory=free_port)
    superlink_port: int = field(default_factory=free_port)
    fleet_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.console_port = self.console_port or free_port()

    # --- where things are -------------------------------------------------------------------------
    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def accounts(self) -> Path:
        return self.root / "broker-accounts"

    @property
    def db(self) -> Path:
        return self.root / "central.db"

    @property
    def signing_key(self) -> Path:
        return self.root / "release-signing.key"

    @property
    def superlink_address(self) -> str:
        """The SuperLink (its Control API with it): the central server's loopback only."""
        return f"127.0.0.1:{self.superlink_port}"

    @property
    def fleet_address(self) -> str:
        """What the store boxes are given: the fleet gateway."""
        return f"localhost:{self.fleet_port}"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.console_port}"

    @property
    def private_broker(self) -> bool:
        return self.broker_url is None

    def service_url(self, user: str) -> str:
        """For the services on the broker's host: the loopback listener."""
        if self.broker_url:
            return self.broker_url
        return f"mqtt://{user}@127.0.0.1:{self.plain_port}"

    def store_url(self, chain: str, store_id: str) -> str:
        """For a store box: TLS, with its own account."""
        if self.broker_url:
            return self.broker_url
        return f"mqtts://{chain}.{store_id}@localhost:{self.tls_port}"

    def password_file(self, user: str) -> Path | None:
        return None if self.broker_url else self.accounts / f"{user}.mqtt-password"

    def log(self, name: str) -> Path:
        return self.group.logs / f"{name}.log"

    # --- credentials ------------------------------------------------------------------------------
    def issue_credentials(self, store_ids: list[str]) -> None:
        server = [str(VENV_BIN / "churn-server")]
        log = self.log("pki")
        run_command([*server, "pki", "ca", "--dir", str(self.pki), "--organisation", "Demo Retail"], log)
        for name in ("broker", "superlink"):
            run_command([*server, "pki", "server", "--dir", str(self.pki), "--name", name,
                         "--host", "localhost", "--host", "127.0.0.1"], log)
        run_command([*server, "keys", "--out", str(self.signing_key)], log)
        if self.private_broker:
            run_command([*server, "pki", "broker", "--broker-dir", str(self.accounts)], log)
        for store_id in store_ids:
            extra = ["--chain", CHAIN, "--broker-dir", str(self.accounts)] if self.private_broker else []
            run_command([*server, "pki", "store", "--dir", str(self.pki), "--store-id", store_id, *extra], log)

    # --- services ---------------------------------------------------------------------------------
    def start_broker(self) -> None:
        if not self.private_broker:
            return
        data = self.root / "broker"
        broker = Mosquitto(data, port=self.plain_port, also_wait_for=[self.tls_port],
                           config_text=shipped_config(self.pki, self.accounts, data, self.tls_port, self.plain_port))
        self._start("mosquitto", broker, broker.log_path, "the broker")

    def _start(self, name: str, service: Mosquitto | SuperLinkProcess | FleetGatewayProcess, log: Path,
               what: str) -> None:
        """Start with the product's own starter, then hand the process to the group that stops everything."""
        try:
            service.start(60)
        except (TimeoutError, RuntimeError) as exc:
            raise DemoError(f"{what} did not start ({exc}); its log is {log}") from None
        assert service.process is not None
        self.group.adopt(name, service.process, log)

    def start_superlink(self, store_keys: list[Path]) -> None:
        superlink = SuperLinkProcess(self.root / "superlink", self.pki, self.superlink_port,
                                     log_path=self.log("superlink"))
        self._start("superlink", superlink, self.log("superlink"), "the SuperLink")
        gateway = FleetGatewayProcess(self.root / "fleet-gateway", self.pki, self.superlink_address, self.fleet_port,
                                      log_path=self.log("fleet-gateway"))
        self._start("fleet-gateway", gateway, self.log("fleet-gateway"), "the fleet gateway")
        for key in store_keys:
            run_command(superlink.register_command(key), self.log("superlink-cli"), env=superlink.cli_env(),
                        timeout=120)

    def start_aggregator(self) -> None:
        argv = [str(VENV_BIN / "churn-server"), "aggregator", "--mqtt", self.service_url("aggregator"),
                "--db", str(self.db), "--client-id", "demo-aggregator-1"]
        password = self.password_file("aggregator")
        if password:
            argv += ["--password-file", str(password)]
        service = self.group.start("aggregator", argv)
        wait_for(lambda: "subscribed to" in service.log.read_text(errors="replace"), 60, "the aggregator subscribed",
                 self.group)

    def create_admin(self) -> tuple[str, str]:
        password = secrets.token_urlsafe(12)
        secret = self.root / "console-admin.password"
        secret.write_text(password + "\n")
        secret.chmod(0o600)
        run_command([str(VENV_BIN / "churn-server"), "create-admin", "--db", str(self.db), "--username", "admin",
                     "--password-file", str(secret)], self.log("console-admin"))
        return "admin", password

    def start_console(self) -> None:
        self.group.start("console", [str(VENV_BIN / "churn-server"), "console", "--db", str(self.db),
                                     "--host", "127.0.0.1", "--port", str(self.console_port)])
        wait_for(lambda: port_open(self.console_port), 60, "the console listening", self.group)

    # --- federation and release -------------------------------------------------------------------
    def federate(self, as_of: str, rounds: int, stores: int, local_epochs: int) -> dict[str, object]:
        argv = [str(VENV_BIN / "churn-server"), "federate", "--superlink", self.superlink_address,
                "--root-certificates", str(self.pki / "ca.crt"), "--as-of", as_of,
                "--state-dir", str(self.root / "federation"), "--rounds", str(rounds), "--chain", CHAIN,
                "--central-db", str(self.db),
                "--set", f"min-available-nodes={stores}", "--set", f"min-train-nodes={stores}",
                "--set", f"local-epochs={local_epochs}", "--set", "node-wait-seconds=180", "--json"]
        text = run_command(argv, self.log("federate"), env={**FLOWER_ENV, "FLWR_HOME": str(self.root / "flwr" / "federate")},
                           timeout=1200)
        return json.loads(text)  # type: ignore[no-any-return]

    def release(self, model_dir: str) -> dict[str, object]:
        argv = [str(VENV_BIN / "churn-server"), "release", "--model", model_dir, "--chain", CHAIN,
                "--signing-key", str(self.signing_key), "--mqtt", self.service_url("release"), "--json"]
        password = self.password_file("release")
        if password:
            argv += ["--password-file", str(password)]
        return json.loads(run_command(argv, self.log("release")))  # type: ignore[no-any-return]
