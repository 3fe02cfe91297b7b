"""Honest backtests: train on what was known at as-of, measure on the next H days.

The training side sees only data before the end of as-of (labels from cutoffs
whose windows end by then). The test population is the customers active at
as-of (a purchase in the lookback window); their label is "no purchase in the
H days after as-of". The baselines are fitted on the same training rows and
scored on the same test customers.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from models.baselines import fit_baselines
from models.features import build_features
from models.labels import DEFAULT_LOOKBACK_DAYS, LabelledSet, labelled_at, training_set
from models.metrics import summary
from models.risk import LEVELS, RiskConfig, risk_levels, risk_scores
from models.store_data import DAY, StoreData
from models.training import TrainingConfig, fit, predict

from .errors import BacktestError
from .train import common_horizon

MODES = ("local", "centralized", "federated")
FLAG_LEVEL = "orange"


@dataclass(frozen=True)
class BacktestSpec:
    as_of_day: int  # first day after as-of
    horizon_days: int
    mode: str
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    truth_dir: Path | None = None
    seed: int = 0


Predictor = Callable[[np.ndarray], np.ndarray]


def _check(stores: Sequence[StoreData], spec: BacktestSpec) -> None:
    if spec.mode not in MODES:
        raise BacktestError(f"--mode must be one of {', '.join(MODES)}")
    for store in stores:
        if store.last_day < spec.as_of_day + spec.horizon_days - 1:
            last = date.fromordinal(date(1970, 1, 1).toordinal() + store.last_day)
            raise BacktestError(
                f"store {store.store_id}: data ends {last}, before as-of + {spec.horizon_days} days; "
                "nothing to measure against"
            )


def _levels_table(labels: np.ndarray, probabilities: np.ndarray, risk: RiskConfig) -> list[dict[str, Any]]:
    levels = risk_levels(risk_scores(probabilities), risk)
    rows = []
    for index, level in enumerate(LEVELS):
        members = levels == index
        rows.append({
            "level": level,
            "customers": int(members.sum()),
            "churn_rate": float(labels[members].mean()) if members.any() else None,
        })
    return rows


def _read_truth(truth_dir: Path, store_id: str) -> dict[str, int]:
    """customer_id → true churn day, from a simulated chain's truth.csv."""
    path = truth_dir / store_id / "truth.csv"
    if not path.exists():
        raise BacktestError(f"--truth: {path} does not exist")
    epoch = date(1970, 1, 1).toordinal()
    with open(path, newline="") as handle:
        return {
            row["customer_id"]: date.fromisoformat(row["churn_date"]).toordinal() - epoch
            for row in csv.DictReader(handle) if row["churn_date"]
        }


def lead_times(
    store: StoreData, predictor: Predictor, spec: BacktestSpec, truth: dict[str, int], risk: RiskConfig
) -> list[int]:
    """Days from a churner's first orange-or-above flag to its true churn date.

    Simulates deployment after as-of: the fixed model scores every week over
    the horizon, each time with only the data before that day.
    """
    flag_rank = LEVELS.index(FLAG_LEVEL)
    first_flag: dict[str, int] = {}
    for day in range(spec.as_of_day, spec.as_of_day + spec.horizon_days, 7):
        table = build_features(store.until(day * DAY), day, spec.lookback_days)
        levels = risk_levels(risk_scores(predictor(table.values)), risk)
        for customer in table.customer_ids[levels >= flag_rank]:
            first_flag.setdefault(str(customer), day)
    leads = []
    for customer, churn_day in truth.items():
        if spec.as_of_day <= churn_day < spec.as_of_day + spec.horizon_days:
            flagged = first_flag.get(customer)
            leads.append(churn_day - flagged if flagged is not None and flagged <= churn_day else -1)
    return leads


def _lead_summary(leads: list[int]) -> dict[str, Any]:
    flagged = [d for d in leads if d >= 0]
    return {
        "churners": len(leads),
        "flagged_before_churn": len(flagged),
        "share_flagged": len(flagged) / len(leads) if leads else None,
        "median_lead_days": float(np.median(flagged)) if flagged else None,
        "mean_lead_days": float(np.mean(flagged)) if flagged else None,
    }


