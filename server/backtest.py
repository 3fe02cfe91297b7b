"""Honest backtests: train on what was known at as-of, measure on the next H days.

The model learns from censored next-visit times at cutoffs through the whole
history before as-of (models/survival.py): nothing at or after as-of is read.
The test population is the customers active at as-of (a purchase in the
lookback window); their label is "no purchase in the H days after as-of".

Baselines are fitted the standard way on the same stores: recency; an RFM
logistic regression on labelled cutoffs that end by as-of; BG/NBD and
Pareto/NBD on every customer's whole history at as-of (no labels needed).
All are scored on exactly the test customers. With a simulated chain's truth,
the early warning is measured as deployed (server/early_warning.py).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.alerting import AlertPolicy
from models.baselines import BASELINES, fit_baselines
from models.days import day_date, epoch_day
from models.labels import DEFAULT_LOOKBACK_DAYS, LabelError, LabelledSet, labelled_at, training_set
from models.metrics import summary
from models.risk import LEVELS, RiskConfig
from models.scoring import Budgets, ChurnModel, standing
from models.store_data import StoreData
from models.survival import SurvivalSet
from models.training import TorchChurnModel, TrainingConfig, fit

from .early_warning import WarningSpec, early_warning
from .errors import BacktestError
from .train import common_horizon, store_rows

MODES = ("local", "centralized", "federated")


@dataclass(frozen=True)
class BacktestSpec:
    as_of_day: int  # first day after as-of
    horizon_days: int
    mode: str
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    truth_dir: Path | None = None
    seed: int = 0
    warning_weeks: int = 26


Federate = Callable[[Sequence[StoreData], int, int], ChurnModel]


def _day_text(day: int) -> str:
    return day_date(day).isoformat()


def _check(stores: Sequence[StoreData], spec: BacktestSpec) -> None:
    if spec.mode not in MODES:
        raise BacktestError(f"--mode must be one of {', '.join(MODES)}")
    for store in stores:
        if store.last_day < spec.as_of_day + spec.horizon_days - 1:
            raise BacktestError(
                f"store {store.store_id}: data ends {_day_text(store.last_day)}, before as-of + "
                f"{spec.horizon_days} days; nothing to measure against"
            )
        if spec.truth_dir is not None and store.last_day < spec.as_of_day + 7 * (spec.warning_weeks - 1):
            raise BacktestError(
                f"store {store.store_id}: data ends {_day_text(store.last_day)}, before {spec.warning_weeks} weeks "
                "of weekly scoring after as-of; give fewer --warning-weeks or an earlier --as-of"
            )


def levels_table(tests: Sequence[LabelledSet], models: Sequence[ChurnModel], spec: BacktestSpec,
                 risk: RiskConfig, budgets: Budgets) -> list[dict[str, Any]]:
    """Customers and churn rate per early-warning level (as the store box would level them, each store
    with its own budget), and of the lapsed (the win-back list)."""
    levels, lapsed, labels = [], [], []
    for test, model in zip(tests, models):
        state = standing(test, model, risk, spec.horizon_days, budgets)  # type: ignore[arg-type]
        levels.append(state.levels)
        lapsed.append(state.lapsed)
        labels.append(test.labels)
    level, gone, y = np.concatenate(levels), np.concatenate(lapsed), np.concatenate(labels)
    total = max(1, len(y))
    rows = []
    for index, name in enumerate(LEVELS):
        members = (level == index) & ~gone
        rows.append({"level": name, "customers": int(members.sum()), "share": float(members.sum() / total),
                     "churn_rate": float(y[members].mean()) if members.any() else None})
    rows.append({"level": "lapsed", "customers": int(gone.sum()), "share": float(gone.sum() / total),
                 "churn_rate": float(y[gone].mean()) if gone.any() else None})
    return rows


def read_truth(truth_dir: Path, store_id: str) -> dict[str, int]:
    """customer_id → true churn day, from a simulated chain's truth.csv."""
    path = truth_dir / store_id / "truth.csv"
    if not path.exists():
        raise BacktestError(f"--truth: {path} does not exist")
    with open(path, newline="") as handle:
        return {
            row["customer_id"]: epoch_day(row["churn_date"])
            for row in csv.DictReader(handle) if row["churn_date"]
        }


def _evaluate(test: LabelledSet, probabilities: np.ndarray, baseline_scores: dict[str, np.ndarray]) -> dict[str, Any]:
    result: dict[str, Any] = summary(test.labels, probabilities, probabilities)
    result["mean_probability"] = float(np.mean(probabilities)) if len(probabilities) else None
    result["baselines"] = {name: summary(test.labels, scores) for name, scores in baseline_scores.items()}
    return result


