"""Alert delivery under faults a store box meets in the field, and interop with plain MQTT tools.

Real processes throughout: the store box's publisher (the daemon's uplink loop,
or `edge-agent publish`), `churn-server aggregator`, Mosquitto; kills are
SIGKILL. Every fault test ends the same way: each alert in the central
database exactly once, and the store's outbox with nothing left unacknowledged.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_agent.outbox import Outbox
from edge_agent.score import ScoreResult, ScoringPolicy, record_scoring
from edge_agent.store_db import open_store_db
from models.alerting import AlertPolicy
from models.payloads import ack, check_alert
from server.processes import kill_group
from tests.builders import alert_counts, customer, published_schema
from tests.conftest import run_json
from tests.mqtt_helpers import Subscriber
from tests.polling import wait_until
from tests.schema_check import schema_errors
from tests.secure_broker import SecureBroker, start_secure_broker
from tests.services import QUICK_BUSY, VENV_BIN, AggregatorProcess, Mosquitto, churn_alert
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

KEEPALIVE_SECONDS = 8  # the box's MQTT keepalive: the broker gives up on it after 12 s of silence
PARTITION_SECONDS = 20.0  # longer than that, so the partition is seen by both sides

# The daemon's uplink loop (edge_agent.daemon.uplink), alone in its own process: the store box's
# publisher as it runs unattended, draining the outbox continuously and reconnecting by itself.
UPLINK_SCRIPT = f"""
import logging, signal, sys, threading
from edge_agent.daemon.uplink import Uplink
from edge_agent.store_link import LinkSettings
from edge_agent.store_db import open_store_db
from transport.mqtt import BrokerConfig
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
db, url, resend_after = sys.argv[1], sys.argv[2], float(sys.argv[3])
stop, wake = threading.Event(), threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
with open_store_db(db) as store:
    settings = LinkSettings(BrokerConfig(url, keepalive_seconds={KEEPALIVE_SECONDS}),
                                 f"{{store.chain}}.{{store.store_id}}.publisher", resend_after=resend_after)
    Uplink(store, settings, stop=stop, wake=wake, drain_every=0.2, status_every=5, metrics_every=3600,
           status_details=dict, health_details=dict, releases=None, on_beat=lambda **_: None).run()
"""


# --- helpers -------------------------------------------------------------------------------------

def write_alerts(db: Path, first: int, count: int, as_of: str = "2026-03-01") -> None:
    """Record a scoring run of `count` new customers: alerts and outbox rows in one transaction, as scoring does."""
    candidates = [customer(f"c{n:06d}", 70, "red") for n in range(first, first + count)]
    policy = ScoringPolicy(alerts=AlertPolicy(daily_cap=100_000, weekly_budget=1_000_000, cooldown_days=0))
    with open_store_db(db, chain="acme", store_id="s1") as store:
        record_scoring(store, ScoreResult(as_of, "m1", scored=count), candidates, policy)


def store_alert_ids(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute("SELECT alert_id FROM alerts")}


def unacked(db: Path) -> int:
    with open_store_db(db) as store:
        return Outbox(store).stats().unacked


def unsent(db: Path) -> int:
    with open_store_db(db) as store:
        return Outbox(store).stats().unsent


def central_ids(central: str) -> set[str]:
    with sqlite3.connect(central) as conn:
        return {row[0] for row in conn.execute("SELECT alert_id FROM alerts")}


def assert_delivered_exactly_once(db: Path, central: str) -> None:
    """The end state every fault test must reach."""
    expected = store_alert_ids(db)
    rows, distinct_ids, distinct_seqs = alert_counts(central)
    assert expected and central_ids(central) == expected
    assert rows == distinct_ids == distinct_seqs == len(expected), "an alert stored twice"
    assert unacked(db) == 0, "the store's outbox still holds unacknowledged alerts"


def delivered(db: Path, central: str) -> Callable[[], bool]:
    return lambda: central_ids(central) == store_alert_ids(db) and unacked(db) == 0


@dataclass
class UplinkProcess:
    """The store box's continuous publisher in its own process; its log is kept next to the store database."""

    db: Path
    url: str
    resend_after: float = 10.0
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.db.with_suffix(".uplink.log")

    def start(self) -> UplinkProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", UPLINK_SCRIPT, str(self.db), self.url, str(self.resend_after)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.process is not None:
            kill_group(self.process)
            self.process = None


