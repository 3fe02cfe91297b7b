"""Alerts over MQTT that survive anything: a real broker, real aggregator processes, SIGKILL and restarts.

A plain paho client stands in for a store box: it publishes QoS 1 over MQTT v5
and listens on its ack topic. What a store can rely on: an alert it sees acked
(by id, or by `up_to_seq`) is in the central database, exactly once; one it
does not see acked it resends, and the resend is acked again.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from edge_agent.score import ScoreResult, ScoringPolicy, record_scoring
from edge_agent.store_db import open_store_db
from models.alerting import AlertPolicy
from models.payloads import ACK_SCHEMA
from server.central import list_dead_letters, open_central_db, store_watermarks, tables
from tests.builders import alert_counts, customer
from tests.conftest import run_cli, run_json
from tests.polling import wait_until
from tests.postgres import postgres_database
from tests.secure_broker import SecureBroker, start_secure_broker
from tests.services import QUICK_BUSY, AggregatorProcess, Mosquitto, StoreClient, churn_alert

pytestmark = pytest.mark.integration


@dataclass
class Rig:
    """A private broker, and the aggregators and store clients a test starts; all stopped at the end."""

    folder: Path
    broker: Mosquitto
    aggregators: list[AggregatorProcess] = field(default_factory=list)
    stores: list[StoreClient] = field(default_factory=list)

    @property
    def db(self) -> str:
        return str(self.folder / "central.db")

    def aggregator(self, client_id: str = "aggregator-1", db: str | None = None,
                   wait: bool = True, extra_args: list[str] | None = None) -> AggregatorProcess:
        aggregator = AggregatorProcess(self.folder, self.broker.url, db or self.db, client_id=client_id,
                                       extra_args=extra_args or [])
        self.aggregators.append(aggregator)
        return aggregator.start(wait)

    def store(self, store_id: str = "s1") -> StoreClient:
        client = StoreClient(self.broker.url, "acme", store_id)
        self.stores.append(client)
        return client


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    # Run as root, Mosquitto would switch to its own user, which cannot write its log and
    # persistence file in pytest's private temporary folders.
    setup = Rig(tmp_path, Mosquitto(tmp_path / "broker").start())
    yield setup
    for aggregator in setup.aggregators:
        aggregator.kill()
    for client in setup.stores:
        client.close()
    setup.broker.kill()


def watermarks(target: str) -> list[tuple[int, list[list[int]]]]:
    with open_central_db(target) as db:
        return [(m["contiguous_seq"], m["open_gaps"]) for m in store_watermarks(db)]


def stopped_with_new(aggregator: AggregatorProcess) -> int:
    """How many new alerts the aggregator says it stored, from its last log line."""
    (new,) = re.findall(r"stopped: (\d+) new alerts", aggregator.log())
    return int(new)


def test_alerts_are_stored_then_acked_and_bad_ones_do_not_stop_the_aggregator(rig: Rig) -> None:
    aggregator = rig.aggregator()
    store = rig.store()
    store.publish("status", {"schema": "retail.store-status/1", "state": "online", "chain": "acme",
                             "store_id": "s1", "at": "2026-03-01T07:00:00Z"}, retain=True)
    store.publish("metrics", {"schema": "retail.store-metrics/1", "chain": "acme", "store_id": "s1",
                              "at": "2026-03-01T10:00:00Z", "footfall_hourly": [
                                  {"hour": "2026-03-01T09:00", "entries": 31, "exits": 30, "transactions": 9}]}, qos=0)
    first = store.publish_alerts(range(1, 11))
    for bad in (b"{oops", {**churn_alert(11), "schema": "retail.churn-alert/0"}, churn_alert(11, store_id="s9"),
                churn_alert(11, risk_score=140)):
        store.publish("alert/churn", bad)
    later = store.publish_alerts(range(11, 16))
    store.wait_for_acks(first + later, by_seq=False)

    assert aggregator.process is not None and aggregator.process.poll() is None
    assert all(a["schema"] == ACK_SCHEMA and a["acked_at"] for a in store.acks)
    assert max(a["up_to_seq"] for a in store.acks) == 15
    assert alert_counts(rig.db) == (15, 15, 15)
    with open_central_db(rig.db) as central:
        reasons = sorted(d["reason"] for d in list_dead_letters(central))
        with central.read() as connection:
            state = connection.execute(select(tables.stores.c.state)).scalar_one()
            entries = connection.execute(select(tables.footfall_hourly.c.entries)).scalar_one()
    assert len(reasons) == 4 and reasons[0].startswith("field risk_score") and reasons[-1].startswith("schema must")
    assert (state, entries) == ("online", 31)
    listed = run_json("churn-server", "alerts", "--db", rig.db, "--limit", "0")
    assert sorted(a["alert_id"] for a in listed) == sorted(first + later)  # type: ignore[union-attr]
    assert aggregator.stop() == 0
    assert stopped_with_new(aggregator) == 15


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_two_aggregators_split_the_shared_subscription_and_store_each_alert_once(engine: str, rig: Rig) -> None:
    with postgres_database() if engine == "postgresql" else nullcontext(rig.db) as db:
        open_central_db(db).close()  # migrate once, before two processes race to
        pair = [rig.aggregator(f"aggregator-{n}", db, wait=False) for n in (1, 2)]
        for aggregator in pair:
            aggregator.wait_for_log("subscribed to")
        clients = [rig.store(f"s{n}") for n in range(1, 5)]
        sent = {client.store_id: client.publish_alerts(range(1, 41)) for client in clients}
        for client in clients:
            client.wait_for_acks(sent[client.store_id])
        assert [aggregator.stop() for aggregator in pair] == [0, 0]
        shares = [stopped_with_new(aggregator) for aggregator in pair]
        assert sum(shares) == 160 and min(shares) > 0, shares
        assert alert_counts(db) == (160, 160, 160)
        assert watermarks(db) == [(40, [])] * 4


def test_an_aggregator_killed_before_its_commit_gets_the_alert_again_from_the_broker(rig: Rig) -> None:
    aggregator = rig.aggregator(extra_args=QUICK_BUSY)
    blocker = sqlite3.connect(rig.db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the aggregator receives but cannot commit
    store = rig.store()
    (alert_id,) = store.publish_alerts([1])  # published once: the store never sends it again
    # the aggregator has the alert and cannot store it (after the database's busy timeout it says so)
    aggregator.wait_for_log("central database unavailable", seconds=90)
    aggregator.kill()
    blocker.execute("ROLLBACK")
    blocker.close()
    assert alert_counts(rig.db) == (0, 0, 0) and store.acked_ids() == set()

    aggregator.start()
    store.wait_for_acks([alert_id])  # only the broker still had it, for the aggregator's persistent session
    assert alert_counts(rig.db) == (1, 1, 1)
    assert aggregator.stop() == 0 and stopped_with_new(aggregator) == 1


def test_sigkill_mid_stream_and_restart_loses_nothing_and_duplicates_nothing(rig: Rig) -> None:
    aggregator = rig.aggregator()
    store = rig.store()
    sent = []
    for seq in range(1, 151):
        sent += store.publish_alerts([seq])
        if seq == 60:
            wait_until(lambda: alert_counts(rig.db)[0] >= 20)
            aggregator.kill()  # while alerts are arriving; the rest come while it is down
    assert alert_counts(rig.db)[0] < 150
    aggregator.start()  # the broker kept what came while it was down
    store.wait_for_acks(sent)
    assert max(a["up_to_seq"] for a in store.acks) == 150, "acks lost in the kill are covered by up_to_seq"
    store.acks.clear()
    store.wait_for_acks(store.publish_alerts(range(1, 6)), by_seq=False)  # a store's resend is acked again
    assert alert_counts(rig.db) == (150, 150, 150)
    assert watermarks(rig.db) == [(150, [])]


def test_the_aggregator_reconnects_after_broker_restarts_and_gets_what_the_broker_kept(rig: Rig) -> None:
    aggregator = rig.aggregator()
    first = rig.store()
    first.wait_for_acks(first.publish_alerts(range(1, 21)))

    rig.broker.restart()  # SIGKILL: the broker forgets what it had not saved; the aggregator subscribes again
    aggregator.wait_for_log("subscribed to", 2, seconds=40)
    second = rig.store()
    second.wait_for_acks(second.publish_alerts(range(21, 41)))

    assert aggregator.stop() == 0
    queued = second.publish_alerts(range(41, 61))  # for the aggregator's session, while it is down
    rig.broker.stop()  # a clean stop saves the queue
    rig.broker.start()
    third = rig.store()
    aggregator.start()
    third.wait_for_acks(queued)
    assert alert_counts(rig.db) == (60, 60, 60)
    assert max(a["up_to_seq"] for a in third.acks) == 60
    assert aggregator.stop() == 0




@pytest.fixture
def shipped_broker(tmp_path: Path) -> Iterator[SecureBroker]:
    """Mosquitto on firmware_configs/mosquitto/mosquitto.conf: accounts, ACL, TLS; store s1 of chain demo."""
    secure = start_secure_broker(tmp_path / "broker", "demo", ["s1"])
    yield secure
    secure.broker.kill()


def test_the_store_boxs_own_publisher_and_the_aggregator_on_the_shipped_broker_config(
        shipped_broker: SecureBroker, tmp_path: Path) -> None:
    """The ACL delivers to the aggregator's shared subscription, and the box's real publisher sees every
    alert, and the overflow summary past its daily cap, acknowledged."""
    central = str(tmp_path / "central.db")
    aggregator = AggregatorProcess(
        tmp_path, f"mqtt://aggregator@127.0.0.1:{shipped_broker.plain_port}", central,
        extra_args=["--password-file", str(shipped_broker.accounts / "aggregator.mqtt-password")])
    box = tmp_path / "s1.db"
    with open_store_db(box, chain="demo", store_id="s1") as store:
        record_scoring(store, ScoreResult("2025-10-01", "m1", scored=12),
                       [customer(f"c{i:03d}", 70, "red") for i in range(12)],
                       ScoringPolicy(alerts=AlertPolicy(daily_cap=10)))
    try:
        aggregator.start()
        report = run_json(
            "edge-agent", "publish", "--db", str(box), "--mqtt", f"mqtts://demo.s1@localhost:{shipped_broker.tls_port}",
            *shipped_broker.tls_args("s1"), "--password-file",
            str(shipped_broker.accounts / "store-s1.mqtt-password"), "--wait", "15")
    finally:
        aggregator.kill()
    assert report == {"published": 11, "acked": 11, "remaining": 0, "refused": []}  # 10 alerts + 1 overflow
    assert alert_counts(central) == (10, 10, 10)
    assert watermarks(central) == [(11, [])]


def test_an_aggregator_the_broker_refuses_stops_with_a_one_line_error(
        shipped_broker: SecureBroker, tmp_path: Path) -> None:
    (tmp_path / "wrong").write_text("not-the-password\n")
    url = f"mqtt://aggregator@127.0.0.1:{shipped_broker.plain_port}"
    refused = run_cli("churn-server", "aggregator", "--mqtt", url, "--password-file", str(tmp_path / "wrong"),
                      "--db", str(tmp_path / "central.db"), timeout=30)
    last = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 1, refused.stderr
    assert re.fullmatch(r"churn-server: error: the broker at mqtt://127\.0\.0\.1:\d+ refused the connection: "
                        r"Not authorized", last), last


def test_alerts_a_killed_broker_lost_after_its_puback_are_resent_and_stored_once(tmp_path: Path) -> None:
    """Mosquitto writes its queue to disk only on exit or autosave: a kill -9 loses what it PUBACKed.
    The store keeps every alert until the aggregator acknowledges it, so its resend fills the hole."""
    broker = Mosquitto(tmp_path / "broker", extra="autosave_interval 3600").start()
    rig = Rig(tmp_path, broker)
    try:
        rig.aggregator().stop()  # its persistent session and shared subscription now exist on the broker
        db = tmp_path / "s1.db"
        result = ScoreResult("2025-10-01", "m1", scored=5)
        with open_store_db(db, chain="acme", store_id="s1") as store:
            record_scoring(store, result, [customer(f"c{i}", 60, "orange") for i in range(5)], ScoringPolicy())
        first = run_json("edge-agent", "publish", "--db", str(db), "--mqtt", broker.url, "--wait", "0.5")
        assert (first["published"], first["remaining"]) == (5, 5), "PUBACKed, queued for the aggregator"
        broker.kill()  # SIGKILL before any autosave: the queued alerts are gone
        broker.start()
        rig.aggregator()
        probe = rig.store("s2")  # a later alert of another store: once it is acknowledged, anything the broker
        probe.wait_for_acks(probe.publish_alerts([1]))  # still held for the aggregator would have arrived first
        assert alert_counts(rig.db) == (1, 1, 1), "the broker lost them"
        second = run_json("edge-agent", "publish", "--db", str(db), "--mqtt", broker.url, "--wait", "10",
                          "--resend-after", "0")
        assert (second["published"], second["acked"], second["remaining"]) == (5, 5, 0)
        assert alert_counts(rig.db) == (6, 6, 6)
    finally:
        for aggregator in rig.aggregators:
            aggregator.kill()
        for client in rig.stores:
            client.close()
        broker.kill()
