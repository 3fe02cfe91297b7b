"""Alert fatigue control and the outbox: cooldown, level rises, the daily cap, the control group,
pseudonymised references, the disk quota, and one transaction for alerts and outbox."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from edge_agent.outbox import Outbox
from edge_agent.score import ScoreResult, ScoringPolicy, record_scoring
from edge_agent.store_db import open_store_db, write_transaction
from models.alerting import AlertPolicy, pseudonymise
from models.payloads import PayloadError
from models.scoring import ScoredCustomer
from tests.builders import customer


def run(db: Path, day: str, candidates: list[ScoredCustomer], policy: ScoringPolicy | None = None) -> ScoreResult:
    result = ScoreResult(day, "m1", scored=len(candidates))
    with open_store_db(db, chain="demo", store_id="s1") as store:
        record_scoring(store, result, candidates, policy or ScoringPolicy())
    return result


def outbox_documents(db: Path) -> list[dict]:  # type: ignore[type-arg]
    with open_store_db(db) as store:
        rows = store.conn.execute("SELECT seq, payload FROM outbox ORDER BY seq").fetchall()
    return [json.loads(p) for _, p in rows]


def test_every_alert_enters_the_outbox_with_a_monotonic_seq(store_path: Path) -> None:
    run(store_path, "2025-10-01", [customer("a", 70, "red"), customer("b", 50, "orange")])
    run(store_path, "2025-10-02", [customer("c", 90, "purple")])
    documents = outbox_documents(store_path)
    assert [d["seq"] for d in documents] == [1, 2, 3]
    assert [d["customer_ref"] for d in documents] == ["a", "b", "c"]  # riskiest first within a run
    assert all(d["schema"] == "retail.churn-alert/1" and d["chain"] == "demo" for d in documents)
    with open_store_db(store_path) as store:  # a restart: the counter continues
        assert Outbox(store).stats().unacked == 3


def test_cooldown_holds_back_the_same_level_but_a_rise_alerts_at_once(store_path: Path) -> None:
    policy = ScoringPolicy(alerts=AlertPolicy(cooldown_days=14))
    run(store_path, "2025-10-01", [customer("a", 50, "orange"), customer("b", 50, "orange")], policy)
    later = run(store_path, "2025-10-05", [customer("a", 55, "orange"), customer("b", 75, "red")], policy)
    assert (later.alerts, later.cooled) == (1, 1)
    assert [d["customer_ref"] for d in outbox_documents(store_path)][-1] == "b"
    after = run(store_path, "2025-10-20", [customer("a", 55, "orange")], policy)
    assert after.alerts == 1, "the cooldown is over"


def test_daily_cap_overflow_is_summarised_not_dropped(store_path: Path) -> None:
    policy = ScoringPolicy(alerts=AlertPolicy(daily_cap=3))
    candidates = [customer(f"c{i}", 50 + i, "orange" if i < 10 else "red") for i in range(15)]
    result = run(store_path, "2025-10-01", candidates, policy)
    assert (result.alerts, result.overflow) == (3, 12)
    documents = outbox_documents(store_path)
    alerts = [d for d in documents if d["schema"] == "retail.churn-alert/1"]
    [summary] = [d for d in documents if d["schema"] == "retail.churn-alert-overflow/1"]
    assert [a["customer_ref"] for a in alerts] == ["c14", "c13", "c12"]
    assert summary["suppressed"] == 12 and {c["customer_ref"] for c in summary["customers"]} == {f"c{i}" for i in range(12)}
    assert summary["seq"] == 4
    again = run(store_path, "2025-10-01", [customer("new", 99, "purple")], policy)
    assert (again.alerts, again.overflow) == (0, 1), "the cap is per day, across runs"


def test_control_group_is_held_out_from_action(store_path: Path) -> None:
    policy = ScoringPolicy(alerts=AlertPolicy(control_share={"orange": 0.5}, weekly_budget=500))
    run(store_path, "2025-10-01", [customer(f"c{i}", 50, "orange") for i in range(200)], policy)
    documents = outbox_documents(store_path)
    held = [d for d in documents if d["control"]]
    assert 60 < len(held) < 140
    assert all(d["action"] is None for d in held) and all(d["action"] == "callback" for d in documents if not d["control"])


def test_pseudonymised_references_leave_the_box(store_path: Path) -> None:
    key = b"chain-secret"
    run(store_path, "2025-10-01", [customer("LOYAL-123", 70, "red")], ScoringPolicy(pseudonymise_key=key))
    [document] = outbox_documents(store_path)
    assert document["customer_ref"] == pseudonymise("LOYAL-123", key) != "LOYAL-123"
    assert "LOYAL-123" not in json.dumps(document)


def test_over_quota_defers_alerts_with_an_alarm(store_path: Path) -> None:
    run(store_path, "2025-10-01", [customer(f"c{i}", 60, "orange") for i in range(40)])
    tiny = ScoringPolicy(alerts=AlertPolicy(outbox_quota_mb=0.001))
    result = run(store_path, "2025-10-02", [customer("late", 90, "purple")], tiny)
    assert result.quota_alarm and result.deferred == 1 and result.alerts == 0
    with open_store_db(store_path) as store:
        Outbox(store).mark_acked([], up_to_seq=40)  # the central side catches up
    result = run(store_path, "2025-10-03", [customer("late", 90, "purple")], tiny)
    assert not result.quota_alarm and result.alerts == 1


def test_a_crash_while_recording_leaves_neither_alerts_nor_outbox_rows(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: object, **kwargs: object) -> bytes:
        raise KeyboardInterrupt("power cut")

    run(store_path, "2025-10-01", [customer("a", 70, "red")])
    monkeypatch.setattr(Outbox, "append", crash)
    with pytest.raises(KeyboardInterrupt):
        run(store_path, "2025-10-02", [customer("b", 70, "red")])
    with open_store_db(store_path) as store:
        assert store.conn.execute("SELECT count(*) FROM alerts").fetchone()[0] == 1
        assert store.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1
        assert store.conn.execute("SELECT count(*) FROM score_runs").fetchone()[0] == 1


def test_acks_by_id_and_by_watermark(store_path: Path) -> None:
    run(store_path, "2025-10-01", [customer(f"c{i}", 60, "orange") for i in range(5)])
    documents = outbox_documents(store_path)
    with open_store_db(store_path) as store:
        outbox = Outbox(store)
        assert outbox.mark_acked([documents[4]["alert_id"]], None) == 1
        assert outbox.mark_acked([], up_to_seq=2) == 2
        assert outbox.mark_acked([documents[4]["alert_id"]], None) == 0  # a repeated ack changes nothing
        assert outbox.stats().unacked == 2


def test_an_alert_that_breaks_its_contract_never_enters_the_outbox(store_path: Path) -> None:
    broken = customer("b", 70, "red")
    broken.reasons[0]["value"] = float("nan")  # a model bug: the aggregator would only dead-letter it
    with pytest.raises(PayloadError, match=r"^reasons\[0\]\.value must be a finite number or null$"):
        run(store_path, "2025-10-01", [customer("a", 70, "red"), broken])
    assert outbox_documents(store_path) == [], "the whole run is rolled back, nothing half-recorded"
    run(store_path, "2025-10-01", [customer("a", 70, "red")])
    (sent,) = outbox_documents(store_path)
    assert sent["reasons"] == [{"text": "last visit 41 days ago, usually every 12 days",
                                "feature": "days_since_last_visit", "value": 41.0, "usual": 12.0}]


def test_append_refuses_an_alert_id_already_in_the_outbox(store_path: Path) -> None:
    """Scoring looks before it appends: a second message under one alert id is a bug to surface, not a resend."""
    with open_store_db(store_path) as store:
        outbox = Outbox(store)
        with write_transaction(store.conn):
            stored = outbox.append(outbox.last_seq() + 1, "a1", "alert", {"alert_id": "a1"}, "2025-10-01T00:00:00Z")
        with pytest.raises(sqlite3.IntegrityError), write_transaction(store.conn):
            outbox.append(outbox.last_seq() + 1, "a1", "alert", {"again": True}, "2025-10-01T00:00:00Z")
        due = outbox.due(resend_after=60, limit=10)
        assert [(e.seq, e.alert_id, e.payload) for e in due] == [(1, "a1", stored.encode())]
