"""A regional broker bridged to the central one (firmware_configs/mosquitto/bridge.conf, as shipped):
a store's alerts reach the central aggregator and its acks come back; the retained release goes out."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from demo.broker import shipped_bridge
from edge_agent.score import ScoreResult, ScoringPolicy, record_scoring
from edge_agent.store_db import open_store_db
from models.alerting import AlertPolicy
from server.broker_accounts import add_bridge
from server.pki import service_certificate
from tests.builders import customer
from tests.conftest import run_cli, run_json
from tests.secure_broker import SecureBroker, start_secure_broker
from tests.services import AggregatorProcess
from transport.mqtt import BrokerConfig, publish_retained

pytestmark = pytest.mark.integration
MODEL_TOPIC = "retail/v1/demo/model/current"


@dataclass
class Region:
    central: SecureBroker
    regional: SecureBroker


@pytest.fixture
def region(tmp_path: Path) -> Iterator[Region]:
    central = start_secure_broker(tmp_path / "central", "demo", [])
    secret = add_bridge(central.accounts, "demo", "north")
    service_certificate(central.pki, "bridge-north")  # the central TLS listener wants a client certificate
    assert central.broker.process is not None
    os.kill(central.broker.process.pid, signal.SIGHUP)  # the broker reads the new account and ACL
    time.sleep(0.5)
    bridge = shipped_bridge("demo", "north", f"localhost:{central.tls_port}", central.pki / "ca.crt",
                            secret.read_text().strip())
    regional = start_secure_broker(tmp_path / "regional", "demo", ["s1"], extra=bridge)
    try:
        yield Region(central, regional)
    finally:
        regional.broker.kill()
        central.broker.kill()


def test_alerts_cross_the_bridge_and_their_acks_come_back(region: Region, tmp_path: Path) -> None:
    central_db = str(tmp_path / "central.db")
    aggregator = AggregatorProcess(
        tmp_path, f"mqtt://aggregator@127.0.0.1:{region.central.plain_port}", central_db,
        extra_args=["--password-file", str(region.central.accounts / "aggregator.mqtt-password")])
    box = tmp_path / "s1.db"
    with open_store_db(box, chain="demo", store_id="s1") as store:
        record_scoring(store, ScoreResult("2025-10-01", "m1", scored=5), [customer(f"c{i}", 70, "red") for i in range(5)],
                       ScoringPolicy(alerts=AlertPolicy()))
    try:
        aggregator.start()
        report = run_json(
            "edge-agent", "publish", "--db", str(box),
            "--mqtt", f"mqtts://demo.s1@localhost:{region.regional.tls_port}", *region.regional.tls_args("s1"),
            "--password-file", str(region.regional.accounts / "store-s1.mqtt-password"), "--wait", "20")
    finally:
        aggregator.kill()
    assert report == {"published": 5, "acked": 5, "remaining": 0, "refused": []}
    stored = json.loads(run_cli("churn-server", "alerts", "--db", central_db, "--json", check=True).stdout)
    assert sorted(a["customer_ref"] for a in stored) == [f"c{i}" for i in range(5)]


def test_the_retained_release_reaches_the_stores_of_the_region(region: Region) -> None:
    release = json.dumps({"version": "v-north"}).encode()
    publish_retained(BrokerConfig(f"mqtt://release@127.0.0.1:{region.central.plain_port}",
                                    password_file=region.central.accounts / "release.mqtt-password"),
                     MODEL_TOPIC, release)
    received: list[bytes] = []
    arrived = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="s1-reader", protocol=MQTTProtocolVersion.MQTTv5)
    client.username_pw_set("demo.s1", (region.regional.accounts / "store-s1.mqtt-password").read_text().strip())
    client.on_connect = lambda c, *_: c.subscribe(MODEL_TOPIC, qos=1)
    client.on_message = lambda _c, _u, message: (received.append(message.payload), arrived.set())
    client.connect("127.0.0.1", region.regional.plain_port)
    client.loop_start()
    try:
        deadline = time.monotonic() + 20
        while not arrived.wait(0.5) and time.monotonic() < deadline:
            pass  # the bridge forwards the retained message once it has connected
    finally:
        client.loop_stop()
        client.disconnect()
    assert received and received[-1] == release
