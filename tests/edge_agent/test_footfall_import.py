"""`edge-agent ingest-footfall`: a door counter's export lands in the same buckets, once."""

from __future__ import annotations

import csv
import gzip
import sqlite3
from pathlib import Path

from models.store_data import load_store_data
from tests.conftest import run_cli, run_json

HEADER = "timestamp,entries,exits\n"


def csv_totals(path: Path) -> tuple[int, int, int]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return len(rows), sum(int(r["entries"]) for r in rows), sum(int(r["exits"]) for r in rows)


def stored(db: Path, source: str = "counter") -> dict[int, tuple[int, int]]:
    rows = sqlite3.connect(db).execute(
        "SELECT bucket_start, entries, exits FROM footfall WHERE source = ?", (source,)
    ).fetchall()
    return {start: (entries, exits) for start, entries, exits in rows}


def test_simulated_counter_export_feeds_the_hourly_store_context(small_chain: Path, tmp_path: Path) -> None:
    export = small_chain / "store-01" / "footfall.csv"
    rows, entries, exits = csv_totals(export)
    db = tmp_path / "store-01.db"
    first = run_json("edge-agent", "ingest-footfall", "--db", str(db), str(export))
    assert (first["rows"], first["accepted"], first["duplicates"], first["quarantined"]) == (rows, rows, 0, 0)
    assert (first["entries"], first["exits"]) == (entries, exits)
    assert first["files"][0]["bucket_seconds"] == 3600
    footfall = load_store_data(db).footfall
    assert len(footfall.start) == rows and footfall.entries.sum() == entries
    assert (footfall.start % 3600 == 0).all()

    again = run_json("edge-agent", "ingest-footfall", "--db", str(db), str(export))
    assert (again["accepted"], again["duplicates"]) == (0, rows)
    assert load_store_data(db).footfall.entries.sum() == entries, "re-importing must not double-count"


def test_a_corrected_export_replaces_the_bucket(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    export = tmp_path / "counter.csv"
    export.write_text(HEADER + "2025-03-01T10:00:00,5,4\n2025-03-01T11:00:00,8,9\n")
    run_json("edge-agent", "ingest-footfall", "--db", str(db), str(export))
    export.write_text(HEADER + "2025-03-01T10:00:00,7,4\n2025-03-01T11:00:00,8,9\n")
    report = run_json("edge-agent", "ingest-footfall", "--db", str(db), str(export))
    assert (report["accepted"], report["duplicates"]) == (1, 1)
    assert sorted(stored(db).values()) == [(7, 4), (8, 9)]


def test_bad_rows_are_quarantined_with_reasons_and_never_stop_the_file(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    export = tmp_path / "counter-2025-03.csv"
    export.write_bytes(
        (HEADER
         + "2025-03-01T10:00:00,5,4\n"
         + "01/03/2025 11:00,5,4\n"
         + "2025-03-01T12:00:00,-2,4\n"
         + "2025-03-01T13:00:00,5,lots\n"
         + "2025-03-01T14:00:00,5\n"
         + "2025-03-02,5,4\n"
         + "2025-03-01T10:00:00,6,6\n"
         + "2025-03-01T15:00:00,,4\n").encode()
        + b"2025-03-01T16:00:00,5,4\xff\n"
        + b"2025-03-01T17:00:00,3,2\n"
    )
    report = run_json("edge-agent", "ingest-footfall", "--db", str(db), str(export))
    assert report["rows"] == 10
    assert (report["accepted"], report["quarantined"]) == (2, 8)
    assert report["accepted"] + report["duplicates"] + report["quarantined"] == report["rows"]
    assert report["reasons"] == {
        "bad timestamp": 2, "bad entries": 1, "bad exits": 1, "wrong field count": 1,
        "repeated timestamp": 1, "missing entries": 1, "not UTF-8": 1,
    }
    listed = run_json("edge-agent", "quarantine", "--db", str(db), "--source", export.name)
    assert sorted(r["line"] for r in listed) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert {r["reason"] for r in listed if r["line"] == 8} == {"repeated timestamp"}
    again = run_json("edge-agent", "ingest-footfall", "--db", str(db), str(export))
    assert (again["accepted"], again["duplicates"], again["quarantined"]) == (0, 2, 8)
    assert len(run_json("edge-agent", "quarantine", "--db", str(db))) == 8, "quarantine is not duplicated"


def test_other_column_names_gzip_and_offsets(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    export = tmp_path / "door.csv.gz"
    with gzip.open(export, "wt") as handle:
        handle.write("\ufeffSite,Date_Time,In,Out\nA,2025-03-01T09:15:00+00:00,3,1\nA,2025-03-01T09:30:00+00:00,2,2\n")
    report = run_json("edge-agent", "ingest-footfall", "--db", str(db), "--timezone", "Europe/Paris",
                      "--source", "door-counter", str(export))
    assert report["accepted"] == 2 and report["files"][0]["bucket_seconds"] == 900
    starts = sorted(stored(db, "door-counter"))
    assert [s % 86400 for s in starts] == [10 * 3600 + 15 * 60, 10 * 3600 + 30 * 60]  # 09:15 UTC is 10:15 in Paris


def test_a_file_that_is_not_a_counter_export_is_refused_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    pos = tmp_path / "pos.csv"
    pos.write_text("customer_id,timestamp,amount\nc1,2025-03-01,1.00\n")
    result = run_cli("edge-agent", "ingest-footfall", "--db", str(db), str(pos))
    assert result.returncode == 1
    assert result.stderr.strip() == f"edge-agent: error: {pos}: not a people-counter CSV: header lacks entries (found: customer_id, timestamp, amount)"
    missing = run_cli("edge-agent", "ingest-footfall", "--db", str(db), str(tmp_path / "nope.csv"))
    assert missing.returncode == 1 and "nope.csv: no such file" in missing.stderr
    assert not db.exists(), "nothing is created for a refused batch"
