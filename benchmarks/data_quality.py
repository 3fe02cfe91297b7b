"""Data quality on the box: time to build a metrics message's `data_quality` from a store with a long quarantine.

Every metrics message (every 5 minutes by default) counts the quarantined rows of
the last two weeks' ingest runs by reason. The store database's quarantine only
grows: here it holds `--quarantine-rows` rows spread over 2,000 runs, of which
the last 10 are in the two weeks. The figure is the shipped query (runs first,
then their rows through the `quarantine_by_run` index of store migration 9);
the baseline, measured in the same run, is the same call on a copy without that
index (a scan of the whole quarantine per recent run).

Usage: .venv/bin/python benchmarks/data_quality.py [--quarantine-rows 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_agent.data_quality import data_quality  # noqa: E402
from edge_agent.store_db import open_store_db  # noqa: E402

RUNS = 2000
RECENT_RUNS = 10


def make_store(path: Path, quarantine_rows: int) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open_store_db(path, chain="bench", store_id="s1") as store:
        conn = store.conn
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO ingest_runs(run_id, source, format, started_at, finished_at, status, input)"
            " VALUES (?, ?, 'csv', ?, ?, 'done', 'pos')",
            ((r, f"pos-{r}.csv", at, at) for r in range(1, RUNS + 1)
             for at in [now if r > RUNS - RECENT_RUNS else f"2024-{1 + r * 12 // (RUNS + 1):02d}-01T02:00:00Z"]))
        conn.executemany(
            "INSERT INTO quarantine(run_id, source, line, reason, detail, raw, fingerprint, created_at)"
            " VALUES (?, 'pos.csv', ?, ?, 'detail', x'43303030312c2c31322e3530', ?, 'x')",
            ((1 + i % RUNS, i, ("bad amount", "missing timestamp", "other store")[i % 3], str(i))
             for i in range(quarantine_rows)))
        conn.execute("COMMIT")


def seconds_per_call(path: Path, repeat: int) -> float:
    with open_store_db(path) as store:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            data_quality(store)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quarantine-rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        shipped, baseline = Path(folder) / "store.db", Path(folder) / "no-index.db"
        make_store(shipped, args.quarantine_rows)
        shutil.copy(shipped, baseline)
        with open_store_db(baseline) as store:
            store.conn.execute("DROP INDEX quarantine_by_run")
        fast = seconds_per_call(shipped, args.repeat)
        slow = seconds_per_call(baseline, max(1, args.repeat // 5))
    print(f"quarantine rows: {args.quarantine_rows}, runs: {RUNS} ({RECENT_RUNS} in the last two weeks)")
    print(f"data_quality(): {fast * 1000:.1f} ms per metrics message")
    print(f"baseline without the quarantine_by_run index: {slow * 1000:.1f} ms (ratio {slow / fast:.0f}x)")


if __name__ == "__main__":
    main()