@dataclass
class Central:
    """A private broker and one aggregator writing the central database."""

    folder: Path
    broker: Mosquitto
    aggregator: AggregatorProcess

    @property
    def db(self) -> str:
        return self.aggregator.db


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Central]:
    broker = Mosquitto(tmp_path / "broker").start()
    aggregator = AggregatorProcess(tmp_path, broker.url, str(tmp_path / "central.db"), extra_args=QUICK_BUSY)
    try:
        aggregator.start()
        yield Central(tmp_path, broker, aggregator)
    finally:
        aggregator.kill()
        broker.kill()


# --- 1. a network partition between the store and the broker ------------------------------------

def test_a_partition_longer_than_the_keepalive_while_scoring_goes_on_delivers_everything_once_after_it_heals(
        central: Central, tmp_path: Path) -> None:
    """Traffic black-holed for 20 s, past the keepalive (no reset, no close: the box only hears silence) while new alerts keep
    entering the outbox; once the network heals, the box's publisher delivers all of them, once."""
    db = tmp_path / "s1.db"
    write_alerts(db, 0, 20)
    proxy = TcpProxy(central.broker.port).start()
    uplink = UplinkProcess(db, f"mqtt://127.0.0.1:{proxy.port}").start()
    status = Subscriber(central.broker.url, ["retail/v1/acme/s1/status"])  # on the broker's side of the partition
    try:
        wait_until(delivered(db, central.db), 30, "the first alerts delivered before the partition")
        status.until(lambda document: document["state"] == "online")
        before = central_ids(central.db)

        proxy.partition()
        started, written = time.monotonic(), 20
        for batch in range(6):  # scoring keeps recording alerts all through the partition
            due = started + batch * PARTITION_SECONDS / 6
            wait_until(lambda due=due: time.monotonic() >= due, PARTITION_SECONDS, "the next scoring run")
            write_alerts(db, written, 25)
            written += 25
        wait_until(lambda: time.monotonic() - started >= PARTITION_SECONDS, PARTITION_SECONDS, "the partition's end")
        assert central_ids(central.db) == before, "something crossed the partition"
        assert unacked(db) == written - len(before)
        assert uplink.alive(), uplink.log()[-2000:]
        # the broker noticed the silence (keepalive) and published the box's Last Will: the console shows it offline
        will = status.until(lambda document: document["state"] == "offline", 1.0)
        assert will["reason"] == "connection lost", will
        proxy.heal()

        wait_until(delivered(db, central.db), 120, "everything delivered after the partition healed")
        assert_delivered_exactly_once(db, central.db)
        assert len(store_alert_ids(db)) == written == 170
    finally:
        status.close()
        uplink.kill()
        proxy.close()


# --- 2. hours offline, compressed: a large outbox drained when the broker becomes reachable ----------

def test_an_outbox_of_50000_alerts_drains_once_the_broker_is_reachable_and_each_is_stored_once(
        central: Central, tmp_path: Path) -> None:
    """What piles up in a long outage: 50,000 alerts waiting, the broker out of reach, then back."""
    db = tmp_path / "s1.db"
    write_alerts(db, 0, 50_000)
    proxy = TcpProxy(central.broker.port)  # not listening yet: the broker is out of reach
    uplink = UplinkProcess(db, f"mqtt://127.0.0.1:{proxy.port}", resend_after=120).start()
    try:
        wait_until(lambda: "broker unreachable" in uplink.log(), 30, "the publisher trying an unreachable broker")
        assert unsent(db) == 50_000
        proxy.start()
        reachable = time.monotonic()
        wait_until(delivered(db, central.db), 120, "50,000 alerts delivered")
        drain_seconds = time.monotonic() - reachable
        assert_delivered_exactly_once(db, central.db)
        assert len(store_alert_ids(db)) == 50_000
        print(f"\n50,000 alerts drained and acknowledged in {drain_seconds:.1f} s "
              f"({50_000 / drain_seconds:.0f} alerts/s)")
    finally:
        uplink.kill()
        proxy.close()


# --- 3. the store's publisher killed between PUBLISH and the aggregator's ack ---------------------------

