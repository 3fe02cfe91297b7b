"""Hostile bytes on a store's own topics, against the real aggregator process: nothing stops it, nothing is lost.

Every message ends stored or dead-lettered whatever its bytes (nesting, size,
encoding, types, NaN and Infinity, huge numbers, odd topic levels), the good
alerts around it are acked, and a restarted aggregator does not trip over what
the broker kept. One store cannot pre-empt another store's alert ids either.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import select

from server.central import list_dead_letters, open_central_db, tables
from tests.services import AggregatorProcess, Mosquitto, StoreClient, churn_alert

pytestmark = pytest.mark.integration


def _alert_bytes(seq: int, **overrides: object) -> bytes:
    return json.dumps(churn_alert(seq, **overrides)).encode()


def _raw_alert(seq: int, field: str, literal: str) -> bytes:
    """An alert whose `field` holds a JSON literal json.dumps would never write (e.g. 1e999)."""
    document = churn_alert(seq)
    document[field] = "__HERE__"
    return json.dumps(document).encode().replace(b'"__HERE__"', literal.encode())


HOSTILE_ALERTS = {
    "deep list": b"[" * 60_000,
    "deep objects": b'{"a":' * 20_000 + b"1" + b"}" * 20_000,
    "deep inside a valid alert": _raw_alert(90, "reasons", "[" * 5_000 + "]" * 5_000),
    "NaN": _raw_alert(91, "clv_estimate", "NaN"),
    "Infinity": _raw_alert(92, "action_cost_cap", "Infinity"),
    "1e999": _raw_alert(93, "clv_estimate", "1e999"),
    "huge seq": _raw_alert(94, "seq", str(10**30)),
    "5000-digit number": _raw_alert(95, "risk_score", "9" * 5_000),
    "not UTF-8": b'{"schema": "\xff\xfe"}',
    "UTF-16": json.dumps(churn_alert(96)).encode("utf-16"),
    "lone surrogate": _raw_alert(97, "customer_ref", '"C\\ud800"'),
    "NUL": _raw_alert(98, "customer_ref", '"C\\u0000"'),
    "score as text": _alert_bytes(99, risk_score="72"),
    "reason value as text": _alert_bytes(100, reasons=[{"text": "x", "feature": "f", "value": "lots"}]),
    "level as list": _alert_bytes(101, level=["red"]),
    "empty": b"",
    "oversized": b'{"pad": "' + b"x" * 400_000 + b'"}',
}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    running = Mosquitto(tmp_path / "broker").start()
    yield running
    running.kill()


@pytest.fixture
def aggregator(tmp_path: Path, broker: Mosquitto) -> Iterator[AggregatorProcess]:
    process = AggregatorProcess(tmp_path, broker.url, str(tmp_path / "central.db")).start()
    yield process
    process.kill()


@pytest.fixture
def stores(broker: Mosquitto) -> Iterator[dict[str, StoreClient]]:
    clients = {store_id: StoreClient(broker.url, "acme", store_id) for store_id in ("s1", "s2")}
    yield clients
    for client in clients.values():
        client.close()


def _publish_raw(url_port: int, topic: str, payload: bytes) -> None:
    """A publisher that is no store box: any topic, any bytes, QoS 1, waits for the PUBACK."""
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="",
                         protocol=MQTTProtocolVersion.MQTTv5)
    client.connect("127.0.0.1", url_port)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def test_no_bytes_on_a_stores_own_topics_stop_the_aggregator_or_cost_an_alert(
        broker: Mosquitto, aggregator: AggregatorProcess, stores: dict[str, StoreClient], tmp_path: Path) -> None:
    s1 = stores["s1"]
    good = s1.publish_alerts([1])
    for payload in HOSTILE_ALERTS.values():
        s1.publish("alert/churn", payload)
    s1.publish("status", {"schema": "retail.store-status/1", "state": "online", "chain": "acme", "store_id": "s1",
                          "at": "2026-03-01T07:00:00Z", "outbox_unacked": "lots"}, retain=True)
    s1.publish("metrics", {"schema": "retail.store-metrics/1", "chain": "acme", "store_id": "s1",
                           "at": "2026-03-01T07:00:00Z", "alarms": ["disk"]})
    # the status and metrics models see the same hostile shapes as the alert's: deep nesting, a huge number
    s1.publish("metrics", b'{"schema": "retail.store-metrics/1", "chain": "acme", "store_id": "s1", '
                          b'"at": "2026-03-01T07:00:00Z", "data_quality": ' + b"[" * 50_000 + b"]" * 50_000 + b"}")
    s1.publish("status", b'{"schema": "retail.store-status/1", "state": "online", "chain": "acme", "store_id": "s1", '
                         b'"at": "2026-03-01T07:00:00Z", "outbox_unacked": 1' + b"0" * 400 + b"}")
    for odd_store in ("with space", "ü", ".."):  # topic levels no store id may have
        _publish_raw(broker.port, f"retail/v1/acme/{odd_store}/alert/churn", _alert_bytes(1, store_id=odd_store))
    good += s1.publish_alerts(range(2, 6))
    s1.wait_for_acks(good, by_seq=False)

    assert aggregator.process is not None and aggregator.process.poll() is None, aggregator.log()
    db = str(tmp_path / "central.db")
    with open_central_db(db) as central:
        dead = list_dead_letters(central, limit=None)
        with central.read() as connection:
            stored = connection.execute(select(tables.alerts.c.alert_id)).scalars().all()
            status = connection.execute(select(tables.stores.c.status)).scalars().all()
    assert sorted(stored) == sorted(good)
    assert len(dead) == len(HOSTILE_ALERTS) + 4 + 3, [d["reason"] for d in dead]
    assert status == [], "a status breaking its types is a dead letter, not the store's state"
    (oversized,) = [d for d in dead if d["bytes"] > 300_000]
    assert oversized["raw"] == "" and oversized["digest"] in oversized["reason"], "a digest, not 30 MB of garbage"

    # What the broker still holds for the aggregator's session must not trip a restart either.
    assert aggregator.stop() == 0
    for payload in (HOSTILE_ALERTS["deep list"], HOSTILE_ALERTS["NaN"]):
        s1.publish("alert/churn", payload + b" ")  # new bytes, queued while the aggregator is down
    later = s1.publish_alerts([6])
    aggregator.start()
    s1.wait_for_acks(later, by_seq=False)
    assert aggregator.process is not None and aggregator.process.poll() is None, aggregator.log()


def test_a_store_cannot_take_another_stores_alert_id(aggregator: AggregatorProcess,
                                                     stores: dict[str, StoreClient], tmp_path: Path) -> None:
    s1, s2 = stores["s1"], stores["s2"]
    theirs = churn_alert(1, "s2")["alert_id"]  # the id s2 will use for its next alert
    s1.publish("alert/churn", churn_alert(1, "s1", alert_id=theirs, customer_ref="PLANTED"))
    s1.wait_for_acks([theirs], by_seq=False)
    (real,) = s2.publish_alerts([1])
    assert real == theirs
    s2.wait_for_acks([real], by_seq=False)

    with open_central_db(str(tmp_path / "central.db")) as central, central.read() as connection:
        rows = connection.execute(select(tables.alerts.c.store_id, tables.alerts.c.customer_ref)
                                  .where(tables.alerts.c.alert_id == theirs)).all()
    assert sorted(rows) == [("s1", "PLANTED"), ("s2", "C00001")], "each store keeps its own alert"