def _evaluate(
    test: LabelledSet, probabilities: np.ndarray, baseline_scores: dict[str, np.ndarray], risk: RiskConfig
) -> dict[str, Any]:
    result: dict[str, Any] = summary(test.labels, probabilities, probabilities)
    result["levels"] = _levels_table(test.labels, probabilities, risk)
    result["baselines"] = {name: summary(test.labels, scores) for name, scores in baseline_scores.items()}
    return result


def run_backtest(
    stores: Sequence[StoreData],
    spec: BacktestSpec,
    *,
    risk: RiskConfig | None = None,
    config: TrainingConfig | None = None,
    on_step: Callable[[str], None] | None = None,
    federated: Callable[[Sequence[StoreData], int, int], Predictor] | None = None,
) -> dict[str, Any]:
    """Train per `spec.mode`, score the test customers, compare with the baselines."""
    _check(stores, spec)
    risk = risk or RiskConfig()
    config = config or TrainingConfig(seed=spec.seed)
    step = on_step or (lambda _: None)
    horizon = common_horizon(stores, spec.as_of_day, spec.horizon_days)
    trains = {s.store_id: training_set(s, spec.as_of_day, horizon) for s in stores}
    tests = {s.store_id: labelled_at(s, spec.as_of_day, spec.horizon_days, spec.lookback_days) for s in stores}
    predictors: dict[str, Predictor] = {}
    baselines: dict[str, dict[str, Any]] = {}
    if spec.mode == "local":
        for store in stores:
            step(f"training {store.store_id} alone")
            model = fit(trains[store.store_id], config=config).model
            predictors[store.store_id] = lambda v, m=model: predict(m, v)
            baselines[store.store_id] = fit_baselines(trains[store.store_id], horizon)
    else:
        pooled = LabelledSet.concat(list(trains.values()))
        if spec.mode == "centralized":
            step("training on the pooled chain")
            model = fit(pooled, config=config).model
            shared: Predictor = lambda v: predict(model, v)  # noqa: E731
        else:
            if federated is None:
                raise BacktestError("--mode federated needs the federation runner")
            step("training the federation")
            shared = federated(stores, spec.as_of_day, horizon)
        shared_baselines = fit_baselines(pooled, horizon)
        for store in stores:
            predictors[store.store_id] = shared
            baselines[store.store_id] = shared_baselines

    per_store, all_p, all_leads = [], [], []
    all_base: dict[str, list[np.ndarray]] = {name: [] for name in ("recency", "rfm_logistic", "bg_nbd")}
    for store in stores:
        test = tests[store.store_id]
        p = predictors[store.store_id](test.values)
        scores = {name: scorer(test) for name, scorer in baselines[store.store_id].items()}
        entry = {"store_id": store.store_id, **_evaluate(test, p, scores, risk)}
        if spec.truth_dir is not None:
            step(f"measuring lead time in {store.store_id}")
            truth = _read_truth(spec.truth_dir, store.store_id)
            leads = lead_times(store, predictors[store.store_id], spec, truth, risk)
            entry["lead_time"] = _lead_summary(leads)
            all_leads += leads
        per_store.append(entry)
        all_p.append(p)
        for name in all_base:
            all_base[name].append(scores[name])
    test_all = LabelledSet.concat(list(tests.values()))
    result: dict[str, Any] = {
        "mode": spec.mode,
        "as_of": date.fromordinal(date(1970, 1, 1).toordinal() + spec.as_of_day - 1).isoformat(),
        "horizon_days": spec.horizon_days,
        "training_horizon_days": horizon,
        "lookback_days": spec.lookback_days,
        "notes": sorted({t.plan.note for t in trains.values() if t.plan and t.plan.note}),
        **_evaluate(test_all, np.concatenate(all_p), {k: np.concatenate(v) for k, v in all_base.items()}, risk),
        "per_store": per_store,
    }
    if spec.truth_dir is not None:
        result["lead_time"] = _lead_summary(all_leads)
    result["vs_baselines"] = {
        name: {"auc_gain": result["auc"] - base["auc"], "pr_auc_gain": result["pr_auc"] - base["pr_auc"]}
        for name, base in result["baselines"].items()
    }
    return result
