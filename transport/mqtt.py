"""The one MQTT connection both sides use: paho-mqtt v2 callbacks over MQTT v5.

MQTT v5 because v3.1.1 hides refusals: a publish the broker's ACL denies still
gets a plain PUBACK there, while v5 carries a reason code we can act on. The
settings (broker URL, CA, client certificate, password file) come from a store
box's configuration or from a central command's options; the topics and
payloads are in models/contracts.py and models/payloads.py.
"""

from __future__ import annotations

import queue
import ssl
import threading
import uuid
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
    """How to reach the broker, and as whom."""

    url: str
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    password_file: Path | None = None
    client_id: str | None = None  # None: the caller names it, or a random one for a one-off connection
    # The broker publishes a client's Last Will after 1.5 x this much silence: a short keepalive shows a dead
    # uplink sooner, a long one spares a metered link its pings.
    keepalive_seconds: int = 30

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress.parse(self.url)

    def password(self) -> str | None:
        if self.password_file is not None:
            return self.password_file.read_text().strip()
        return self.address.password


def make_client(config: BrokerConfig, client_id: str | None = None) -> mqtt.Client:
    """A client with the config's credentials and TLS, not yet connected."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id or config.client_id or f"churn-{uuid.uuid4().hex[:12]}",
        protocol=MQTTProtocolVersion.MQTTv5,
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


def open_session(client: mqtt.Client, config: BrokerConfig, *, session_expiry: int = 0, clean_start: bool = False,
                 timeout: float = 10.0) -> bool:
    """Connect and start the network loop; return whether the broker kept an earlier session.

    Raises BrokerError unless the broker accepts us within `timeout`."""
    answered: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client.on_connect = lambda _c, _u, flags, reason, _p: answered.put((flags, reason))
    # A broker that drops us before CONNACK (TLS expected, say) must not cost the whole timeout.
    client.on_disconnect = lambda _c, _u, _flags, reason, _p: answered.put((None, reason))
    client.on_connect_fail = lambda _c, _u: answered.put((None, "the connection failed"))
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = session_expiry
    address = config.address
    try:
        client.connect(address.host, address.port, keepalive=config.keepalive_seconds, clean_start=clean_start,
                       properties=properties)
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


def _close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def publish_retained(config: BrokerConfig, topic: str, payload: bytes, timeout: float = 30.0) -> None:
    """Publish once, QoS 1, retained; return only when the broker has acknowledged it with success."""
    client = make_client(config)
    acknowledged = threading.Event()
    result: dict[str, Any] = {}

    def on_publish(_client: mqtt.Client, _userdata: Any, _mid: int, reason: Any, _properties: Any) -> None:
        result["reason"] = reason
        acknowledged.set()

    client.on_publish = on_publish
    open_session(client, config, clean_start=True)
    try:
        client.publish(topic, payload, qos=1, retain=True)
        if not acknowledged.wait(timeout):
            raise BrokerError(f"the broker did not acknowledge {topic} in {timeout:.0f} s")
        if result["reason"].is_failure:
            raise BrokerError(f"the broker refused {topic}: {result['reason']}")
    finally:
        _close(client)


def read_retained(config: BrokerConfig, topic: str, client_id: str, timeout: float = 10.0) -> bytes | None:
    """The retained message on `topic`, or None if the broker holds none."""
    client = make_client(config, client_id)
    received: queue.Queue[bytes] = queue.Queue()
    subscribed = threading.Event()
    client.on_message = lambda _c, _u, message: received.put(message.payload)
    client.on_subscribe = lambda *_args: subscribed.set()
    open_session(client, config, timeout=timeout)
    try:
        client.subscribe(topic, qos=1)
        if not subscribed.wait(timeout):
            raise BrokerError(f"the broker did not confirm the subscription to {topic}")
        try:
            return received.get(timeout=min(2.0, timeout))  # retained messages follow the SUBACK at once
        except queue.Empty:
            return None
    finally:
        _close(client)
