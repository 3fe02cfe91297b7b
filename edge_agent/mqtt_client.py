"""The store box's MQTT connection: paho-mqtt v2 callbacks over MQTT v5.

Settings come from the box's configuration (broker URL, CA, client
certificate, password file). MQTT v5 so that refusals (an ACL denial, a quota)
come back as reason codes instead of silence.
"""

from __future__ import annotations

import queue
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from models.contracts import BrokerAddress


class BrokerError(Exception):
    """The broker is unreachable, refused the connection, or refused a message."""


@dataclass(frozen=True)
class BrokerConfig:
    """How this box reaches the broker."""

    url: str
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    password_file: Path | None = None
    # The broker publishes the box's Last Will ("offline") after 1.5 x this much silence: a short keepalive
    # shows a dead uplink sooner, a long one spares a metered link its pings.
    keepalive_seconds: int = 30

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress.parse(self.url)

    def password(self) -> str | None:
        if self.password_file is not None:
            return self.password_file.read_text().strip()
        return self.address.password


def make_client(config: BrokerConfig, client_id: str) -> mqtt.Client:
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5,
    )
    address = config.address
    if address.username:
        client.username_pw_set(address.username, config.password())
    if address.tls or config.ca_file:
        client.tls_set(
            ca_certs=str(config.ca_file) if config.ca_file else None,
            certfile=str(config.cert_file) if config.cert_file else None,
            keyfile=str(config.key_file) if config.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    return client


def open_session(client: mqtt.Client, config: BrokerConfig, *, session_expiry: int, timeout: float = 10.0) -> bool:
    """Connect with a session that outlives the connection; return whether the broker kept the old one."""
    answered: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client.on_connect = lambda _c, _u, flags, reason, _p: answered.put((flags, reason))
    # A broker that drops us before CONNACK (TLS expected, say) must not cost the whole timeout.
    client.on_disconnect = lambda _c, _u, _flags, reason, _p: answered.put((None, reason))
    client.on_connect_fail = lambda _c, _u: answered.put((None, "the connection failed"))
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = session_expiry
    address = config.address
    try:
        client.connect(address.host, address.port, keepalive=config.keepalive_seconds, clean_start=False, properties=properties)
    except (OSError, ssl.SSLError) as exc:
        raise BrokerError(f"cannot reach the broker at {address}: {exc}") from exc
    client.loop_start()
    try:
        flags, reason = answered.get(timeout=timeout)
    except queue.Empty:
        client.loop_stop()
        raise BrokerError(f"no answer from the broker at {address} in {timeout:.0f} s") from None
    if flags is None:
        client.loop_stop()
        raise BrokerError(f"the broker at {address} closed the connection before accepting it ({reason})")
    if reason.is_failure:
        client.loop_stop()
        raise BrokerError(f"the broker at {address} refused the connection: {reason}")
    client.on_disconnect = None
    client.on_connect_fail = None
    return bool(flags.session_present)


def read_retained(config: BrokerConfig, topic: str, client_id: str, timeout: float = 10.0) -> bytes | None:
    """The retained message on `topic`, or None if the broker holds none."""
    client = make_client(config, client_id)
    received: queue.Queue[bytes] = queue.Queue()
    subscribed = threading.Event()
    client.on_message = lambda _c, _u, message: received.put(message.payload)
    client.on_subscribe = lambda *_args: subscribed.set()
    open_session(client, config, session_expiry=0, timeout=timeout)
    try:
        client.subscribe(topic, qos=1)
        if not subscribed.wait(timeout):
            raise BrokerError(f"the broker did not confirm the subscription to {topic}")
        try:
            return received.get(timeout=min(2.0, timeout))  # retained messages follow the SUBACK at once
        except queue.Empty:
            return None
    finally:
        client.disconnect()
        client.loop_stop()
