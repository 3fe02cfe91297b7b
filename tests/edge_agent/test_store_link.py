"""The publisher against a real broker: order, acks, resends, refusals, status and Last Will."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_agent.daemon.uplink import Uplink
from edge_agent.outbox import Outbox
from edge_agent.store_link import StoreLink, LinkSettings
from edge_agent.score import ScoreResult, ScoringPolicy, record_scoring
from edge_agent.store_db import open_store_db
from models.contracts import BrokerAddress
from models.payloads import ack, check_alert_message
from server.processes import free_port
from tests.builders import customer
from tests.conftest import run_cli, run_json
from tests.mqtt_helpers import subscribe_and_wait
from tests.secure_broker import SecureBroker, start_secure_broker
from tests.services import Mosquitto
from transport.mqtt import BrokerConfig


def fill_outbox(db: Path, count: int, store_id: str = "s1") -> None:
    result = ScoreResult("2025-10-01", "m1", scored=count)
    with open_store_db(db, chain="demo", store_id=store_id) as store:
        record_scoring(store, result, [customer(f"c{i:03d}", 60, "orange") for i in range(count)], ScoringPolicy())


class Listener:
    """A plain MQTT v5 client: records what arrives and, as an aggregator would, can acknowledge it."""

    def __init__(self, url: str, topics: list[str], acknowledge: bool = False):
        address = BrokerAddress.parse(url)
        self.received: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.acknowledge = acknowledge
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"listener-{time.time_ns()}",
                                  protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_message = self._on_message
        if address.username:
            self.client.username_pw_set(address.username, address.password)
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        subscribe_and_wait(self.client, topics)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        self.received.put((message.topic, bytes(message.payload), bool(message.retain)))
        if self.acknowledge and message.topic.endswith("/alert/churn"):
            document = check_alert_message(bytes(message.payload))
            ack_topic = message.topic.replace("/alert/churn", "/ack")
            self.client.publish(ack_topic, ack([document["alert_id"]], None, "2025-10-01T00:00:00Z"), qos=1)

    def drain(self, seconds: float = 1.0) -> list[tuple[str, bytes, bool]]:
        """Everything that arrives within `seconds` (for a test that must see what keeps coming)."""
        items, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                items.append(self.received.get(timeout=0.1))
            except queue.Empty:
                pass
        return items

    def take(self, count: int, seconds: float = 10.0) -> list[tuple[str, bytes, bool]]:
        """The next `count` messages, as soon as they are here; TimeoutError if they are not within `seconds`."""
        items, deadline = [], time.monotonic() + seconds
        while len(items) < count:
            try:
                items.append(self.received.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise TimeoutError(f"{len(items)} of {count} messages in {seconds} s") from None
        return items

    def until(self, wanted: Callable[[dict[str, Any]], bool], seconds: float = 10.0) -> dict[str, Any]:
        """The first JSON message `wanted` accepts (earlier ones are dropped); TimeoutError after `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                _topic, payload, _retained = self.received.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no wanted message in {seconds} s") from None
            document = json.loads(payload)
            if wanted(document):
                return document  # type: ignore[no-any-return]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    mosquitto = Mosquitto(tmp_path / "broker").start()
    yield mosquitto
    mosquitto.kill()


def test_publish_in_seq_order_and_forget_only_what_the_aggregator_acknowledged(store_path: Path, broker: Mosquitto) -> None:
    fill_outbox(store_path, 5)
    listener = Listener(broker.url, ["retail/v1/demo/s1/alert/churn"], acknowledge=True)
    try:
        result = run_json("edge-agent", "publish", "--db", str(store_path), "--mqtt", broker.url, "--wait", "5")
        assert (result["published"], result["acked"], result["remaining"]) == (5, 5, 0)
        seqs = [json.loads(payload)["seq"] for _, payload, _ in listener.take(5)]
        assert seqs == [1, 2, 3, 4, 5]
    finally:
        listener.close()


def test_unacknowledged_alerts_stay_and_are_resent_with_the_same_ids(store_path: Path, broker: Mosquitto) -> None:
    fill_outbox(store_path, 3)
    first = run_json("edge-agent", "publish", "--db", str(store_path), "--mqtt", broker.url, "--wait", "0.5")
    assert (first["published"], first["remaining"]) == (3, 3), "PUBACKed but nobody acknowledged: kept"
    listener = Listener(broker.url, ["retail/v1/demo/s1/alert/churn"], acknowledge=True)
    try:
        with open_store_db(store_path) as store:
            publisher = StoreLink(store, LinkSettings(BrokerConfig(broker.url), "demo.s1.publisher", resend_after=0))
            publisher.connect()
            try:
                result = publisher.drain(wait_for_acks=5)
            finally:
                publisher.close()
            assert (result.published, result.remaining) == (3, 0)
            assert Outbox(store).stats().acked == 3
        ids = {json.loads(p)["alert_id"] for _, p, _ in listener.take(3)}
        assert len(ids) == 3, "three different alerts"
    finally:
        listener.close()


def test_an_unreachable_broker_is_a_one_line_error_and_nothing_is_lost(store_path: Path) -> None:
    fill_outbox(store_path, 2)
    result = run_cli("edge-agent", "publish", "--db", str(store_path), "--mqtt", f"mqtt://127.0.0.1:{free_port()}")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "cannot reach the broker" in result.stderr
    with open_store_db(store_path) as store:
        assert Outbox(store).stats().unsent == 2


def test_status_is_retained_and_the_last_will_says_offline(store_path: Path, broker: Mosquitto, tmp_path: Path) -> None:
    fill_outbox(store_path, 1)
    run_json("edge-agent", "publish", "--db", str(store_path), "--mqtt", broker.url, "--wait", "0.2")
    watcher = Listener(broker.url, ["retail/v1/demo/s1/status"])
    [(_, payload, retained)] = watcher.take(1)  # the retained status, delivered on subscription
    watcher.close()
    assert retained and json.loads(payload)["state"] == "offline" and json.loads(payload)["reason"] == "drained"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time\n"
        "from edge_agent.store_db import open_store_db\n"
        "from transport.mqtt import BrokerConfig\n"
        "from edge_agent.store_link import StoreLink, LinkSettings\n"
        f"store = open_store_db({str(store_path)!r})\n"
        f"p = StoreLink(store, LinkSettings(BrokerConfig({broker.url!r}), 'demo.s1.publisher', session_expiry=0))\n"
        "p.connect(); print('connected', flush=True); time.sleep(120)\n"
    )], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "connected"
        watcher = Listener(broker.url, ["retail/v1/demo/s1/status"])
        watcher.until(lambda status: status["state"] == "online")
        holder.kill()  # SIGKILL: no goodbye
        holder.wait()
        deadline = time.monotonic() + 60  # the broker notices after the keepalive (30 s x 1.5)
        states = []
        while time.monotonic() < deadline and "connection lost" not in states:
            states += [json.loads(p).get("reason") for _, p, _ in watcher.drain(1.0)]
        watcher.close()
        assert "connection lost" in states
    finally:
        if holder.poll() is None:
            holder.kill()


def test_a_status_or_metrics_breaking_its_contract_is_not_sent_and_the_uplink_goes_on(
        store_path: Path, broker: Mosquitto) -> None:
    fill_outbox(store_path, 1)
    watcher = Listener(broker.url, ["retail/v1/demo/s1/status", "retail/v1/demo/s1/metrics"])
    broken = {"alarms": ["disk"]}  # a list where the contract says an object of names to texts
    beats: queue.Queue[dict[str, Any]] = queue.Queue()
    stop = threading.Event()
    with open_store_db(store_path) as store:
        link = Uplink(store, LinkSettings(BrokerConfig(broker.url), "demo.s1.uplink"), stop=stop,
                      wake=threading.Event(), drain_every=0.1, status_every=60, metrics_every=0.1,
                      status_details=lambda: broken, health_details=lambda: broken, releases=None,
                      on_beat=lambda **details: beats.put(details))
        thread = threading.Thread(target=link.run, name="uplink")
        thread.start()
        try:
            beat = beats.get(timeout=10)
            while beat.get("invalid_payloads", 0) < 3:  # the status, then metrics again and again
                beat = beats.get(timeout=10)
        finally:
            stop.set()
            thread.join(timeout=20)
        unacked = Outbox(store).stats().unacked
    received = watcher.drain(0.5)
    watcher.close()
    assert not thread.is_alive() and beat["connected"], "the loop went on until it was stopped"
    assert beat["published_total"] == 1 and unacked == 1, "alerts still go out"
    assert beat["last_invalid"] == "metrics: field alarms must map at most 200 names to texts"
    statuses = [json.loads(payload) for topic, payload, _ in received if topic.endswith("/status")]
    assert statuses[0]["state"] == "online" and "alarms" not in statuses[0], "there, without the broken details"
    assert statuses[-1]["state"] == "offline" and statuses[-1]["reason"] == "stopped"
    assert not [topic for topic, *_ in received if topic.endswith("/metrics")], "broken metrics are never sent"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    broker = start_secure_broker(tmp_path_factory.mktemp("secure"), "demo", ["s1", "s2"])
    yield broker
    broker.broker.kill()


def test_the_broker_refuses_a_store_writing_under_another_stores_topic(secure: SecureBroker, tmp_path: Path) -> None:
    db = tmp_path / "s1.db"
    fill_outbox(db, 2, store_id="s1")
    own = secure.tls_url("demo.s1", secure.accounts / "store-s1.mqtt-password")
    foreign = secure.tls_url("demo.s2", secure.accounts / "store-s2.mqtt-password")
    ca = str(secure.pki / "ca.crt")
    refused = run_cli("edge-agent", "publish", "--db", str(db), "--mqtt", foreign, *secure.tls_args("s2"),
                      "--wait", "0.2")
    assert refused.returncode == 1 and "refused 2 message(s)" in refused.stderr and "Not authorized" in refused.stderr
    with open_store_db(db) as store:
        assert Outbox(store).stats().unsent == 2, "refused alerts stay in the outbox"
    accepted = run_json("edge-agent", "publish", "--db", str(db), "--mqtt", own, *secure.tls_args("s1"), "--wait", "0.2")
    assert accepted["published"] == 2
    no_tls = run_cli("edge-agent", "publish", "--db", str(db), "--mqtt", own.replace("mqtts://", "mqtt://"), "--wait", "0.2")
    assert no_tls.returncode == 1, "the store listener speaks TLS only"
    anonymous = run_cli("edge-agent", "publish", "--db", str(db), "--mqtt", f"mqtts://localhost:{secure.tls_port}",
                        *secure.tls_args("s1"))
    assert anonymous.returncode == 1 and "refused the connection" in anonymous.stderr
    no_certificate = run_cli("edge-agent", "publish", "--db", str(db), "--mqtt", own, "--ca-file", ca, "--wait", "0.2")
    assert no_certificate.returncode == 1, "the store listener wants the box's client certificate too"


def _secure_client(secure: SecureBroker, store: str, received: queue.Queue[tuple[str, object]]) -> mqtt.Client:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"probe-{store}",
                         protocol=MQTTProtocolVersion.MQTTv5)
    client.username_pw_set(f"demo.{store}", (secure.accounts / f"store-{store}.mqtt-password").read_text().strip())
    ca, cert, key = secure.client_files(store)
    client.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
    client.on_message = lambda _c, _u, message: received.put(("message", message.topic))
    client.on_publish = lambda _c, _u, _mid, code, _p: received.put(("puback", code))
    client.connect("localhost", secure.tls_port)
    client.loop_start()
    return client


def test_a_store_cannot_read_others_acks_or_publish_a_model(secure: SecureBroker) -> None:
    """Mosquitto grants a forbidden subscription but never delivers on it: what matters is delivery."""
    snoop_events: queue.Queue[tuple[str, object]] = queue.Queue()
    owner_events: queue.Queue[tuple[str, object]] = queue.Queue()
    snoop, owner = _secure_client(secure, "s1", snoop_events), _secure_client(secure, "s2", owner_events)
    aggregator = Listener(secure.plain_url("aggregator", secure.accounts / "aggregator.mqtt-password"), [])
    try:
        subscribe_and_wait(snoop, ["retail/v1/demo/s2/ack", "retail/v1/demo/s1/ack"])
        subscribe_and_wait(owner, ["retail/v1/demo/s2/ack"])
        aggregator.client.publish("retail/v1/demo/s2/ack", ack(["a1"], 1, "2025-10-01T00:00:00Z"), qos=1)
        # then one for s1 itself: once it has arrived, s2's ack (published first) would have too
        aggregator.client.publish("retail/v1/demo/s1/ack", ack(["b1"], 1, "2025-10-01T00:00:00Z"), qos=1)
        assert owner_events.get(timeout=10) == ("message", "retail/v1/demo/s2/ack")
        assert snoop_events.get(timeout=10) == ("message", "retail/v1/demo/s1/ack"), "store s1 received store s2's ack"
        assert snoop_events.empty()
        snoop.publish("retail/v1/demo/model/current", b"{}", qos=1, retain=True)
        kind, code = snoop_events.get(timeout=10)
        assert kind == "puback" and str(code) == "Not authorized"
    finally:
        for client in (snoop, owner):
            client.disconnect()
            client.loop_stop()
        aggregator.close()


def test_an_alert_the_aggregator_refused_is_not_resent_and_is_counted(store_path: Path, broker: Mosquitto) -> None:
    fill_outbox(store_path, 2)
    first, second = outbox_ids(store_path)
    with open_store_db(store_path) as store:
        publisher = StoreLink(store, LinkSettings(BrokerConfig(broker.url), "demo.s1.publisher", resend_after=0))
        publisher.connect()
        try:
            publisher.drain(wait_for_acks=0)
            assert publisher.client is not None
            publisher.client.publish("retail/v1/demo/s1/ack", ack([second], None, "2025-10-01T00:00:00Z",
                                     rejected=[{"alert_id": first, "reason": "field level must be one of ..."}]), qos=1)
            deadline = time.monotonic() + 10
            while publisher._acks.empty() and time.monotonic() < deadline:
                time.sleep(0.05)
            result = publisher.drain(wait_for_acks=0)
        finally:
            publisher.close()
        assert result.remaining == 0 and result.published == 0, "the refused alert is not sent again"
        assert publisher.rejected == 1 and Outbox(store).rejected() == 1


def outbox_ids(db: Path) -> list[str]:
    with open_store_db(db) as store:
        return [row[0] for row in store.conn.execute("SELECT alert_id FROM outbox ORDER BY seq")]
