"""The shipped Mosquitto configuration, moved into a folder and onto free ports.

The demo (and the tests) run the broker on `firmware_configs/mosquitto/mosquitto.conf`
exactly as an operator installs it: no anonymous access, an account and an ACL
per store, a TLS listener for the boxes and a loopback listener for services on
the broker's host. Only its paths and ports change.
"""

from __future__ import annotations

import re
from pathlib import Path

from server.mosquitto import keep_root_user

SHIPPED = Path(__file__).resolve().parent.parent / "firmware_configs" / "mosquitto" / "mosquitto.conf"
SHIPPED_BRIDGE = SHIPPED.with_name("bridge.conf")


def shipped_config(pki: Path, accounts: Path, data: Path, tls_port: int, plain_port: int) -> str:
    """The shipped file with its certificates in `pki`, accounts in `accounts`, state and log in `data`."""
    text = SHIPPED.read_text()
    text = text.replace("/etc/churn/pki", str(pki)).replace("/etc/mosquitto/churn", str(accounts))
    text = text.replace("/var/lib/mosquitto/", f"{data}/")
    text = re.sub(r"^listener 8883$", f"listener {tls_port}", text, flags=re.M)
    text = re.sub(r"^listener 1883 127.0.0.1$", f"listener {plain_port} 127.0.0.1", text, flags=re.M)
    text = text.replace("log_dest syslog", f"log_dest file {data / 'mosquitto.log'}")
    return keep_root_user(text)


def shipped_bridge(chain: str, name: str, central: str, ca_file: Path, password: str) -> str:
    """The shipped bridge.conf for regional broker `name` of `chain`, to the central broker at HOST:PORT;
    its CA, and its client certificate `bridge-NAME.crt`/`.key`, are in `ca_file`'s folder."""
    text = SHIPPED_BRIDGE.read_text()
    text = text.replace("retail/v1/acme/", f"retail/v1/{chain}/").replace("eu-west", name)
    text = text.replace("address broker.acme.example:8883", f"address {central}")
    text = text.replace("/etc/churn/pki/", f"{ca_file.parent}/")
    return text.replace("remote_password CHANGE_ME", f"remote_password {password}")

