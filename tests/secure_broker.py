"""The shipped broker configuration (firmware_configs/mosquitto/mosquitto.conf), run for real in a test.

The file is used as shipped; only its paths and ports are moved into the
test's folder, so what the tests check is what an operator installs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from demo.broker import shipped_config
from server.broker_accounts import add_store, init_services
from server.mosquitto import Mosquitto
from server.pki import client_certificate, create_ca, server_certificate
from server.processes import free_port


@dataclass
class SecureBroker:
    broker: Mosquitto
    pki: Path
    accounts: Path
    tls_port: int
    plain_port: int

    def tls_url(self, user: str, password_file: Path) -> str:
        return f"mqtts://{user}:{password_file.read_text().strip()}@localhost:{self.tls_port}"

    def plain_url(self, user: str, password_file: Path) -> str:
        return f"mqtt://{user}:{password_file.read_text().strip()}@127.0.0.1:{self.plain_port}"

    def client_files(self, store_id: str) -> tuple[str, str, str]:
        """(CA, client certificate, key) a store box presents on the TLS listener."""
        return (str(self.pki / "ca.crt"), str(self.pki / f"store-{store_id}.crt"), str(self.pki / f"store-{store_id}.key"))

    def tls_args(self, store_id: str) -> list[str]:
        """--ca-file, --cert-file and --key-file of a store box's commands."""
        ca, cert, key = self.client_files(store_id)
        return ["--ca-file", ca, "--cert-file", cert, "--key-file", key]


def start_secure_broker(root: Path, chain: str, stores: list[str], extra: str = "") -> SecureBroker:
    """CA, broker certificate, service and store accounts, then Mosquitto on the shipped config."""
    pki, accounts, data = root / "pki", root / "accounts", root / "data"
    create_ca(pki, "Test Retail")
    server_certificate(pki, "broker", ["localhost", "127.0.0.1"])
    init_services(accounts)
    for store in stores:
        add_store(accounts, chain, store)
        client_certificate(pki, store)
    data.mkdir(parents=True, exist_ok=True)
    tls_port, plain_port = free_port(), free_port()
    config = shipped_config(pki, accounts, data, tls_port, plain_port) + ("\n" + extra if extra else "")
    broker = Mosquitto(data, port=plain_port, config_text=config, also_wait_for=[tls_port]).start()
    return SecureBroker(broker, pki, accounts, tls_port, plain_port)
