"""Ingest throughput: rows/s for a 1M-row POS CSV, against a plain executemany in the same run.

The baseline reads the same file with the csv module and inserts the raw rows
with sqlite3.executemany into a table of the same columns (no validation, no
dedupe index, same journal settings): the least a loader can do. The ratio
ingest/baseline says what validation, quarantine and idempotence cost.

Usage: .venv/bin/python benchmarks/ingest.py [--rows 1000000] [--repeat 3]
Goals (issue 2): at least 100k rows/s and a ratio of at least 0.5.
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
from edge_agent.ingest import ingest_files  # noqa: E402
from edge_agent.store_db import open_store_db  # noqa: E402


def make_csv(path: Path, rows: int, seed: int = 1) -> None:
    """A year of a busy store: 50k loyalty customers, a third of sales anonymous."""
    rng = np.random.default_rng(seed)
    customer = rng.integers(0, 50_000, size=rows)
    anonymous = rng.random(rows) < 0.33
    seconds = np.sort(rng.integers(0, 365 * 86400, size=rows)) + 1_735_689_600  # from 2025-01-01
    amount = np.round(rng.lognormal(3.2, 0.7, size=rows), 2)
    items = 1 + rng.poisson(6, size=rows)
    stamps = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    with open(path, "w") as handle:
        handle.write("transaction_id,store_id,customer_id,timestamp,amount,items,channel\n")
        for i in range(rows):
            cid = "" if anonymous[i] else f"C{customer[i]:07d}"
            handle.write(f"T{i:09d},bench,{cid},{stamps[i]},{amount[i]:.2f},{items[i]},store\n")


def plain_executemany(csv_path: Path, db_path: Path) -> float:
    """Seconds to load the file with csv.reader + executemany, nothing else."""
    start = time.perf_counter()
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        "CREATE TABLE raw (transaction_id TEXT, store_id TEXT, customer_id TEXT, timestamp TEXT,"
        " amount TEXT, items TEXT, channel TEXT)"
    )
    with open(csv_path, newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO raw VALUES (?, ?, ?, ?, ?, ?, ?)", reader)
        conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - start


def our_ingest(csv_path: Path, db_path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    with open_store_db(db_path, store_id="bench") as store:
        report = ingest_files(store, [csv_path])
    return time.perf_counter() - start, report.totals.accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved pairs of runs")
    args = parser.parse_args()
    compare_ingest("edge-agent ingest", "pos.csv", args.rows, args.repeat, make_csv, plain_executemany, our_ingest)

if __name__ == "__main__":
    main()
