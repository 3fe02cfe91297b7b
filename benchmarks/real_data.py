"""The churn model on a real purchase log (CDNOW), against the classical models, at several cutoffs.

CDNOW is the log of 23,570 customers who first bought at the CD retailer in
the first quarter of 1997, followed to June 1998 (id, date, CDs, dollars): the
data set on which BG/NBD and Pareto/NBD were published. It ships inside the
`lifetimes` wheel on PyPI; this script downloads that wheel once into a cache
folder, splits the customers into stores (by a hash of the id), writes each
store's till export in the POS contract format and ingests it with the box's
own ingest, then runs `churn-server backtest` for every (as-of, horizon)
pair and seed:

- the model's AUC, PR-AUC and Brier, and its mean predicted churn beside the
  real churn rate (calibration in the large);
- every baseline fitted the standard way (recency; RFM logistic; BG/NBD and
  Pareto/NBD on every customer's whole history at as-of), and the model's gain
  over the best of them (the figure), with the ratio model / best;
- the early-warning levels each store's box would give, with the churn rate
  of each level and of the lapsed (the win-back list).

Usage:
  .venv/bin/python benchmarks/real_data.py [--pair 1997-09-30:273 ...] [--seeds 0,1,2] [--stores 3]
      [--split-salt S] [--mode centralized|local|federated] [--cache DIR] [--json]

The default pairs include the standard 39-week calibration / 39-week holdout
split (1997-09-30, 273 days). Give other pairs, salts and seeds: the model is
meant to hold on cutoffs and splits it was never tuned on.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_agent.ingest import ingest_files  # noqa: E402
from edge_agent.store_db import open_store_db  # noqa: E402
from models.store_data import load_store_data  # noqa: E402
from server.backtest import BacktestSpec, run_backtest  # noqa: E402
from server.federation.local import federated_predictor  # noqa: E402
from server.train import day_after, parse_date  # noqa: E402

WHEEL = "lifetimes==0.11.3"
MEMBER = "lifetimes/datasets/CDNOW_master.txt"
DEFAULT_PAIRS = ("1997-09-30:273", "1997-06-30:365", "1997-09-30:90", "1997-12-31:180", "1998-03-31:90")
DEFAULT_CACHE = Path(__file__).resolve().parent.parent / ".cache" / "real-data"


def cdnow_log(cache: Path) -> Path:
    """CDNOW_master.txt, extracted from the lifetimes wheel (downloaded once)."""
    target = cache / "CDNOW_master.txt"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    wheels = list(cache.glob("[Ll]ifetimes-0.11.3-*.whl"))
    if not wheels:
        print(f"downloading {WHEEL} from PyPI into {cache} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL, "-d", str(cache)],
                       check=True)
        wheels = list(cache.glob("[Ll]ifetimes-0.11.3-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        target.write_bytes(wheel.read(MEMBER))
    return target


def split_into_stores(log: Path, folder: Path, stores: int, salt: str) -> list[Path]:
    """One POS export per store (customer_id, timestamp, amount, items), customers assigned by a hash."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"cdnow-{k + 1}.csv" for k in range(stores)]
    handles = [open(p, "w", newline="") for p in paths]
    try:
        writers = [csv.writer(h) for h in handles]
        for writer in writers:
            writer.writerow(["customer_id", "timestamp", "amount", "items"])
        with open(log) as source:
            next(source)  # header
            for line in source:
                customer, day, cds, dollars = line.split()
                store = zlib.crc32(f"{salt}{customer}".encode()) % stores
                writers[store].writerow([customer, f"{day[:4]}-{day[4:6]}-{day[6:]}", dollars, cds])
    finally:
        for handle in handles:
            handle.close()
    return paths


def ingest(exports: list[Path], folder: Path) -> list[Path]:
    """Each export through the box's own ingest into its store database."""
    dbs = []
    for export in exports:
        db = folder / f"{export.stem}.db"
        if not db.exists():
            with open_store_db(db, chain="cdnow", store_id=export.stem) as store:
                totals = ingest_files(store, [export]).totals
            print(f"ingested {export.name}: {totals.accepted} accepted, {totals.duplicates} duplicates, "
                  f"{totals.quarantined} quarantined", file=sys.stderr)
        dbs.append(db)
    return dbs


