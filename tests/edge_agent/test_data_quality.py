"""The data-quality figures a store box sends with its metrics, built from a real store database."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edge_agent.daemon.uplink import metrics_document
from edge_agent.data_quality import data_quality
from edge_agent.footfall.counter_import import import_counter_files
from edge_agent.footfall.storage import FootfallStorage, Gap
from edge_agent.ingest import ingest_files
from edge_agent.store_db import StoreDatabase, open_store_db
from models.payloads import OTHER_REASONS, QUALITY_MAX_REASONS, check_metrics

POS = ("customer_id,timestamp,amount\n"
       "C1,2026-02-20T10:00:00,12.50\nC2,2026-02-20T11:00:00,8.00\nC1,2026-02-21T10:00:00,3.10\n"
       "C3,2026-02-21T12:00:00,not-a-number\nC4,,5.00\nC5,2026-02-22T09:00:00,\n")


def today(figures: dict[str, Any], name: str) -> dict[str, Any]:
    (day,) = [d for d in figures["inputs"][name]["daily"] if d["day"] == figures["today"]]
    return day


def test_a_pos_export_counts_its_accepted_and_quarantined_rows_by_reason_and_a_resend_adds_nothing(
        tmp_path: Path) -> None:
    export = tmp_path / "pos.csv"
    export.write_text(POS)
    with open_store_db(tmp_path / "s1.db", chain="acme", store_id="s1") as store:
        ingest_files(store, [export])
        first = data_quality(store)
        ingest_files(store, [export])  # the same file again: nothing new is accepted or quarantined
        again = data_quality(store)
    pos = today(first, "pos")
    assert (pos["runs"], pos["failed"], pos["accepted"], pos["quarantined"]) == (1, 0, 3, 3)
    assert pos["reasons"] == {"bad amount": 1, "missing amount": 1, "missing timestamp": 1}
    assert first["inputs"]["pos"]["last_export_at"] is not None
    assert (today(again, "pos")["runs"], today(again, "pos")["accepted"], today(again, "pos")["quarantined"]) == (2, 3, 3)
    assert {name: figures["daily"] for name, figures in first["inputs"].items() if name != "pos"} == {
        "events": [], "identities": [], "footfall": []}


def run(store: StoreDatabase, name: str, started_at: str, accepted: int, reasons: dict[str, int],
        status: str = "done") -> None:
    """An ingest run as another input's ingest records it (its own run, its quarantined rows linked by run_id)."""
    with store.conn:
        run_id = store.conn.execute(
            "INSERT INTO ingest_runs(source, format, started_at, finished_at, status, accepted, quarantined, input)"
            " VALUES (?, 'csv', ?, ?, ?, ?, ?, ?)",
            (f"{name}-{started_at}.csv", started_at, started_at, status, accepted, sum(reasons.values()), name),
        ).lastrowid
        line = 1
        for reason, count in reasons.items():
            for _ in range(count):
                line += 1
                store.conn.execute(
                    "INSERT INTO quarantine(run_id, source, line, reason, detail, raw, fingerprint, created_at)"
                    " VALUES (?, ?, ?, ?, '', x'', ?, ?)",
                    (run_id, f"{name}-{started_at}.csv", line, reason, f"{run_id}-{line}", started_at))


def test_days_are_the_stores_own_and_each_input_keeps_its_last_export(tmp_path: Path) -> None:
    now = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)  # 10:00 in New York
    with open_store_db(tmp_path / "s1.db", chain="acme", store_id="s1", timezone="America/New_York") as store:
        run(store, "events", "2026-03-02T03:30:00Z", 400, {"unknown kind": 4})  # 22:30 on 1 March in New York
        run(store, "events", "2026-03-02T14:00:00Z", 380, {"unknown kind": 1, "bad timestamp": 2})
        run(store, "events", "2026-03-02T14:30:00Z", 0, {}, status="failed")  # a file that could not be read
        run(store, "identities", "2026-02-01T05:00:00Z", 90, {})  # before the two weeks sent
        figures = data_quality(store, days=14, now=now)
    assert figures["today"] == "2026-03-02" and figures["days"] == 14
    events = figures["inputs"]["events"]
    assert events["daily"] == [
        {"day": "2026-03-01", "runs": 1, "failed": 0, "accepted": 400, "quarantined": 4, "reasons": {"unknown kind": 4}},
        {"day": "2026-03-02", "runs": 2, "failed": 1, "accepted": 380, "quarantined": 3,
         "reasons": {"bad timestamp": 2, "unknown kind": 1}}]
    assert events["last_export_at"] == "2026-03-02T14:00:00Z", "a failed run is no export"
    assert figures["inputs"]["identities"] == {"last_export_at": "2026-02-01T05:00:00Z", "daily": []}


def test_many_reasons_are_folded_so_the_message_stays_small(tmp_path: Path) -> None:
    now = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)
    reasons = {f"reason {n:02d}": n + 1 for n in range(QUALITY_MAX_REASONS + 5)}
    with open_store_db(tmp_path / "s1.db", chain="acme", store_id="s1") as store:
        run(store, "pos", "2026-03-02T10:00:00Z", 1000, reasons)
        day = today(data_quality(store, now=now), "pos")
    assert len(day["reasons"]) == QUALITY_MAX_REASONS and day["quarantined"] == sum(reasons.values())
    assert sum(day["reasons"].values()) == day["quarantined"]
    assert day["reasons"][OTHER_REASONS] == sum(range(1, 7)), "the six smallest, summed"


def test_counter_exports_and_camera_gaps_are_counted_per_day(tmp_path: Path) -> None:
    export = tmp_path / "counter.csv"
    export.write_text("timestamp,entries,exits\n2026-03-01T09:00,12,10\n2026-03-01T10:00,x,3\n")
    local = lambda text: int((datetime.fromisoformat(text) - datetime(1970, 1, 1)).total_seconds())  # noqa: E731
    with open_store_db(tmp_path / "s1.db", chain="acme", store_id="s1") as store:
        import_counter_files(store, [export])
        FootfallStorage(store).add_buckets("camera:door", [], with_queue=False, gaps=[
            Gap(local("2026-03-01T08:00"), local("2026-03-01T08:05"), "no frames"),
            Gap(local("2026-03-01T13:00"), local("2026-03-01T13:00:30"), "reconnecting"),
            Gap(local("2026-03-02T09:00"), local("2026-03-02T09:01"), "no frames"),
            Gap(local("2026-02-01T09:00"), local("2026-02-01T09:01"), "no frames")])  # before the two weeks
        figures = data_quality(store, now=datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc))
        footfall = data_quality(store)["inputs"]["footfall"]
    assert [(d["accepted"], d["quarantined"], d["reasons"]) for d in footfall["daily"]] == [(1, 1, {"bad entries": 1})]
    assert figures["camera_gaps"] == [{"day": "2026-03-01", "source": "camera:door", "gaps": 2, "seconds": 330.0},
                                      {"day": "2026-03-02", "source": "camera:door", "gaps": 1, "seconds": 60.0}]


def test_the_metrics_message_carries_the_figures_and_keeps_its_contract(tmp_path: Path) -> None:
    export = tmp_path / "pos.csv"
    export.write_text(POS)
    with open_store_db(tmp_path / "s1.db", chain="acme", store_id="s1") as store:
        ingest_files(store, [export])
        document = metrics_document(store, {"alarms": {}})
    checked = check_metrics(json.dumps(document).encode(), "acme", "s1")
    assert today(checked["data_quality"], "pos")["quarantined"] == 3
