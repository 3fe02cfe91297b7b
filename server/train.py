"""Centralised training on pooled store databases: for pilots, and as the federation's upper bound.

Reads each store database read-only, builds the stacked training set at
as-of (nothing after it), trains the network, and writes `model.onnx` +
`manifest.json`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from models.export import write_model_dir
from models.labels import DEFAULT_HORIZON_DAYS, LabelError, LabelledSet, LabelPlan, plan_cutoffs, training_set
from models.network import NetworkConfig
from models.store_data import DAY, StoreData, load_store_data
from models.training import TrainedModel, TrainingConfig, fit

from .errors import TrainingError


def day_after(as_of: date) -> int:
    """The as-of boundary as a day number: everything before the end of `as_of` is visible."""
    return (as_of - date(1970, 1, 1)).days + 1


def parse_date(text: str, option: str = "--as-of") -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise TrainingError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def load_stores(paths: Sequence[Path]) -> list[StoreData]:
    if not paths:
        raise TrainingError("give at least one --db")
    return [load_store_data(path) for path in paths]


@dataclass
class PooledTraining:
    trained: TrainedModel
    data: LabelledSet
    plans: dict[str, LabelPlan]


def common_horizon(stores: Sequence[StoreData], as_of_day: int, horizon_days: int) -> int:
    """The longest horizon every store's history allows (at most the one asked for)."""
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


def train_pooled(
    stores: Sequence[StoreData],
    as_of_day: int,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    config: TrainingConfig = TrainingConfig(),
    network: NetworkConfig = NetworkConfig(),
    on_store: Callable[[str], None] | None = None,
) -> PooledTraining:
    """Stack every store's cutoffs into one training set and fit one model."""
    horizon = common_horizon(stores, as_of_day, horizon_days)
    parts, plans = [], {}
    for store in stores:
        part = training_set(store, as_of_day, horizon)
        parts.append(part)
        plans[store.store_id] = part.plan  # type: ignore[assignment]
        if on_store:
            on_store(store.store_id)
    pooled = LabelledSet.concat(parts)
    return PooledTraining(fit(pooled, network, config), pooled, plans)


def train_command(
    db_paths: Sequence[Path], as_of: date, out: Path, horizon_days: int, version: str | None = None,
    on_store: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """`churn-server train`: pooled training, exported; returns the manifest."""
    stores = load_stores(db_paths)
    result = train_pooled(stores, day_after(as_of), horizon_days, on_store=on_store)
    horizon = min(plan.horizon_days for plan in result.plans.values())
    notes = sorted({plan.note for plan in result.plans.values() if plan.note})
    if horizon < horizon_days and not notes:
        notes = [f"a store's history is too short for {horizon_days} days; all use {horizon}"]
    return write_model_dir(
        result.trained.model,
        out,
        version=version or f"central-{as_of.isoformat()}",
        horizon_days=horizon,
        metrics=result.trained.metrics,
        training={
            "mode": "centralized",
            "as_of": as_of.isoformat(),
            "stores": [s.store_id for s in stores],
            "rows": len(result.data),
            "requested_horizon_days": horizon_days,
            "notes": notes,
        },
    )
