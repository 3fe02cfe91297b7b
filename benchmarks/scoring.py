"""Scoring speed: customers/s with onnxruntime vs the same network in torch eager, on one core;
and feature-building time for 50k customers and 2M transactions.

Usage: .venv/bin/python benchmarks/scoring.py [--customers 50000] [--transactions 2000000]
Goals (issue 3): scoring at least 200k customers/s on one core; features in under 5 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from edge_agent.onnx_model import OnnxChurnModel  # noqa: E402
from models.export import write_model_dir  # noqa: E402
from models.features import build_features  # noqa: E402
from models.network import ChurnNet, NormStats  # noqa: E402
from models.schema import FEATURE_NAMES  # noqa: E402
from edge_agent.store_db import open_store_db, write_transaction  # noqa: E402
from models.store_data import DAY, StoreData, load_store_data, make_store_data  # noqa: E402


def synthetic_store(customers: int, transactions: int, seed: int = 3) -> StoreData:
    """Two years of a big store: customers with their own rates, times of day and baskets."""
    rng = np.random.default_rng(seed)
    weight = rng.gamma(0.8, 1.0, size=customers)
    customer = rng.choice(customers, size=transactions, p=weight / weight.sum())
    anonymous = rng.random(transactions) < 0.2
    start = 19_000 * DAY
    ts = start + rng.integers(0, 730 * DAY, size=transactions)
    ts = ts - ts % DAY + rng.integers(8, 21, size=transactions) * 3600
    return make_store_data(
        "bench",
        [f"C{i:07d}" for i in range(customers)],
        np.where(anonymous, -1, customer),
        ts,
        np.round(rng.lognormal(3.0, 0.8, size=transactions), 2) * np.where(rng.random(transactions) < 0.01, -1, 1),
        items=rng.integers(1, 20, size=transactions),
        online=(rng.random(transactions) < 0.1).astype(float),
    )


def write_store_db(data: StoreData, path: Path) -> None:
    """The synthetic store as a real store database (not timed)."""
    with open_store_db(path, store_id="bench") as store, write_transaction(store.conn) as conn:
        conn.executemany("INSERT INTO customers(customer_key, customer_id) VALUES (?, ?)",
                         [(i + 1, c) for i, c in enumerate(data.customer_ids)])
        conn.execute("INSERT INTO ingest_runs(run_id, source, format, started_at) VALUES (1, 'bench', 'csv', '')")
        conn.executemany(
            "INSERT INTO transactions VALUES (?, ?, ?, 1, ?, ?, ?, 1)",
            ((f"T{i}", int(c) + 1 if c >= 0 else None, int(t), float(a), float(n), "online" if o else "store")
             for i, (c, t, a, n, o) in enumerate(zip(data.customer, data.ts, data.amount, data.items, data.online))),
        )


def best_of(runs: int, work) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--transactions", type=int, default=2_000_000)
    parser.add_argument("--score-rows", type=int, default=1_000_000, help="customers scored per timing")
    args = parser.parse_args()

    data = synthetic_store(args.customers, args.transactions)
    as_of_day = int(data.ts.max() // DAY) + 1
    feature_times = [best_of(1, lambda: build_features(data, as_of_day)) for _ in range(3)]
    table = build_features(data, as_of_day)
    print(f"features: {len(table)} active customers from {args.transactions:,} transactions "
          f"in {statistics.median(feature_times):.2f} s (median of 3)")
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        write_store_db(data, db)
        load_seconds = best_of(1, lambda: load_store_data(db))
    print(f"loading those transactions from the store database: {load_seconds:.2f} s")

    torch.set_num_threads(1)
    net = ChurnNet(len(FEATURE_NAMES))
    net.set_normalisation(NormStats.fit(table.values))
    net.eval()
    rows = np.resize(table.values, (args.score_rows, table.values.shape[1])).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        write_model_dir(net, Path(folder) / "m", version="bench", horizon_days=90, metrics={})
        onnx_model = OnnxChurnModel(Path(folder) / "m", threads=1)
        onnx_seconds = best_of(3, lambda: onnx_model.predict(rows))
        with torch.no_grad():
            tensor = torch.from_numpy(rows)
            torch_seconds = best_of(3, lambda: net(tensor))
        gap = float(np.abs(onnx_model.predict(rows[:10000]) - net(torch.from_numpy(rows[:10000])).detach().numpy()).max())
    onnx_rate, torch_rate = args.score_rows / onnx_seconds, args.score_rows / torch_seconds
    print(f"onnxruntime, 1 thread: {onnx_rate:,.0f} customers/s")
    print(f"torch eager, 1 thread: {torch_rate:,.0f} customers/s")
    print(f"ratio onnxruntime/torch: {onnx_rate / torch_rate:.2f} (max difference {gap:.1e})")


if __name__ == "__main__":
    main()
