"""Centralised training time on a simulated chain: building the training rows, then fitting the network.

The baseline, measured in the same run, is building the rows alone (features
at every weekly cutoff of every store, and what each customer did after it):
the ratio says what the network's fit costs on top of the data it needs.

Usage: .venv/bin/python benchmarks/training.py [--stores 4] [--customers 6000] [--days 540] [--seed 7]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.chains import simulated_chain  # noqa: E402
from models.store_data import load_store_data  # noqa: E402
from models.survival import SurvivalSet  # noqa: E402
from models.training import fit  # noqa: E402
from server.train import day_after, store_rows  # noqa: E402

AS_OF = date(2025, 9, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=4)
    parser.add_argument("--customers", type=int, default=6000)
    parser.add_argument("--days", type=int, default=540)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="training-") as work:
        dbs = simulated_chain(Path(work), args.stores, args.customers, args.days, args.seed)
        stores = [load_store_data(db) for db in dbs]
        as_of_day = day_after(AS_OF)
        started = time.perf_counter()
        rows = SurvivalSet.concat([store_rows(s, as_of_day) for s in stores])
        build = time.perf_counter() - started
        started = time.perf_counter()
        trained = fit(rows, 90)
        train = time.perf_counter() - started
    print(f"{args.stores} stores x {args.customers} customers, {args.days} days, as-of {AS_OF}: "
          f"{len(rows):,} rows from {len(set(rows.cutoff.tolist()))} weekly cutoffs")
    print(f"building the rows: {build:.1f} s; fitting the network: {train:.1f} s ({len(trained.history)} epochs); "
          f"in all {build + train:.1f} s")
    print(f"ratio fit / building the rows: {train / build:.2f}")


if __name__ == "__main__":
    main()
