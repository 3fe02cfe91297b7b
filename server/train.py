"""Centralised training on pooled store databases: for pilots, and as the federation's upper bound.

Reads each store database read-only, builds each store's censored next-visit
rows at cutoffs through its whole history before as-of (nothing after it),
trains the network, and writes `model.onnx` + `manifest.json`. The release
horizon only sets which probability the graph's `probability` output gives and
where it is calibrated: the model itself is horizon-free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from models.days import day_after
from models.export import write_model_dir
from models.labels import DEFAULT_HORIZON_DAYS, LabelError, plan_cutoffs
from models.network import NetworkConfig
from models.store_data import DAY, StoreData, load_store_data
from models.survival import DEFAULT_LOOKBACK_DAYS, SurvivalDataError, SurvivalSet, survival_set
from models.training import TrainedModel, TrainingConfig, fit

from .errors import TrainingError

MAX_ROWS_PER_STORE = 100_000  # a uniform sample beyond this: training time stays bounded on long histories



def parse_date(text: str, option: str = "--as-of") -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise TrainingError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def load_stores(paths: Sequence[Path]) -> list[StoreData]:
    if not paths:
        raise TrainingError("give at least one --db")
    return [load_store_data(path) for path in paths]


def store_rows(store: StoreData, as_of_day: int, lookback_days: int = DEFAULT_LOOKBACK_DAYS,
               seed: int = 0) -> SurvivalSet:
    """One store's training rows at as-of, or a TrainingError naming the store."""
    try:
        return survival_set(store, as_of_day, lookback_days=lookback_days, max_rows=MAX_ROWS_PER_STORE, seed=seed)
    except SurvivalDataError as exc:
        raise TrainingError(str(exc)) from None


def common_horizon(stores: Sequence[StoreData], as_of_day: int, horizon_days: int) -> int:
    """The longest label horizon every store's history allows (at most the one asked for).

    Only the labelled baselines (RFM logistic) need it: the model is horizon-free."""
    horizons = []
    for store in stores:
        seen = store.until(as_of_day * DAY)
        if not len(seen.ts):
            raise TrainingError(f"store {store.store_id} has no transactions before as-of")
        try:
            horizons.append(plan_cutoffs(seen.first_day, as_of_day, horizon_days).horizon_days)
        except LabelError as exc:
            raise TrainingError(f"store {store.store_id}: {exc}") from None
    return min(horizons)


@dataclass
class PooledTraining:
    trained: TrainedModel
    rows: SurvivalSet


def train_pooled(
    stores: Sequence[StoreData],
    as_of_day: int,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    config: TrainingConfig = TrainingConfig(),
    network: NetworkConfig = NetworkConfig(),
    on_store: Callable[[str], None] | None = None,
) -> PooledTraining:
    """Stack every store's rows into one training set and fit one model."""
    parts = []
    for store in stores:
        parts.append(store_rows(store, as_of_day, seed=config.seed))
        if on_store:
            on_store(store.store_id)
    pooled = SurvivalSet.concat(parts)
    return PooledTraining(fit(pooled, horizon_days, network, config), pooled)


def train_command(
    db_paths: Sequence[Path], as_of: date, out: Path, horizon_days: int, version: str | None = None,
    on_store: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """`churn-server train`: pooled training, exported; returns the manifest."""
    stores = load_stores(db_paths)
    result = train_pooled(stores, day_after(as_of), horizon_days, on_store=on_store)
    return write_model_dir(
        result.trained.model,
        out,
        version=version or f"central-{as_of.isoformat()}",
        horizon_days=horizon_days,
        metrics=result.trained.metrics,
        training={
            "mode": "centralized",
            "as_of": as_of.isoformat(),
            "stores": [s.store_id for s in stores],
            "rows": len(result.rows),
            "cutoffs": int(len(set(result.rows.cutoff.tolist()))),
            "notes": result.rows.notes,
        },
    )
