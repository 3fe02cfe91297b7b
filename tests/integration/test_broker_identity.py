"""On the shipped broker configuration, a store's account cannot take over another client's session.

Mosquitto lets a new connection with a client id already in use kick the old
one off (and, with a clean start, wipe its queue). The shipped configuration
makes the client id the account name, so a store asking for the aggregator's
id, or another box's, only ever gets its own; it also refuses oversized
messages and TLS connections without a client certificate.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from server.central import list_dead_letters, open_central_db
from tests.secure_broker import SecureBroker, start_secure_broker
from tests.services import AggregatorProcess, StoreClient

pytestmark = pytest.mark.integration


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[SecureBroker]:
    broker = start_secure_broker(tmp_path / "broker", "demo", ["s1", "s2"])
    yield broker
    broker.broker.kill()


class Box:
    """A store's TLS connection (its account, its certificate) asking for whatever client id it likes."""

    def __init__(self, secure: SecureBroker, store_id: str, client_id: str, clean_start: bool = False) -> None:
        self.disconnected = threading.Event()
        self.connected = threading.Event()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=MQTTProtocolVersion.MQTTv5)
        self.client.username_pw_set(f"demo.{store_id}",
                                    (secure.accounts / f"store-{store_id}.mqtt-password").read_text().strip())
        ca, cert, key = secure.client_files(store_id)
        self.client.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
        self.client.on_connect = lambda *_: self.connected.set()
        self.client.on_disconnect = lambda *_: self.disconnected.set()
        self.client.connect("localhost", secure.tls_port, clean_start=clean_start)
        self.client.loop_start()
        assert self.connected.wait(10), f"{store_id} could not connect"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_store_asking_for_the_aggregators_or_another_boxs_client_id_takes_over_nothing(
        secure: SecureBroker, tmp_path: Path) -> None:
    central = str(tmp_path / "central.db")
    aggregator = AggregatorProcess(tmp_path, f"mqtt://aggregator@127.0.0.1:{secure.plain_port}", central,
                                   client_id="aggregator-1",
                                   extra_args=["--password-file", str(secure.accounts / "aggregator.mqtt-password")])
    aggregator.start()
    s2 = StoreClient(secure.plain_url("demo.s2", secure.accounts / "store-s2.mqtt-password"), "demo", "s2")
    s2_kicked = threading.Event()
    s2.client.on_disconnect = lambda *_: s2_kicked.set()
    impostors = []
    try:
        # Store s1, with its own credentials, asks for the aggregator's id and for s2's ids (clean start: wipe).
        for client_id in ("aggregator-1", s2.client._client_id.decode(), "demo.s2.agent", "demo.s2"):
            impostors.append(Box(secure, "s1", client_id, clean_start=True))
        sent = s2.publish_alerts(range(1, 21))
        s2.wait_for_acks(sent, seconds=15)
        assert not s2_kicked.is_set(), "another store knocked s2's box off the broker"
        assert "disconnected from" not in aggregator.log(), "another store knocked the aggregator off the broker"
        assert aggregator.stop() == 0
    finally:
        for client in impostors:
            client.close()
        s2.close()
        aggregator.kill()


def test_oversized_messages_and_certificate_less_tls_are_refused_at_the_door(
        secure: SecureBroker, tmp_path: Path) -> None:
    central = str(tmp_path / "central.db")
    aggregator = AggregatorProcess(tmp_path, f"mqtt://aggregator@127.0.0.1:{secure.plain_port}", central,
                                   extra_args=["--password-file", str(secure.accounts / "aggregator.mqtt-password")])
    aggregator.start()
    s1 = Box(secure, "s1", "demo.s1.agent")
    try:
        s1.client.publish("retail/v1/demo/s1/alert/churn", b'{"pad": "' + b"x" * 2_000_000 + b'"}', qos=1)
        (good,) = [s1.client.publish("retail/v1/demo/s1/status", b"{}", qos=1)]
        deadline = time.monotonic() + 10
        while "dead letter" not in aggregator.log() and time.monotonic() < deadline and not s1.disconnected.is_set():
            time.sleep(0.05)
        time.sleep(0.5)  # anything the broker let through would be dead-lettered by now
        with open_central_db(central) as db:
            assert all(d["bytes"] < 1_000_000 for d in list_dead_letters(db, limit=None)), "2 MB reached the centre"
        assert good is not None
    finally:
        s1.close()
        aggregator.kill()

    bare = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="no-certificate",
                       protocol=MQTTProtocolVersion.MQTTv5)
    bare.username_pw_set("demo.s1", (secure.accounts / "store-s1.mqtt-password").read_text().strip())
    bare.tls_set(ca_certs=str(secure.pki / "ca.crt"))
    with pytest.raises((ssl.SSLError, OSError)):
        bare.connect("localhost", secure.tls_port)
        for _ in range(50):  # some TLS stacks report the refused handshake on the first read
            bare.loop(0.1)
            if not bare.is_connected():
                raise OSError("refused")
