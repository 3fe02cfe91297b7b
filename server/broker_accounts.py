"""Broker accounts: one user per store, an ACL that fences each store into its own topics.

The broker's files (see firmware_configs/mosquitto/) are a password file
(hashed by `mosquitto_passwd`) and an ACL file with one block per account:

- a store may write only its own alert, status and metrics topics, and read
  only its own acks and its chain's model topic;
- each aggregator (its own account: the broker makes the account name the
  client id, so two aggregators on one account would knock each other off)
  reads every store's alerts, status and metrics and writes acks;
- the release publisher writes the model topics;
- a regional broker's bridge forwards its stores' alerts, status and metrics
  of one chain, and brings back their acks and the chain's model release (the
  regional broker fences each store into its own topics with the same ACL).

Each store's password is written to `store-<id>.mqtt-password` (mode 0600) for
its box; the broker only ever sees the hash.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

from models.contracts import ContractError, all_stores_topic, check_id, model_topic, store_topic

PASSWD = "/usr/bin/mosquitto_passwd"


class BrokerAccountError(Exception):
    """An account that cannot be created (tool missing, user exists...)."""


def store_username(chain: str, store_id: str) -> str:
    return f"{chain}.{store_id}"


def store_acl(chain: str, store_id: str) -> str:
    return "\n".join([
        f"# store {store_id} of chain {chain}",
        f"user {store_username(chain, store_id)}",
        f"topic write {store_topic(chain, store_id, 'alert/churn')}",
        f"topic write {store_topic(chain, store_id, 'status')}",
        f"topic write {store_topic(chain, store_id, 'metrics')}",
        f"topic read {store_topic(chain, store_id, 'ack')}",
        f"topic read {model_topic(chain)}",
        "",
    ])


def aggregator_acl(user: str = "aggregator") -> str:
    return "\n".join([
        "# a central aggregator (several, each with its own account, share the subscription)",
        f"user {user}",
        f"topic read {all_stores_topic('+', 'alert/churn')}",
        f"topic read {all_stores_topic('+', 'status')}",
        f"topic read {all_stores_topic('+', 'metrics')}",
        f"topic write {all_stores_topic('+', 'ack')}",
        "",
    ])


def release_acl() -> str:
    return "\n".join(["# the model release publisher", "user release", "topic write retail/v1/+/model/current", ""])


def _hash_into(password_file: Path, user: str, password: str) -> None:
    tool = shutil.which("mosquitto_passwd") or PASSWD
    if not Path(tool).exists():
        raise BrokerAccountError("mosquitto_passwd is not installed (Debian package mosquitto)")
    create = [] if password_file.exists() else ["-c"]
    result = subprocess.run([tool, *create, "-b", str(password_file), user, password], capture_output=True, text=True)
    if result.returncode != 0:
        raise BrokerAccountError(f"mosquitto_passwd failed: {result.stderr.strip() or result.stdout.strip()}")


def _secret_file(path: Path, value: str) -> None:
    if path.exists():
        raise BrokerAccountError(f"{path} exists; refusing to overwrite a credential")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value + "\n")


def _existing_users(password_file: Path) -> set[str]:
    if not password_file.exists():
        return set()
    return {line.split(":", 1)[0] for line in password_file.read_text().splitlines() if ":" in line}


def add_account(folder: Path, user: str, acl_block: str, secret_name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    password_file, acl_file = folder / "passwd", folder / "acl"
    if user in _existing_users(password_file):
        raise BrokerAccountError(f"user {user} already exists in {password_file}")
    password = secrets.token_urlsafe(24)
    secret = folder / secret_name
    _secret_file(secret, password)
    _hash_into(password_file, user, password)
    with open(acl_file, "a") as handle:
        handle.write(acl_block + "\n")
    return secret


def init_services(folder: Path) -> tuple[Path, Path]:
    """The aggregator and release accounts (run once per broker)."""
    aggregator = add_account(folder, "aggregator", aggregator_acl(), "aggregator.mqtt-password")
    release = add_account(folder, "release", release_acl(), "release.mqtt-password")
    return aggregator, release


def _service_username(prefix: str, name: str, what: str) -> str:
    try:
        return f"{prefix}{check_id(name, what)}"
    except ContractError as exc:
        raise BrokerAccountError(str(exc)) from None


def aggregator_username(name: str) -> str:
    return _service_username("aggregator-", name, "aggregator name")


def add_aggregator(folder: Path, name: str) -> Path:
    """One more aggregator's own account (`aggregator-NAME`); returns its password file."""
    user = aggregator_username(name)
    return add_account(folder, user, aggregator_acl(user), f"{user}.mqtt-password")


def add_store(folder: Path, chain: str, store_id: str) -> Path:
    """A store's account; returns the file holding its password (copy it to the box)."""
    return add_account(folder, store_username(chain, store_id), store_acl(chain, store_id),
                       f"store-{store_id}.mqtt-password")


def bridge_username(name: str) -> str:
    return _service_username("bridge.", name, "bridge name")


def bridge_acl(chain: str, name: str) -> str:
    return "\n".join([
        f"# the bridge of regional broker {name}, for the stores of chain {chain} connected there",
        f"user {bridge_username(name)}",
        f"topic write {all_stores_topic(chain, 'alert/churn')}",
        f"topic write {all_stores_topic(chain, 'status')}",
        f"topic write {all_stores_topic(chain, 'metrics')}",
        f"topic read {all_stores_topic(chain, 'ack')}",
        f"topic read {model_topic(chain)}",
        "",
    ])


def add_bridge(folder: Path, chain: str, name: str) -> Path:
    """A regional broker's bridge account on the central broker; returns its password file."""
    return add_account(folder, bridge_username(name), bridge_acl(chain, name), f"bridge-{name}.mqtt-password")
