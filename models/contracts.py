"""The MQTT contract shared by the store box and the central side: topics and broker addresses.

Every topic is built here, from the table in docs/architecture.md, so the two
sides can never spell one differently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

TOPIC_ROOT = "retail/v1"
# An id that becomes a topic level, a file name or an account name: no '/', no wildcard, no leading '.'
# (so never '..' or a hidden file), nothing a shell or an ACL file would read differently.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$"
_ID = re.compile(ID_PATTERN)


class ContractError(Exception):
    """A value that would break the contract (an MQTT wildcard in a store id, a bad URL...)."""


def check_id(value: object, what: str) -> str:
    """`value` if it is a safe id (chain, store, model version, account name), else ContractError."""
    if not isinstance(value, str) or not _ID.match(value):
        shown = value[:60] if isinstance(value, str) else value
        raise ContractError(f"{what} {shown!r} must be 1 to 200 letters, digits, '.', '_' or '-', "
                            "starting with a letter or digit")
    return value


def _segment(value: str, what: str) -> str:
    return check_id(value, what)


def store_topic(chain: str, store_id: str, leaf: str) -> str:
    """retail/v1/{chain}/{store}/{leaf}, leaf one of alert/churn, status, metrics, ack."""
    return f"{TOPIC_ROOT}/{_segment(chain, 'chain')}/{_segment(store_id, 'store id')}/{leaf}"


def alert_topic(chain: str, store_id: str) -> str:
    return store_topic(chain, store_id, "alert/churn")


def status_topic(chain: str, store_id: str) -> str:
    return store_topic(chain, store_id, "status")


def metrics_topic(chain: str, store_id: str) -> str:
    return store_topic(chain, store_id, "metrics")


def ack_topic(chain: str, store_id: str) -> str:
    return store_topic(chain, store_id, "ack")


def model_topic(chain: str) -> str:
    return f"{TOPIC_ROOT}/{_segment(chain, 'chain')}/model/current"


def all_stores_topic(chain: str, leaf: str) -> str:
    """Subscription filter for one leaf of every store of a chain ('+' for any chain)."""
    chain_part = chain if chain == "+" else _segment(chain, "chain")
    return f"{TOPIC_ROOT}/{chain_part}/+/{leaf}"


def parse_store_topic(topic: str) -> tuple[str, str, str]:
    """(chain, store_id, leaf) of a store topic."""
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise ContractError(f"{topic[:120]!r} is not a store topic")
    return check_id(parts[2], "chain"), check_id(parts[3], "store id"), "/".join(parts[4:])


@dataclass(frozen=True)
class BrokerAddress:
    """mqtt://[user[:password]@]host[:port] or mqtts://... (TLS, default port 8883)."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ContractError(f"broker URL {url!r} must start with mqtt:// or mqtts://")
        if not parts.hostname:
            raise ContractError(f"broker URL {url!r} has no host")
        tls = parts.scheme in ("mqtts", "ssl")
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise ContractError(f"broker URL {url!r} has a bad port") from None
        return cls(
            parts.hostname, port, tls,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"  # never the password
