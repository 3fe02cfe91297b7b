"""The model on the poorest real export: customer id, a date, an amount. Nothing else."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from edge_agent.ingest import ingest_files
from edge_agent.store_db import open_store_db
from models.store_data import load_store_data
from server.backtest import BacktestSpec, run_backtest
from server.train import day_after, parse_date
from tests.conftest import CHAIN_AS_OF


@pytest.fixture(scope="module")
def bare_dbs(small_chain: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("bare")
    paths = []
    for store in sorted(small_chain.glob("store-*")):
        bare = folder / f"{store.name}.csv"
        with open(store / "pos.csv", newline="") as source, open(bare, "w", newline="") as target:
            writer = csv.writer(target)
            writer.writerow(["customer_id", "timestamp", "amount"])
            for row in csv.DictReader(source):
                writer.writerow([row["customer_id"], row["timestamp"][:10], row["amount"]])
        db = folder / f"{store.name}.db"
        with open_store_db(db) as handle:
            report = ingest_files(handle, [bare]).totals
        assert report.quarantined == 0
        paths.append(db)
    return paths


def test_date_only_purchases_still_beat_recency_and_keep_up_with_the_classics(bare_dbs: list[Path]) -> None:
    """1,200 test customers: an AUC's standard error is near 0.01 (tests/server/test_backtest.py)."""
    stores = [load_store_data(p) for p in bare_dbs]
    spec = BacktestSpec(day_after(parse_date(CHAIN_AS_OF)), 90, "centralized", lookback_days=90)
    report = run_backtest(stores, spec)
    assert report["auc"] > report["baselines"]["recency"]["auc"]
    assert report["pr_auc"] > report["baselines"]["recency"]["pr_auc"] + 0.05
    assert report["auc"] > max(b["auc"] for b in report["baselines"].values()) - 0.01
    assert report["brier"] < 0.1
