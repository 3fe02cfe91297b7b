"""The early warning on simulated chains, as deployed: weekly scoring after as-of with the real alert policy.

For each seed, a chain is simulated (`churn-server simulate`), each store's
till export ingested with the box's own ingest, the model trained on the
pooled chain at as-of, and then every week for 26 weeks each store is scored
and alerted exactly as its box would (drift, lapsed rule, levels, cooldown,
weekly budget). Against the simulator's truth it prints, per weekly budget:
the share of churners warned before their churn date, the median lead, the
alert precision and the false alarms — and the same for the overdue rule
(warn when silent for more than 1.5 usual gaps) under the same budget, cooldown
and lapsed rule, measured in the same run (the baseline).

With `--events`, the stores' customer events and identity links are ingested
too, and the model is trained and scored twice in the same run: on purchases
alone and with the events (complaints, service contacts, returns, online
browsing, reviews and surveys); the overdue rule is the same for both.

It also prints how well each score ranks "will leave within 60 days while
still buying and not lapsed" at the weekly scoring days (AUC): the ceiling
every early-warning rule on this simulator works under.

Usage: .venv/bin/python benchmarks/early_warning.py [--stores 4] [--customers 2000] [--days 640]
           [--seeds 11,12] [--budgets 20,50] [--weeks 26] [--horizon 90] [--events]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.chains import CHAIN_END, simulated_chain  # noqa: E402
from models.alerting import AlertPolicy  # noqa: E402
from models.features import build_features  # noqa: E402
from models.metrics import roc_auc  # noqa: E402
from models.rhythm import lapsed, store_typical_gap  # noqa: E402
from models.risk import RiskConfig  # noqa: E402
from models.store_data import DAY, CustomerEvents, load_store_data  # noqa: E402
from models.survival import SurvivalSet  # noqa: E402
from models.training import TorchChurnModel, fit  # noqa: E402
from server.backtest import read_truth  # noqa: E402
from server.early_warning import WarningSpec, early_warning  # noqa: E402
from server.train import day_after, store_rows  # noqa: E402

END = CHAIN_END
KEYS = ("caught_before_churn_share", "median_lead_days", "alert_precision", "false_alarms_per_1000_loyal_per_month")


def ranking_ceiling(stores: list[Any], truths: list[dict[str, int]], model: TorchChurnModel, as_of_day: int,
                    risk: RiskConfig) -> dict[str, float]:
    """AUC of each score for "leaves within 60 days" among customers still buying and not lapsed."""
    labels, by_model, by_overdue = [], [], []
    for store, truth in zip(stores, truths):
        for week in range(2, 20, 4):
            day = as_of_day + 7 * week
            table = build_features(store.until(day * DAY), day, 365)
            churn = np.array([truth.get(str(c), -1) for c in table.customer_ids])
            usual = table.facts["usual_gap_days"]
            recency = table.facts["recency_days"]
            keep = ((churn < 0) | (churn >= day)) & ~lapsed(recency, usual, table.facts["longest_gap_days"],
                                                            risk.lapse_rule)
            labels.append(((churn >= day) & (churn < day + 60))[keep])
            expected = model.expected_visits(table.values, 60)
            gap = np.where(np.isfinite(usual), usual, store_typical_gap(usual))
            by_model.append((1 - expected / (60 / np.maximum(gap, 1)))[keep] + 1e-3 * model.predict(table.values)[keep])
            by_overdue.append((recency / np.maximum(gap, 1))[keep])
    y = np.concatenate(labels)
    return {"share_leaving": float(y.mean()), "model_auc": roc_auc(y, np.concatenate(by_model)),
            "overdue_auc": roc_auc(y, np.concatenate(by_overdue))}


def purchases_only(store: Any) -> Any:
    """The same store as a box without customer-event exports sees it."""
    return dataclasses.replace(store, events=CustomerEvents.none())


def mean_of(results: list[dict[str, Any]]) -> dict[str, float]:
    """Mean over seeds of each figure; NaN where no seed had one (no churner caught, say)."""
    known = {k: [r[k] for r in results if r[k] is not None] for k in KEYS}
    return {k: statistics.fmean(v) if v else float("nan") for k, v in known.items()}


def print_row(name: str, results: list[dict[str, Any]]) -> None:
    values = mean_of(results)
    print(f"  {name:34s} {values[KEYS[0]]:7.1%} {values[KEYS[1]]:6.1f} {values[KEYS[2]]:9.1%} "
          f"{values[KEYS[3]]:12.1f}  {statistics.fmean(r['churners'] for r in results):.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=4)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=640)
    parser.add_argument("--seeds", default="11,12")
    parser.add_argument("--budgets", default="20,50")
    parser.add_argument("--weeks", type=int, default=26)
    parser.add_argument("--horizon", type=int, default=90)
    parser.add_argument("--events", action="store_true",
                        help="also ingest customer events; compare the model with and without them")
    args = parser.parse_args()
    as_of = END - timedelta(days=7 * args.weeks + args.horizon + 7)
    as_of_day = day_after(as_of)
    risk = RiskConfig()
    variants = ["model, purchases only"] + (["model, with events"] if args.events else [])
    budgets = [int(b) for b in args.budgets.split(",")]
    results: dict[tuple[int, str], list[dict[str, Any]]] = {}
    ceilings: dict[str, list[dict[str, float]]] = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        with tempfile.TemporaryDirectory(prefix="ew-") as work:
            started = time.perf_counter()
            dbs = simulated_chain(Path(work), args.stores, args.customers, args.days, seed, events=args.events)
            loaded = [load_store_data(db) for db in dbs]
            truths = [read_truth(Path(work), s.store_id) for s in loaded]
            spec = WarningSpec(as_of_day, args.horizon, args.weeks)
            for variant in variants:
                stores = loaded if variant.endswith("events") else [purchases_only(s) for s in loaded]
                rows = SurvivalSet.concat([store_rows(s, as_of_day) for s in stores])
                model = TorchChurnModel(fit(rows, args.horizon).model)
                inputs = [(s, model, t) for s, t in zip(stores, truths)]
                for budget in budgets:
                    policy = AlertPolicy(weekly_budget=budget)
                    results.setdefault((budget, variant), []).append(
                        early_warning(inputs, spec, risk, policy, "model"))
                    if variant == variants[0]:
                        results.setdefault((budget, "overdue"), []).append(
                            early_warning(inputs, spec, risk, policy, "overdue"))
                ceilings.setdefault(variant, []).append(ranking_ceiling(stores, truths, model, as_of_day, risk))
            print(f"seed {seed}: chain, training and {args.weeks} weeks of scoring in "
                  f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(f"{args.stores} stores x {args.customers} customers, {args.days} days, as-of {as_of}, horizon "
          f"{args.horizon} days, {args.weeks} weeks of weekly scoring; seeds {args.seeds} (mean)")
    for budget in budgets:
        print(f"\nweekly budget {budget} alerts per store")
        print(f"  {'rule':34s} {'caught':>7s} {'lead':>6s} {'precision':>9s} {'false alarms':>12s}  churners")
        for variant in variants:
            print_row(f"{variant} (drift, value at risk)" if len(variants) == 1 else variant,
                      results[(budget, variant)])
        print_row("overdue > 1.5 usual gaps", results[(budget, "overdue")])
        overdue = mean_of(results[(budget, "overdue")])
        for variant in variants:
            model = mean_of(results[(budget, variant)])
            print(f"  ratio {variant} / overdue: " + ", ".join(
                f"{label} {model[k] / overdue[k]:.2f}"
                for label, k in zip(("caught", "lead", "precision", "false alarms"), KEYS)))
    print()
    for variant in variants:
        ceiling = {k: statistics.fmean(c[k] for c in ceilings[variant]) for k in ceilings[variant][0]}
        print(f"ranking 'leaves within 60 days' among customers still buying ({ceiling['share_leaving']:.1%} do), "
              f"{variant}: AUC model drift {ceiling['model_auc']:.3f}, overdue ratio {ceiling['overdue_auc']:.3f}")


if __name__ == "__main__":
    main()