def one_run(dbs: list[Path], as_of: str, horizon: int, seed: int, mode: str) -> dict[str, Any]:
    stores = [load_store_data(db) for db in dbs]
    spec = BacktestSpec(day_after(parse_date(as_of)), horizon, mode, seed=seed)
    federate = (lambda _s, day, h: federated_predictor(dbs, day, h, 5, "in-process", seed=seed)) if mode == "federated" else None
    started = time.perf_counter()
    report = run_backtest(stores, spec, federated=federate)
    report["seconds"] = time.perf_counter() - started
    return report


def summarise(as_of: str, horizon: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    first = runs[0]
    model_auc = [r["auc"] for r in runs]
    baselines = {name: base["auc"] for name, base in first["baselines"].items()}  # baselines do not depend on the seed
    best_name = max(baselines, key=baselines.get)  # type: ignore[arg-type]
    mean_auc = statistics.fmean(model_auc)
    mean_p = statistics.fmean(r.get("mean_probability", float("nan")) for r in runs)
    return {
        "as_of": as_of, "horizon_days": horizon, "customers": first["n_customers"], "churn_rate": first["churn_rate"],
        "model_auc": mean_auc, "model_auc_by_seed": model_auc, "model_pr_auc": statistics.fmean(r["pr_auc"] for r in runs),
        "model_brier": statistics.fmean(r["brier"] for r in runs), "mean_probability": mean_p,
        "baselines_auc": baselines,
        "baselines_pr_auc": {name: base["pr_auc"] for name, base in first["baselines"].items()},
        "best_baseline": best_name, "gain_over_best": mean_auc - baselines[best_name],
        "ratio_to_best": mean_auc / baselines[best_name],
        "levels": first["levels"], "seconds": statistics.fmean(r["seconds"] for r in runs),
    }


def print_pair(row: dict[str, Any]) -> None:
    seeds = ", ".join(f"{a:.4f}" for a in row["model_auc_by_seed"])
    print(f"\n{row['as_of']} + {row['horizon_days']} days: {row['customers']} customers, churn rate "
          f"{row['churn_rate']:.3f}; mean predicted {row['mean_probability']:.3f}, Brier {row['model_brier']:.4f}")
    print(f"  model        AUC {row['model_auc']:.4f} (seeds {seeds})  PR-AUC {row['model_pr_auc']:.4f}")
    for name, auc in row["baselines_auc"].items():
        print(f"  {name:12s} AUC {auc:.4f}  PR-AUC {row['baselines_pr_auc'][name]:.4f}")
    print(f"  gain over the best baseline ({row['best_baseline']}): {row['gain_over_best']:+.4f} AUC, "
          f"ratio {row['ratio_to_best']:.4f}; {row['seconds']:.0f} s per run")
    print("  levels (share of customers, churn rate): " + "  ".join(
        f"{r['level']} {r['share']:.1%} ({_rate(r['churn_rate'])})" for r in row["levels"]))


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", action="append", help="AS_OF:HORIZON_DAYS (repeat); default: five pairs")
    parser.add_argument("--seeds", default="0,1", help="training seeds, comma-separated")
    parser.add_argument("--stores", type=int, default=3)
    parser.add_argument("--split-salt", default="", help="changes which store each customer lands in")
    parser.add_argument("--mode", default="centralized", choices=("centralized", "local", "federated"))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args()
    log = cdnow_log(args.cache)
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory(prefix="cdnow-") as work:
        folder = Path(work)
        dbs = ingest(split_into_stores(log, folder, args.stores, args.split_salt), folder)
        summary = []
        for pair in args.pair or DEFAULT_PAIRS:
            as_of, _, horizon = pair.partition(":")
            runs = [one_run(dbs, as_of, int(horizon), seed, args.mode) for seed in seeds]
            row = summarise(as_of, int(horizon), runs)
            summary.append(row)
            if not args.json:
                print_pair(row)
    if args.json:
        print(json.dumps({"mode": args.mode, "stores": args.stores, "seeds": seeds, "pairs": summary}, indent=2))
        return
    worst = min(summary, key=lambda r: r["gain_over_best"])
    print(f"\n{args.mode}, {args.stores} stores, seeds {seeds}: the model's smallest gain over the best baseline is "
          f"{worst['gain_over_best']:+.4f} AUC ({worst['as_of']} + {worst['horizon_days']} days); the largest "
          f"{max(r['gain_over_best'] for r in summary):+.4f}.")


if __name__ == "__main__":
    main()
