"""The central side's MQTT connection: paho-mqtt v2 callbacks, MQTT v5, PUBACK reason codes checked.

MQTT v5 because v3.1.1 hides ACL denials: a publish the broker refuses still
gets a plain PUBACK there, while v5 carries a reason code we can act on.
"""

from __future__ import annotations

import ssl
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from models.contracts import BrokerAddress


class MqttError(Exception):
    """The broker cannot be reached, refused us, or refused a message."""


@dataclass(frozen=True)
class BrokerSettings:
    url: str
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    password_file: Path | None = None
    client_id: str | None = None

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress.parse(self.url)


def new_client(settings: BrokerSettings, client_id: str | None = None) -> mqtt.Client:
    address = settings.address
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id or settings.client_id or f"churn-server-{uuid.uuid4().hex[:8]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    password = settings.password_file.read_text().strip() if settings.password_file else address.password
    if address.username:
        client.username_pw_set(address.username, password)
    if address.tls or settings.ca_file:
        client.tls_set(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            certfile=str(settings.cert_file) if settings.cert_file else None,
            keyfile=str(settings.key_file) if settings.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    return client


def connect(client: mqtt.Client, settings: BrokerSettings, timeout: float = 10.0, clean_start: bool = True,
            session_expiry: int = 0) -> None:
    """Connect and start the network loop; raise MqttError unless the broker says yes in time."""
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def on_connect(_client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any) -> None:
        outcome["reason"] = reason
        done.set()

    client.on_connect = on_connect
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = session_expiry
    address = settings.address
    try:
        client.connect(address.host, address.port, keepalive=30, clean_start=clean_start, properties=properties)
    except (OSError, ssl.SSLError) as exc:
        raise MqttError(f"cannot reach the broker at {address}: {exc}") from exc
    client.loop_start()
    if not done.wait(timeout):
        client.loop_stop()
        raise MqttError(f"no answer from the broker at {address} in {timeout:.0f} s")
    if outcome["reason"].is_failure:
        client.loop_stop()
        raise MqttError(f"the broker at {address} refused the connection: {outcome['reason']}")


def publish_retained(settings: BrokerSettings, topic: str, payload: bytes, timeout: float = 30.0) -> None:
    """Publish once, QoS 1, retained; return only when the broker has acknowledged it with success."""
    client = new_client(settings)
    acknowledged = threading.Event()
    result: dict[str, Any] = {}

    def on_publish(_client: mqtt.Client, _userdata: Any, mid: int, reason: Any, _properties: Any) -> None:
        result["reason"] = reason
        acknowledged.set()

    client.on_publish = on_publish
    connect(client, settings)
    try:
        client.publish(topic, payload, qos=1, retain=True)
        if not acknowledged.wait(timeout):
            raise MqttError(f"the broker did not acknowledge {topic} in {timeout:.0f} s")
        if result["reason"].is_failure:
            raise MqttError(f"the broker refused {topic}: {result['reason']}")
    finally:
        client.disconnect()
        client.loop_stop()
