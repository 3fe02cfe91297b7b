"""The simulated chain: reproducible, varied across stores, and churn that shows before it happens."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from server.simulate import ChainSpec, SimulationError, simulate_chain
from tests.conftest import run_cli, run_json

SPEC = ChainSpec(stores=4, customers_per_store=300, days=240, seed=11)


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.csv"))
    }


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chain")
    simulate_chain(SPEC, out)
    return out


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_same_seed_same_chain_other_seed_other_chain(chain: Path, tmp_path: Path) -> None:
    simulate_chain(SPEC, tmp_path / "again")
    assert digest(tmp_path / "again") == digest(chain)
    simulate_chain(ChainSpec(stores=1, customers_per_store=300, days=240, seed=12), tmp_path / "other")
    assert digest(tmp_path / "other")["store-01/pos.csv"] != digest(chain)["store-01/pos.csv"]


def test_adding_stores_leaves_existing_stores_unchanged(chain: Path, tmp_path: Path) -> None:
    simulate_chain(ChainSpec(stores=2, customers_per_store=300, days=240, seed=11), tmp_path / "small")
    small = digest(tmp_path / "small")
    assert small["store-02/pos.csv"] == digest(chain)["store-02/pos.csv"]


def test_pos_files_follow_the_contract_and_ingest_cleanly(chain: Path, tmp_path: Path) -> None:
    report = run_json("edge-agent", "ingest", "--db", str(tmp_path / "store-01.db"), str(chain / "store-01" / "pos.csv"))
    assert report["rows"] > 1000
    assert report["quarantined"] == 0 and report["duplicates"] == 0
    rows = read(chain / "store-01" / "pos.csv")
    assert any(r["customer_id"] == "" for r in rows), "walk-in sales are anonymous"
    assert any(float(r["amount"]) < 0 for r in rows), "some sales are refunded"
    days = sorted({r["timestamp"][:10] for r in rows})
    assert days[0] >= "2025-05-06" and days[-1] <= "2025-12-31", "only the written 240 days"


def store_stats(chain: Path, store: str) -> dict[str, float]:
    rows = [r for r in read(chain / store / "pos.csv") if r["customer_id"]]
    customers = {r["customer_id"] for r in rows}
    amounts = np.array([float(r["amount"]) for r in rows if float(r["amount"]) > 0])
    return {"visits_per_customer": len(rows) / len(customers), "basket": float(np.median(amounts))}


def test_stores_differ_in_size_and_customer_mix(chain: Path) -> None:
    stores = json.loads((chain / "chain.json").read_text())["stores"]
    assert len({s["archetype"] for s in stores}) == 4
    assert len({s["customers"] for s in stores}) == 4
    stats = [store_stats(chain, s["store_id"]) for s in stores]
    baskets = [s["basket"] for s in stats]
    visits = [s["visits_per_customer"] for s in stats]
    assert max(baskets) > 2.5 * min(baskets), "big-basket stores and top-up stores look different"
    assert max(visits) > 2 * min(visits)


def test_footfall_is_consistent_with_the_tills(chain: Path) -> None:
    footfall = read(chain / "store-02" / "footfall.csv")
    sales: dict[str, int] = defaultdict(int)
    for r in read(chain / "store-02" / "pos.csv"):
        if r["channel"] == "store" and float(r["amount"]) > 0:
            sales[r["timestamp"][:13]] += 1
    entries = {r["timestamp"][:13]: int(r["entries"]) for r in footfall}
    assert all(sales[hour] <= entries.get(hour, 0) for hour in sales), "conversion never exceeds 1"
    total_conversion = sum(sales.values()) / sum(entries.values())
    assert 0.2 < total_conversion < 0.8
    by_hour: dict[int, int] = defaultdict(int)
    for r in footfall:
        by_hour[int(r["timestamp"][11:13])] += int(r["entries"])
    busiest = max(by_hour, key=by_hour.__getitem__)
    assert 11 <= busiest <= 19, "traffic peaks at lunch or in the evening, not at opening"
    exits = sum(int(r["exits"]) for r in footfall)
    assert exits == sum(entries.values()), "everybody who came in left"


def test_churners_fade_before_they_leave(chain: Path) -> None:
    """Over all stores, churners' visits and baskets in the 4 weeks before churn fall
    below their own level 3 to 6 months earlier; loyal customers' do not."""
    early_visits = late_visits = early_basket = late_basket = 0.0
    churners = 0
    for store in sorted(p.name for p in chain.iterdir() if p.is_dir()):
        truth = {r["customer_id"]: r for r in read(chain / store / "truth.csv")}
        history: dict[str, list[tuple[date, float]]] = defaultdict(list)
        for r in read(chain / store / "pos.csv"):
            if r["customer_id"] and float(r["amount"]) > 0:
                history[r["customer_id"]].append((date.fromisoformat(r["timestamp"][:10]), float(r["amount"])))
        for customer, t in truth.items():
            if not t["churn_date"] or t["fade_days"] == "0":
                continue
            churn = date.fromisoformat(t["churn_date"])
            early = [a for d, a in history[customer] if 90 <= (churn - d).days < 180]
            late = [a for d, a in history[customer] if 0 <= (churn - d).days < 28]
            if len(early) < 3:
                continue
            churners += 1
            early_visits += len(early) / 90
            late_visits += len(late) / 28
            early_basket += float(np.mean(early))
            late_basket += float(np.mean(late)) if late else float(np.mean(early))
            assert not [d for d, _ in history[customer] if d > churn], "nobody buys after churning"
    assert churners >= 30
    assert late_visits < 0.8 * early_visits
    assert late_basket < 0.95 * early_basket


def test_truth_lists_every_customer_with_a_cause_for_each_churner(chain: Path) -> None:
    truth = read(chain / "store-03" / "truth.csv")
    assert len(truth) == json.loads((chain / "chain.json").read_text())["stores"][2]["customers"]
    for row in truth:
        assert bool(row["churn_date"]) == bool(row["churn_cause"])
        assert row["churn_cause"] in {"", "base", "competitor", "crowding"}


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(SimulationError, match="--days"):
        ChainSpec(days=3).check()


def test_cli_writes_the_chain(tmp_path: Path) -> None:
    result = run_cli("churn-server", "simulate", "--stores", "2", "--customers-per-store", "50",
                     "--days", "60", "--seed", "3", "--out", str(tmp_path / "c"), "--gzip", check=True)
    assert "store-02" in result.stdout
    assert (tmp_path / "c" / "store-01" / "pos.csv.gz").exists()
    assert (tmp_path / "c" / "stores.csv").exists()
