"""Customer-events ingest throughput: rows/s for a 1M-row events CSV, against a plain executemany in the same run.

The file mixes what a chain's exports hold: events under loyalty ids and
online accounts, a few known only by a phone number (hashed with the box's
key on the way in), ratings and survey scores, and staff notes on some rows
(reduced to a category). The baseline reads the same file with the csv module
inserts the rows with sqlite3.executemany into the same customer_events table
(its key and index, the same journal settings), each value as it stands in
the file: no validation, no hashing, no dedupe check beyond the key. The ratio
says what the contract's checks, quarantine and privacy cost.

Usage: .venv/bin/python benchmarks/ingest_events.py [--rows 1000000] [--repeat 3]
Goal: at least 100k rows/s.
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.interleaved import compare_ingest  # noqa: E402
from edge_agent.ingest import EVENTS, ingest_files  # noqa: E402
from edge_agent.store_db import open_store_db  # noqa: E402
from models.events import EVENT_KINDS  # noqa: E402

HEADER = "event_id,customer_id,phone,timestamp,kind,value,channel,note"
KIND_SHARE = {"online_visit": 0.55, "cart_abandoned": 0.08, "service_contact": 0.08, "complaint": 0.05,
              "complaint_resolved": 0.03, "return": 0.06, "review": 0.04, "survey": 0.03, "coupon_redeemed": 0.08}
NOTES = ("", "", "", "", "", "", "", "late delivery", "rude staff at the till", "broken on arrival",
         "asked about opening hours")


def make_csv(path: Path, rows: int, seed: int = 1) -> None:
    """A year of one busy store's events: 50k customers, online events under their web accounts."""
    rng = np.random.default_rng(seed)
    kinds = np.array(list(KIND_SHARE))
    kind = rng.choice(len(kinds), size=rows, p=np.array(list(KIND_SHARE.values())) / sum(KIND_SHARE.values()))
    customer = rng.integers(0, 50_000, size=rows)
    by_phone = rng.random(rows) < 0.05
    seconds = np.sort(rng.integers(0, 365 * 86400, size=rows)) + 1_735_689_600  # from 2025-01-01
    stamps = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    rating = rng.integers(1, 6, size=rows)
    note = rng.integers(0, len(NOTES), size=rows)
    assert set(kinds) <= set(EVENT_KINDS)
    with open(path, "w") as handle:
        handle.write(HEADER + "\n")
        for i in range(rows):
            name = kinds[kind[i]]
            online = name in ("online_visit", "cart_abandoned")
            who, phone = (f"W{customer[i]:07d}", "") if online else (f"C{customer[i]:07d}", "")
            if by_phone[i] and not online:
                who, phone = "", f"+33 6 {customer[i] // 10000:02d} {customer[i] // 100 % 100:02d} {customer[i] % 100:02d} 00"
            value = rating[i] if name == "review" else rating[i] * 2 if name == "survey" else ""
            handle.write(f"E{i:09d},{who},{phone},{stamps[i]},{name},{value},{'online' if online else 'store'},"
                         f"{'' if online else NOTES[note[i]]}\n")


def plain_executemany(csv_path: Path, db_path: Path) -> float:
    """Seconds to load the file with csv.reader + executemany into the store's customer_events table (its key
    and index included), the values as they stand in the file, nothing else."""
    with open_store_db(db_path, store_id="bench"):
        pass  # the same schema; its creation is not timed
    start = time.perf_counter()
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    with open(csv_path, newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO customer_events(event_id, customer_ref, ts, has_time, kind, value, channel, note, run_id)"
            " VALUES (?, ?, ?, 1, ?, ?, ?, ?, 0)",
            ((r[0], r[1] or r[2], r[3], r[4], r[5], r[6], r[7]) for r in reader),
        )
        conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - start


def our_ingest(csv_path: Path, db_path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    with open_store_db(db_path, store_id="bench") as store:
        report = ingest_files(store, [csv_path], contract=EVENTS)
    return time.perf_counter() - start, report.totals.accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved pairs of runs")
    args = parser.parse_args()
    compare_ingest("edge-agent ingest-events", "events.csv", args.rows, args.repeat, make_csv, plain_executemany,
                   our_ingest)

if __name__ == "__main__":
    main()