def _train(stores: Sequence[StoreData], spec: BacktestSpec, config: TrainingConfig, federated: Federate | None,
           step: Callable[[str], None]) -> tuple[dict[str, ChurnModel], list[str]]:
    """One model per store (the same one unless local), and notes on the training data."""
    if spec.mode == "federated":
        if federated is None:
            raise BacktestError("--mode federated needs the federation runner")
        step("training the federation")
        shared = federated(stores, spec.as_of_day, spec.horizon_days)
        return {s.store_id: shared for s in stores}, []
    rows = {s.store_id: store_rows(s, spec.as_of_day, spec.lookback_days, config.seed) for s in stores}
    notes = sorted({n for r in rows.values() for n in r.notes})
    if spec.mode == "local":
        models: dict[str, ChurnModel] = {}
        for store in stores:
            step(f"training {store.store_id} alone")
            models[store.store_id] = TorchChurnModel(fit(rows[store.store_id], spec.horizon_days, config=config).model)
        return models, notes
    step("training on the pooled chain")
    pooled = TorchChurnModel(fit(SurvivalSet.concat(list(rows.values())), spec.horizon_days, config=config).model)
    return {s.store_id: pooled for s in stores}, notes


def _baselines(stores: Sequence[StoreData], spec: BacktestSpec) -> dict[str, dict[str, Any]]:
    """Per store: the baselines to score it with (each store's own in local mode, the pooled chain's otherwise)."""
    try:
        horizon = common_horizon(stores, spec.as_of_day, spec.horizon_days)
        labelled = {s.store_id: training_set(s, spec.as_of_day, horizon) for s in stores}
    except LabelError as exc:
        raise BacktestError(str(exc)) from None
    if spec.mode == "local":
        return {s.store_id: fit_baselines(labelled[s.store_id], [s], spec.as_of_day, spec.horizon_days) for s in stores}
    pooled = fit_baselines(LabelledSet.concat(list(labelled.values())), stores, spec.as_of_day, spec.horizon_days)
    return {s.store_id: pooled for s in stores}


def run_backtest(
    stores: Sequence[StoreData],
    spec: BacktestSpec,
    *,
    risk: RiskConfig | None = None,
    policy: AlertPolicy | None = None,
    config: TrainingConfig | None = None,
    on_step: Callable[[str], None] | None = None,
    federated: Federate | None = None,
) -> dict[str, Any]:
    """Train per `spec.mode`, score the test customers, compare with the baselines."""
    _check(stores, spec)
    risk = risk or RiskConfig()
    policy = policy or AlertPolicy()
    budgets = Budgets(policy.weekly_budget, policy.winback_weekly_budget)
    config = config or TrainingConfig(seed=spec.seed)
    step = on_step or (lambda _: None)
    tests = {s.store_id: labelled_at(s, spec.as_of_day, spec.horizon_days, spec.lookback_days) for s in stores}
    models, notes = _train(stores, spec, config, federated, step)
    step("fitting the baselines")
    baselines = _baselines(stores, spec)

    per_store, all_p = [], []
    all_base: dict[str, list[np.ndarray]] = {name: [] for name in BASELINES}
    for store in stores:
        test = tests[store.store_id]
        p = models[store.store_id].predict(test.values)
        scores = {name: scorer(test) for name, scorer in baselines[store.store_id].items()}
        entry = {"store_id": store.store_id, **_evaluate(test, p, scores),
                 "levels": levels_table([test], [models[store.store_id]], spec, risk, budgets)}
        per_store.append(entry)
        all_p.append(p)
        for name in BASELINES:
            all_base[name].append(scores[name])
    test_all = LabelledSet.concat(list(tests.values()))
    result: dict[str, Any] = {
        "mode": spec.mode,
        "as_of": _day_text(spec.as_of_day - 1),
        "horizon_days": spec.horizon_days,
        "lookback_days": spec.lookback_days,
        "notes": notes,
        **_evaluate(test_all, np.concatenate(all_p), {k: np.concatenate(v) for k, v in all_base.items()}),
        "levels": levels_table(list(tests.values()), [models[s.store_id] for s in stores], spec, risk, budgets),
        "per_store": per_store,
    }
    result["vs_baselines"] = {
        name: {"auc_gain": result["auc"] - base["auc"], "pr_auc_gain": result["pr_auc"] - base["pr_auc"]}
        for name, base in result["baselines"].items()
    }
    if spec.truth_dir is not None:
        step("measuring the early warning week by week")
        warning = WarningSpec(spec.as_of_day, spec.horizon_days, spec.warning_weeks, lookback_days=spec.lookback_days)
        inputs = [(s, models[s.store_id], read_truth(spec.truth_dir, s.store_id)) for s in stores]
        result["early_warning"] = early_warning(inputs, warning, risk, policy, "model")
        result["early_warning_baseline"] = early_warning(inputs, warning, risk, policy, "overdue")
    return result