def test_a_publisher_killed_after_publishing_but_before_the_ack_gets_the_ack_on_restart(
        central: Central, tmp_path: Path) -> None:
    """SIGKILL after the broker took the alerts (PUBACK recorded) but before the aggregator's ack came back.
    The box's persistent session keeps the ack on the broker; the restarted publisher clears its outbox
    with it, without sending anything again."""
    db = tmp_path / "s1.db"
    write_alerts(db, 0, 5)
    blocker = sqlite3.connect(central.db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the aggregator receives the alerts but cannot commit, so no ack yet
    publisher = subprocess.Popen(
        [str(VENV_BIN / "edge-agent"), "publish", "--db", str(db), "--mqtt", central.broker.url, "--wait", "60"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: unsent(db) == 0, 30, "every alert PUBACKed and recorded as sent")
        # the aggregator took the batch and cannot store it, so it acknowledges nothing (its operator sees this)
        wait_until(lambda: "central database unavailable" in central.aggregator.log(), 60,
                   "the aggregator holding the alerts it cannot store")
        kill_group(publisher)  # SIGKILL: PUBLISHed, PUBACKed, but not acknowledged by the aggregator
        assert unacked(db) == 5 and central_ids(central.db) == set()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        kill_group(publisher)

    wait_until(lambda: alert_counts(central.db)[0] == 5, 40, "the aggregator storing the alerts")
    report = run_json("edge-agent", "publish", "--db", str(db), "--mqtt", central.broker.url, "--wait", "15")
    assert report == {"published": 0, "acked": 5, "remaining": 0, "refused": []}, report
    assert_delivered_exactly_once(db, central.db)


# --- 4. the shipped secure broker configuration, seen through MQTT v5 reason codes ----------------

@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """Mosquitto on firmware_configs/mosquitto/mosquitto.conf with stores s1 and s2 of chain demo."""
    broker = start_secure_broker(tmp_path_factory.mktemp("secure"), "demo", ["s1", "s2"])
    yield broker
    broker.broker.kill()


class V5Probe:
    """A bare paho v2 client over MQTT v5 that records its CONNACK and SUBACK reason codes and its messages."""

    def __init__(self, secure: SecureBroker, user: str | None, tls: bool) -> None:
        self.acks: dict[str, queue.Queue[Any]] = {"connack": queue.Queue(), "suback": queue.Queue()}
        self.received: list[mqtt.MQTTMessage] = []
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5,
                                  client_id=f"probe-{user or 'anonymous'}-{time.time_ns()}")
        if user is not None:
            self.client.username_pw_set(user, _password(secure, user))
        if tls:
            ca, cert, key = secure.client_files("s1")
            self.client.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
        self.client.on_connect = lambda _c, _u, _f, reason, _p: self.acks["connack"].put(reason)
        self.client.on_subscribe = lambda _c, _u, _mid, reasons, _p: self.acks["suback"].put(reasons)
        self.client.on_message = lambda _c, _u, message: self.received.append(message)
        self.client.connect("localhost", secure.tls_port if tls else secure.plain_port)
        self.client.loop_start()

    def next(self, kind: str, seconds: float = 10.0) -> Any:
        """The reason code(s) of the next CONNACK or SUBACK."""
        try:
            return self.acks[kind].get(timeout=seconds)
        except queue.Empty:
            raise TimeoutError(f"no {kind} in {seconds} s") from None

    def topics(self) -> list[str]:
        return [message.topic for message in list(self.received)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _password(secure: SecureBroker, user: str) -> str:
    name = "aggregator" if user == "aggregator" else f"store-{user.split('.', 1)[1]}"
    return (secure.accounts / f"{name}.mqtt-password").read_text().strip()


@pytest.mark.parametrize("listener", ["tls", "loopback"])
def test_the_shipped_broker_refuses_an_anonymous_client_with_a_v5_not_authorized_connack(
        secure: SecureBroker, listener: str) -> None:
    """A v5 CONNACK says why (0x87 Not authorized), where v3.1.1 could only hang up or give a bare code."""
    probe = V5Probe(secure, None, tls=listener == "tls")
    try:
        reason = probe.next("connack")
        assert reason.is_failure and reason.value == 0x87 and str(reason) == "Not authorized", reason
    finally:
        probe.close()


def test_a_store_subscribed_to_another_stores_alerts_receives_none_of_them(secure: SecureBroker) -> None:
    """Mosquitto's ACL file does not check subscriptions: the SUBACK grants it (0x01, so no failure code to
    check), and the ACL is enforced on delivery. What matters is that nothing arrives: store s2 publishes an
    alert, then the aggregator acks store s1, and s1 receives its ack but never s2's alert."""
    snoop, aggregator = V5Probe(secure, "demo.s1", tls=True), V5Probe(secure, "aggregator", tls=False)
    owner = V5Probe(secure, "demo.s2", tls=True)
    try:
        for probe in (snoop, aggregator, owner):
            assert not probe.next("connack").is_failure
        snoop.client.subscribe([("retail/v1/demo/s2/alert/churn", 1), ("retail/v1/demo/+/alert/churn", 1),
                                ("retail/v1/demo/s1/ack", 1)])
        aggregator.client.subscribe("retail/v1/demo/s2/alert/churn", qos=1)
        snoop_granted, aggregator_granted = snoop.next("suback"), aggregator.next("suback")
        assert not any(code.is_failure for code in [*snoop_granted, *aggregator_granted])

        alert = json.dumps(churn_alert(1, "s2", "demo")).encode()
        owner.client.publish("retail/v1/demo/s2/alert/churn", alert, qos=1).wait_for_publish(10)
        wait_until(lambda: [m.payload for m in aggregator.received] == [alert], 10, "the control subscriber's copy")
        aggregator.client.publish("retail/v1/demo/s1/ack", ack([], None, "2026-03-01T00:00:00Z"), qos=1)
        wait_until(lambda: "retail/v1/demo/s1/ack" in snoop.topics(), 10, "s1's own ack, sent after s2's alert")
        assert snoop.topics() == ["retail/v1/demo/s1/ack"], "store s1 read store s2's alert"
    finally:
        for probe in (snoop, aggregator, owner):
            probe.close()


# --- 5. interop: the stock mosquitto_sub command-line client ----------------------------------------

def test_mosquitto_sub_receives_a_stores_alerts_as_json_valid_for_the_published_schema(
        secure: SecureBroker, tmp_path: Path) -> None:
    """An operator's `mosquitto_sub` (MQTT v5, the aggregator's account on the loopback listener) gets the
    alerts byte for byte as the store box published them, and each validates against the JSON Schema.
    It subscribes first with a persistent session (-c, -E: exit once subscribed), then collects what the
    broker kept for it, so no output needs reading while it runs."""
    db = tmp_path / "s1.db"
    with open_store_db(db, chain="demo", store_id="s1") as store:
        record_scoring(store, ScoreResult("2026-03-01", "m1", scored=3),
                       [customer(f"c{n:03d}", 55 + 10 * n, "orange") for n in range(3)], ScoringPolicy())
        published = [row[0] for row in store.conn.execute("SELECT payload FROM outbox ORDER BY seq")]
    subscribe = ["mosquitto_sub", "-V", "mqttv5", "-h", "127.0.0.1", "-p", str(secure.plain_port),
                 "-u", "aggregator", "-P", _password(secure, "aggregator"), "-i", f"mosquitto-sub-{time.time_ns()}",
                 "-c", "-x", "600", "-q", "1", "-t", "retail/v1/+/+/alert/churn"]
    subscribed = subprocess.run([*subscribe, "-E"], check=False, capture_output=True, text=True, timeout=30)
    assert subscribed.returncode == 0, subscribed.stderr
    (tmp_path / "s1.pw").write_text(_password(secure, "demo.s1"))
    report = run_json("edge-agent", "publish", "--db", str(db), "--mqtt", f"mqtts://demo.s1@localhost:{secure.tls_port}",
                      *secure.tls_args("s1"), "--password-file", str(tmp_path / "s1.pw"), "--wait", "0.2")
    assert report["published"] == 3
    collected = subprocess.run([*subscribe, "-C", "3", "-W", "30"], check=False,
                               capture_output=True, text=True, timeout=60)
    assert collected.returncode == 0, collected.stderr
    received = collected.stdout.splitlines()
    assert received == published, "mosquitto_sub did not print the store's payloads as published"
    schema = published_schema()
    for text in received:
        document = json.loads(text)
        assert schema_errors(schema, document) == [], document
        check_alert(document, "demo", "s1")
