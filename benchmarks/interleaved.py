"""Our ingest against a plain insert of the same file, in interleaved pairs of runs, printed the same way
by every ingest benchmark (benchmarks/ingest.py, benchmarks/ingest_events.py)."""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

Timed = Callable[[Path, Path], float]  # (csv, database) -> seconds
Ingest = Callable[[Path, Path], tuple[float, int]]  # (csv, database) -> (seconds, rows accepted)


def compare_ingest(label: str, file_name: str, rows: int, repeat: int, make_csv: Callable[[Path, int], None],
                   plain: Timed, ours: Ingest) -> None:
    """Write a `rows`-row file, time `plain` and `ours` on it `repeat` times, interleaved so both see the same
    machine weather, and print rows/s and the ratio (the figure to compare across runs)."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        csv_path = work / file_name
        make_csv(csv_path, rows)
        mine, baseline = [], []
        for run in range(repeat):
            baseline.append(plain(csv_path, work / f"plain{run}.db"))
            seconds, accepted = ours(csv_path, work / f"store{run}.db")
            assert accepted == rows, f"only {accepted} of {rows} rows accepted"
            mine.append(seconds)
            for leftover in work.glob(f"*{run}.db*"):
                leftover.unlink()
    ratios = [b / o for b, o in zip(baseline, mine)]
    print(f"rows: {rows}, pairs: {repeat}")
    print(f"{label}: {rows / statistics.median(mine):,.0f} rows/s "
          f"(median {statistics.median(mine):.2f} s, best {min(mine):.2f} s)")
    print(f"plain csv + executemany: {rows / statistics.median(baseline):,.0f} rows/s "
          f"(median {statistics.median(baseline):.2f} s, best {min(baseline):.2f} s)")
    print(f"ratio ingest/plain: {statistics.median(ratios):.2f} (median of pairs; "
          f"range {min(ratios):.2f}-{max(ratios):.2f})")
