"""The central database: one schema on SQLite and PostgreSQL, idempotent alerts, seq gaps, concurrent writers."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, Table, Text, func, inspect, select

from server.central import (
    CentralDbError, StoredAlerts, list_alerts, open_central_db, record_dead_letter, record_metrics, record_status,
    store_alerts, store_watermarks, utc_now_iso,
)
from server.central import migrations, tables
from server.central.sequence import Gap, plan_seqs
from tests.services import churn_alert

EVERY_TABLE = {"alerts", "alert_overflows", "dead_letters", "stores", "store_seq", "seq_gaps", "store_metrics",
               "footfall_hourly", "schema_migrations", "users", "user_stores", "console_sessions", "login_failures",
               "alert_work", "alert_outcomes", "model_releases", "model_rounds", "input_days", "camera_gap_days"}


def store(target: str, *alerts: dict[str, object], chain: str = "acme", store_id: str = "s1") -> StoredAlerts:
    with open_central_db(target) as db, db.write() as connection:
        return store_alerts(connection, chain, store_id, [(a, json.dumps(a)) for a in alerts], utc_now_iso())


def count(target: str, table: Table) -> int:
    with open_central_db(target) as db, db.read() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_opening_creates_every_table_and_records_the_schema_version_once(central: str) -> None:
    for _ in range(2):
        with open_central_db(central) as db, db.read() as connection:
            assert EVERY_TABLE <= set(inspect(connection).get_table_names())
            versions = connection.execute(select(tables.schema_migrations.c.version)).scalars().all()
    assert versions == [m.version for m in migrations.MIGRATIONS]  # each applied once, in order


def test_a_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    target = str(tmp_path / "central.db")
    with open_central_db(target) as db, db.write() as connection:
        connection.execute(tables.schema_migrations.insert().values(version=99, description="future", applied_at="x"))
    with pytest.raises(CentralDbError, match="schema version 99 is newer"):
        open_central_db(target)


def test_a_later_migration_adds_a_column_to_old_and_new_databases_alike(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    old = str(tmp_path / "old.db")
    open_central_db(old).close()
    later = Table("alerts", MetaData(), Column("outcome", Text))
    step = migrations.Migration(migrations.LATEST + 1, "alert outcomes", migrations.add_columns(later, "outcome"))
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, step])
    monkeypatch.setattr(migrations, "LATEST", step.version)
    for target in (old, str(tmp_path / "new.db")):
        for _ in range(2):
            with open_central_db(target) as db, db.read() as connection:
                assert "outcome" in {c["name"] for c in inspect(connection).get_columns("alerts")}
                assert migrations.schema_version(connection) == step.version


def test_storing_the_same_alert_again_changes_nothing(central: str) -> None:
    alert = churn_alert(1)
    first = store(central, alert)
    again = store(central, alert)
    changed = store(central, churn_alert(1, risk_score=10))  # same alert_id: the first copy stands
    assert (first.new, first.duplicates) == (["acme-s1-000001"], [])
    assert (again.new, again.duplicates) == ([], ["acme-s1-000001"])
    assert changed.new == [] and changed.contiguous_seq == 1
    with open_central_db(central) as db:
        rows = list_alerts(db)
    assert len(rows) == 1 and rows[0]["risk_score"] == 72


def test_every_payload_field_is_a_column_and_reads_back_as_sent(central: str) -> None:
    alert = churn_alert(7, control=True, action=None, action_label=None,
                        recent_events=[{"kind": "complaint", "days_ago": 12, "value": None},
                                       {"kind": "survey", "days_ago": 30, "value": 3}])
    store(central, alert)
    with open_central_db(central) as db:
        (row,) = list_alerts(db)
        with db.read() as connection:
            raw = connection.execute(select(tables.alerts.c.payload)).scalar_one()
    assert {k: row[k] for k in alert if k != "schema"} == {k: v for k, v in alert.items() if k != "schema"}
    assert row["received_at"].endswith("Z")
    assert json.loads(raw) == alert


def test_alerts_stored_before_recent_events_existed_read_back_with_none(central: str) -> None:
    store(central, churn_alert(1))
    added = next(m.version for m in migrations.MIGRATIONS if "recent events" in m.description)
    with open_central_db(central) as db, db.write() as connection:  # back to the schema before that column
        connection.exec_driver_sql("ALTER TABLE alerts DROP COLUMN recent_events")
        connection.execute(tables.schema_migrations.delete().where(tables.schema_migrations.c.version >= added))
    store(central, churn_alert(2, recent_events=[{"kind": "return", "days_ago": 3, "value": 24.9}]))
    with open_central_db(central) as db:
        events = {a["seq"]: a["recent_events"] for a in list_alerts(db)}
    assert events == {1: [], 2: [{"kind": "return", "days_ago": 3, "value": 24.9}]}


def test_a_gap_in_seq_is_detected_narrowed_and_closed_when_the_missing_alerts_arrive(central: str) -> None:
    assert store(central, churn_alert(1), churn_alert(2), churn_alert(6)).contiguous_seq == 2
    assert store_watermarks_of(central) == (2, 6, [[3, 5]])
    assert store(central, churn_alert(4)).contiguous_seq == 2
    assert store_watermarks_of(central) == (2, 6, [[3, 3], [5, 5]])
    assert store(central, churn_alert(3), churn_alert(5)).contiguous_seq == 6
    assert store_watermarks_of(central) == (6, 6, [])
    with open_central_db(central) as db, db.read() as connection:
        gaps = connection.execute(select(tables.seq_gaps.c.detected_at, tables.seq_gaps.c.closed_at)).all()
    assert len(gaps) == 2 and all(closed for _, closed in gaps)


def store_watermarks_of(target: str) -> tuple[int, int, list[list[int]]]:
    with open_central_db(target) as db:
        (mark,) = store_watermarks(db)
    return mark["contiguous_seq"], mark["max_seq"], mark["open_gaps"]


@pytest.mark.parametrize(("max_seq", "gaps", "seqs", "contiguous", "still_open"), [
    (0, [], [1, 2, 3], 3, []),
    (0, [], [3, 1, 7], 1, [(2, 2), (4, 6)]),  # order inside a batch does not matter
    (10, [Gap(3, 8, 1)], [5], 2, [(3, 4), (6, 8)]),  # a fill in the middle splits the gap
    (10, [Gap(3, 4, 1), Gap(6, 6, 2)], [3, 4, 6, 12], 10, [(11, 11)]),
    (10, [], [4, 10], 10, []),  # an old seq outside any gap: a reused number, nothing to do
])
def test_seq_plan(max_seq: int, gaps: list[Gap], seqs: list[int], contiguous: int,
                  still_open: list[tuple[int, int]]) -> None:
    plan = plan_seqs(max_seq, gaps, seqs)
    closed = {g.id for g in plan.closed}
    remaining = [(g.first, g.last) for g in gaps if g.id not in closed and g.id not in {n.id for n in plan.narrowed}]
    remaining += [(g.first, g.last) for g in plan.narrowed + plan.opened]
    assert plan.contiguous_seq == contiguous
    assert sorted(remaining) == still_open


def _store_in_another_process(target: str, seqs: list[int]) -> int:
    new = 0
    with open_central_db(target) as db:
        for start in range(0, len(seqs), 10):
            with db.write() as connection:
                batch = [churn_alert(s) for s in seqs[start:start + 10]]
                new += len(store_alerts(connection, "acme", "s1", [(a, json.dumps(a)) for a in batch],
                                        utc_now_iso()).new)
    return new


def test_concurrent_aggregator_processes_store_each_alert_exactly_once(central: str) -> None:
    seqs = list(range(1, 121))
    orders = [seqs, seqs[::-1], seqs[1::2] + seqs[::2], seqs[40:] + seqs[:40]]
    with ProcessPoolExecutor(len(orders)) as pool:
        new = sum(pool.map(_store_in_another_process, [central] * len(orders), orders))
    assert new == 120
    assert count(central, tables.alerts) == 120
    assert store_watermarks_of(central) == (120, 120, [])


def test_overflow_summaries_are_kept_and_count_in_the_seq(central: str) -> None:
    overflow = {"schema": "retail.churn-alert-overflow/1", "alert_id": "acme-s1-overflow-2026-03-01", "seq": 2,
                "chain": "acme", "store_id": "s1", "as_of": "2026-03-01", "suppressed": 1,
                "customers": [{"customer_ref": "C9", "level": "orange"}], "created_at": "2026-03-01T06:00:00Z"}
    assert store(central, churn_alert(1), overflow).contiguous_seq == 2
    assert store(central, overflow).duplicates == [overflow["alert_id"]]
    with open_central_db(central) as db, db.read() as connection:
        row = connection.execute(select(tables.alert_overflows)).mappings().one()
    assert row["suppressed"] == 1 and json.loads(row["customers"]) == overflow["customers"]
    assert count(central, tables.alerts) == 1


def test_a_dead_letter_sent_again_is_counted_not_repeated(central: str) -> None:
    with open_central_db(central) as db:
        for _ in range(3):
            with db.write() as connection:
                record_dead_letter(connection, "retail/v1/acme/s1/alert/churn", "not JSON", b"\xff{", utc_now_iso())
        with db.read() as connection:
            (row,) = connection.execute(select(tables.dead_letters)).mappings().all()
    assert row["count"] == 3 and bytes(row["raw"]) == b"\xff{" and row["reason"] == "not JSON"


def test_status_and_metrics_keep_the_latest_and_footfall_is_upserted_per_hour(central: str) -> None:
    hour = {"hour": "2026-03-01T10:00", "entries": 40, "exits": 38, "transactions": 12}
    metrics = {"schema": "retail.store-metrics/1", "chain": "acme", "store_id": "s1", "at": "2026-03-01T10:05:00Z",
               "footfall_hourly": [hour, {**hour, "hour": "2026-03-01T11:00"}]}
    with open_central_db(central) as db:
        with db.write() as connection:
            record_status(connection, "acme", "s1", {"state": "online", "at": "2026-03-01T09:00:00Z"}, "now1", False)
            record_metrics(connection, "acme", "s1", metrics, "now1")
        with db.write() as connection:
            record_status(connection, "acme", "s1", {"state": "offline"}, "now2", retained=True)
            record_metrics(connection, "acme", "s1", {**metrics, "footfall_hourly": [{**hour, "entries": 41}]}, "now2")
        with db.read() as connection:
            status = connection.execute(select(tables.stores)).mappings().one()
            footfall = connection.execute(select(tables.footfall_hourly).order_by("hour")).mappings().all()
    assert (status["state"], status["last_seen"]) == ("offline", "2026-03-01T09:00:00Z")
    assert [(f["hour"], f["entries"]) for f in footfall] == [("2026-03-01T10:00", 41), ("2026-03-01T11:00", 40)]
