"""The aggregator's handling of messages, without a broker: what is stored, what is dead-lettered, what is acked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from models.payloads import check_ack
from server.aggregator import AggregatorError, AggregatorSettings, Incoming, handle_batch
from server.aggregator.acks import MAX_IDS_PER_ACK, AckBatcher
from server.central import CentralDb, StoredAlerts, count_alerts, list_dead_letters, open_central_db
from server.central import tables
from tests.postgres import postgres_database
from tests.services import churn_alert
from transport.mqtt import BrokerConfig

ALERTS = "retail/v1/acme/s1/alert/churn"


def alert_message(seq: int, store_id: str = "s1", **overrides: object) -> Incoming:
    payload = json.dumps(churn_alert(seq, store_id, **overrides)).encode()
    return Incoming(f"retail/v1/acme/{store_id}/alert/churn", payload)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[CentralDb]:
    with open_central_db(str(tmp_path / "central.db")) as central:
        yield central


def test_good_alerts_are_stored_and_reported_per_store_for_the_acks(db: CentralDb) -> None:
    outcome = handle_batch(db, [alert_message(1), alert_message(2), alert_message(1, "s2")])
    assert outcome.new == 3 and not outcome.dead_letters
    assert outcome.stored[("acme", "s1")].new == ["acme-s1-000001", "acme-s1-000002"]
    assert outcome.stored[("acme", "s1")].contiguous_seq == 2
    again = handle_batch(db, [alert_message(2), alert_message(3)])
    s1 = again.stored[("acme", "s1")]
    assert (s1.new, s1.duplicates, s1.contiguous_seq) == (["acme-s1-000003"], ["acme-s1-000002"], 3)
    assert s1.alert_ids == ["acme-s1-000003", "acme-s1-000002"], "a resent alert is acked again"
    assert count_alerts(db) == 4


def test_each_alert_is_stored_in_its_list_early_warning_or_win_back(db: CentralDb) -> None:
    handle_batch(db, [alert_message(1), alert_message(2, kind="win_back", days_silent=95),
                      alert_message(3, kind="early_warning")])
    with db.read() as connection:
        kinds = dict(connection.execute(select(tables.alerts.c.seq, tables.alerts.c.kind)).all())
    assert kinds == {1: "early_warning", 2: "win_back", 3: "early_warning"}  # absent: an early warning
    bad = handle_batch(db, [alert_message(4, kind="lapsed")])
    assert bad.new == 0 and "field kind must be one of" in bad.dead_letters[0][1]


def test_an_alerts_recent_events_are_stored_with_it_and_a_note_among_them_is_refused(db: CentralDb) -> None:
    events = [{"kind": "complaint", "days_ago": 12, "value": None}, {"kind": "survey", "days_ago": 30, "value": 3}]
    noted = [{**events[0], "note": "customer shouted at the cashier"}]
    outcome = handle_batch(db, [alert_message(1, recent_events=events), alert_message(2, recent_events=noted)])
    assert outcome.new == 1 and outcome.dead_letters[0][1] == "recent_events[0] must have exactly kind, days_ago, value"
    with db.read() as connection:
        stored = connection.execute(select(tables.alerts.c.seq, tables.alerts.c.recent_events)).all()
    assert [(seq, json.loads(text)) for seq, text in stored] == [(1, events)]


@pytest.mark.parametrize(("payload", "reason"), [
    (b"{not json", "not JSON"),
    (json.dumps({**churn_alert(1), "schema": "retail.churn-alert/9"}).encode(), "schema must be"),
    (json.dumps(churn_alert(1, store_id="s2")).encode(), "field store_id is 's2' but the topic is 's1'"),
    (json.dumps(churn_alert(1, risk_score=101)).encode(), "risk_score must be in 0..100"),
    (json.dumps(churn_alert(1, level="blue")).encode(), "field level must be one of"),
])
def test_a_bad_alert_becomes_a_dead_letter_with_its_reason_and_the_batch_goes_on(
        db: CentralDb, payload: bytes, reason: str) -> None:
    outcome = handle_batch(db, [Incoming(ALERTS, payload), alert_message(2)])
    assert [topic for topic, _ in outcome.dead_letters] == [ALERTS]
    assert reason in outcome.dead_letters[0][1]
    assert outcome.stored[("acme", "s1")].new == ["acme-s1-000002"]
    (dead,) = list_dead_letters(db)
    assert reason in dead["reason"] and dead["raw"] == payload.decode() and dead["topic"] == ALERTS


def test_messages_on_topics_outside_the_contract_are_dead_letters(db: CentralDb) -> None:
    outcome = handle_batch(db, [Incoming("elsewhere/x", b"{}"), Incoming("retail/v1/acme/s1/whatever", b"{}")])
    assert [reason for _, reason in outcome.dead_letters] == [
        "'elsewhere/x' is not a store topic", "no aggregator handles topic leaf 'whatever'"]


def test_a_number_past_64_bits_is_set_aside_alone(db: CentralDb) -> None:
    too_big = Incoming(ALERTS, json.dumps({**churn_alert(2), "seq": 2**70}).encode())  # past SQLite's 64-bit integers
    outcome = handle_batch(db, [alert_message(1), too_big, alert_message(3)])
    assert outcome.stored[("acme", "s1")].new == ["acme-s1-000001", "acme-s1-000003"]
    (dead,) = outcome.dead_letters
    assert "beyond 64 bits" in dead[1]


def test_a_message_the_database_refuses_is_set_aside_alone(db: CentralDb, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import IntegrityError

    from server.aggregator import handling

    real = handling.store_alerts

    def refusing(connection, chain, store_id, documents, now):  # type: ignore[no-untyped-def]
        if any(document["seq"] == 2 for document, _ in documents):
            raise IntegrityError("INSERT", {}, Exception("value refused by the database"))
        return real(connection, chain, store_id, documents, now)

    monkeypatch.setattr(handling, "store_alerts", refusing)
    outcome = handle_batch(db, [alert_message(1), alert_message(2), alert_message(3)])
    assert outcome.stored[("acme", "s1")].new == ["acme-s1-000001", "acme-s1-000003"]
    (dead,) = outcome.dead_letters
    assert dead[1] == "the database refused it: value refused by the database"


def test_a_nul_character_postgresql_cannot_store_is_a_dead_letter_there() -> None:
    with postgres_database() as url, open_central_db(url) as central:
        outcome = handle_batch(central, [alert_message(1, customer_ref="C\u00001"), alert_message(2)])
        assert outcome.stored[("acme", "s1")].new == ["acme-s1-000002"]
        assert outcome.stored[("acme", "s1")].contiguous_seq == 0, "seq 1 is still missing"
        assert "NUL" in outcome.dead_letters[0][1]


def status(state: str, **extra: object) -> bytes:
    return json.dumps({"schema": "retail.store-status/1", "state": state, "chain": "acme", "store_id": "s1",
                       **extra}).encode()


def test_status_follows_the_store_and_its_last_will(db: CentralDb) -> None:
    handle_batch(db, [Incoming("retail/v1/acme/s1/status", status("online", at="2026-03-01T08:00:00Z"))])
    handle_batch(db, [Incoming("retail/v1/acme/s1/status", status("offline"), retain=True)])
    with db.read() as connection:
        row = connection.execute(select(tables.stores)).mappings().one()
    assert (row["state"], row["last_seen"]) == ("offline", "2026-03-01T08:00:00Z")
    assert json.loads(row["status"])["state"] == "offline"


def metrics(*hours: object) -> bytes:
    return json.dumps({"schema": "retail.store-metrics/1", "chain": "acme", "store_id": "s1",
                       "at": "2026-03-01T11:00:00Z", "outbox": 0, "footfall_hourly": list(hours)}).encode()


def test_metrics_fill_hourly_footfall_and_a_bad_hour_is_a_dead_letter(db: CentralDb) -> None:
    hour = {"hour": "2026-03-01T10:00", "entries": 52, "exits": 50, "transactions": 14}
    outcome = handle_batch(db, [
        Incoming("retail/v1/acme/s1/metrics", metrics(hour)),
        Incoming("retail/v1/acme/s1/metrics", metrics({**hour, "hour": "2026-03-01 10h"})),
        Incoming("retail/v1/acme/s1/metrics", metrics({**hour, "entries": -1})),
    ])
    assert outcome.metrics == 1 and len(outcome.dead_letters) == 2
    assert all("footfall_hourly[0]" in reason for _, reason in outcome.dead_letters)
    with db.read() as connection:
        rows = connection.execute(select(tables.footfall_hourly)).mappings().all()
        latest = connection.execute(select(tables.store_metrics.c.metrics)).scalar_one()
    assert [(r["hour"], r["entries"], r["exits"], r["transactions"]) for r in rows] == [
        ("2026-03-01T10:00", 52, 50, 14)]
    assert json.loads(latest)["outbox"] == 0


def quality(*pos_days: dict[str, object], gaps: list[dict[str, object]] | None = None) -> bytes:
    return json.dumps({"schema": "retail.store-metrics/1", "chain": "acme", "store_id": "s1",
                       "at": "2026-03-02T11:00:00Z", "data_quality": {
                           "today": "2026-03-02", "days": 14, "camera_gaps": gaps or [],
                           "inputs": {"pos": {"last_export_at": "2026-03-02T02:10:00Z", "daily": list(pos_days)},
                                      "events": {"last_export_at": None, "daily": []}}}}).encode()


def pos_day(day: str, accepted: int, reasons: dict[str, int]) -> dict[str, object]:
    return {"day": day, "runs": 1, "failed": 0, "accepted": accepted, "quarantined": sum(reasons.values()),
            "reasons": reasons}


def test_data_quality_is_kept_per_input_and_day_and_a_later_message_replaces_a_day(db: CentralDb) -> None:
    gap = {"day": "2026-03-01", "source": "camera:door", "gaps": 2, "seconds": 330.0}
    handle_batch(db, [Incoming("retail/v1/acme/s1/metrics", quality(
        pos_day("2026-03-01", 1000, {"bad amount": 3}), pos_day("2026-03-02", 400, {}), gaps=[gap]))])
    outcome = handle_batch(db, [Incoming("retail/v1/acme/s1/metrics", quality(  # later: the day grew, 1 March left
        pos_day("2026-03-02", 900, {"bad amount": 1, "missing timestamp": 2})))])
    assert outcome.metrics == 1 and not outcome.dead_letters
    with db.read() as connection:
        days = connection.execute(select(tables.input_days).order_by(tables.input_days.c.day)).mappings().all()
        gaps = connection.execute(select(tables.camera_gap_days)).mappings().all()
    assert [(d["chain"], d["store_id"], d["input"], d["day"], d["accepted"], d["quarantined"], json.loads(d["reasons"]))
            for d in days] == [("acme", "s1", "pos", "2026-03-01", 1000, 3, {"bad amount": 3}),
                               ("acme", "s1", "pos", "2026-03-02", 900, 3, {"bad amount": 1, "missing timestamp": 2})]
    assert [(g["source"], g["day"], g["gaps"], g["seconds"]) for g in gaps] == [("camera:door", "2026-03-01", 2, 330.0)]


@pytest.mark.parametrize(("change", "reason"), [
    (lambda q: q["inputs"].update(till={"last_export_at": None, "daily": []}), "the inputs are pos, events"),
    (lambda q: q["inputs"]["pos"]["daily"][0].update(accepted=-1), "needs non-negative integer"),
    (lambda q: q["inputs"]["pos"]["daily"][0].update(day="yesterday"), "day must be a date"),
    (lambda q: q["inputs"]["pos"]["daily"][0].update(reasons={"bad amount": "3"}), "reasons must map"),
    (lambda q: q["inputs"]["pos"]["daily"].extend([q["inputs"]["pos"]["daily"][0]] * 60), "at most 60 days"),
    (lambda q: q["inputs"]["pos"].update(last_export_at="last night"), "last_export_at must be an ISO 8601 time"),
    (lambda q: q["camera_gaps"].append({"day": "2026-03-01", "source": "door", "gaps": 1, "seconds": -5}),
     "camera_gaps[0] needs"),
    (lambda q: q.update(today=None), "field today"),
])
def test_bad_data_quality_sets_the_metrics_message_aside_with_the_reason(db: CentralDb, change: object,
                                                                         reason: str) -> None:
    document = json.loads(quality(pos_day("2026-03-02", 400, {})))
    change(document["data_quality"])  # type: ignore[operator]
    outcome = handle_batch(db, [Incoming("retail/v1/acme/s1/metrics", json.dumps(document).encode())])
    assert outcome.metrics == 0 and reason in outcome.dead_letters[0][1]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_acks_are_batched_per_store_and_leave_within_the_interval() -> None:
    sent: list[tuple[str, bytes]] = []
    clock = Clock()
    batcher = AckBatcher(lambda topic, payload: sent.append((topic, payload)), interval=0.3, clock=clock)
    batcher.add("acme", "s1", StoredAlerts(new=["a1", "a2"], contiguous_seq=2))
    clock.now += 0.1
    batcher.add("acme", "s1", StoredAlerts(new=["a3"], duplicates=["a1"], contiguous_seq=3))
    batcher.add("acme", "s2", StoredAlerts(new=["b5"], contiguous_seq=0))
    assert not batcher.due()
    clock.now += 0.25
    assert batcher.due()
    assert batcher.flush() == 2 and not batcher.due()
    acks = {topic: check_ack(payload) for topic, payload in sent}
    assert acks["retail/v1/acme/s1/ack"]["alert_ids"] == ["a1", "a2", "a3"]
    assert acks["retail/v1/acme/s1/ack"]["up_to_seq"] == 3
    assert acks["retail/v1/acme/s2/ack"]["up_to_seq"] is None, "nothing contiguous yet: only the ids count"


def test_a_large_ack_is_split() -> None:
    sent: list[bytes] = []
    batcher = AckBatcher(lambda _topic, payload: sent.append(payload))
    batcher.add("acme", "s1", StoredAlerts(new=[f"id-{i}" for i in range(MAX_IDS_PER_ACK + 3)], contiguous_seq=9))
    batcher.flush()
    assert [len(check_ack(p)["alert_ids"]) for p in sent] == [MAX_IDS_PER_ACK, 3]


def test_settings_refuse_a_group_that_would_break_the_shared_topic() -> None:
    with pytest.raises(AggregatorError, match="--group"):
        AggregatorSettings(BrokerConfig("mqtt://127.0.0.1:1883"), group="a/b")
    broker = BrokerConfig("mqtt://127.0.0.1:1883")
    settings = AggregatorSettings(broker, group="central")
    assert settings.stable_client_id == AggregatorSettings(broker, group="central").stable_client_id, "same on restart"
    assert settings.subscriptions()[0][0] == "$share/central/retail/v1/+/+/alert/churn"


def test_a_refused_alert_is_named_back_to_its_store_so_it_stops_resending(db: CentralDb) -> None:
    outcome = handle_batch(db, [Incoming(ALERTS, json.dumps(churn_alert(1, risk_score=101)).encode()),
                                Incoming(ALERTS, b"{not json")])
    assert outcome.rejected[("acme", "s1")] == [
        {"alert_id": "acme-s1-000001", "reason": "field risk_score must be in 0..100"}]
    sent: list[tuple[str, bytes]] = []
    batcher = AckBatcher(lambda topic, payload: sent.append((topic, payload)))
    batcher.reject("acme", "s1", outcome.rejected[("acme", "s1")])
    batcher.flush()
    [(topic, payload)] = sent
    document = check_ack(payload)
    assert topic == "retail/v1/acme/s1/ack" and document["alert_ids"] == []
    assert document["rejected"][0]["alert_id"] == "acme-s1-000001"
