"""Churn labels at cutoffs, and the stacked training set that never looks past as-of.

At a cutoff C (a day), the population is the customers with a visit in the
lookback window before C; a customer is churned when they make no purchase in
the H days from C. Training stacks several cutoffs, C = as_of − H, as_of − H −
step, ...; every label window ends on or before as-of, so a model trained at
as-of has seen nothing after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .features import FeatureTable, build_features
from .store_data import DAY, StoreData

DEFAULT_HORIZON_DAYS = 90
DEFAULT_LOOKBACK_DAYS = 365
MIN_FEATURE_HISTORY_DAYS = 60
MIN_HORIZON_DAYS = 14


class LabelError(Exception):
    """Not enough history to label anything."""


@dataclass(frozen=True)
class LabelPlan:
    """The horizon and cutoffs used, and why the horizon may be shorter than asked."""

    horizon_days: int
    requested_horizon_days: int
    cutoffs: tuple[int, ...]  # days, newest first
    note: str = ""


def plan_cutoffs(
    first_day: int,
    as_of_day: int,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    max_cutoffs: int = 6,
    step_days: int = 30,
    min_history_days: int = MIN_FEATURE_HISTORY_DAYS,
) -> LabelPlan:
    """Cutoffs whose label windows end by `as_of_day` and that have some history before them.

    When the history is too short for the requested horizon, the longest
    horizon the data allows is used, and the plan says so.
    """
    span = as_of_day - first_day
    history = min(min_history_days, max(14, span // 3))
    horizon = horizon_days
    note = ""
    if span - horizon < history:
        horizon = span - history
        if horizon < MIN_HORIZON_DAYS:
            raise LabelError(
                f"only {span} days of history before as-of: need at least "
                f"{history + MIN_HORIZON_DAYS} to label churn"
            )
        note = (
            f"history of {span} days is too short for a {horizon_days}-day horizon; "
            f"using {horizon} days"
        )
    cutoffs = []
    cutoff = as_of_day - horizon
    while len(cutoffs) < max_cutoffs and cutoff - first_day >= history:
        cutoffs.append(cutoff)
        cutoff -= step_days
    return LabelPlan(horizon, horizon_days, tuple(cutoffs), note)


def churn_labels(data: StoreData, table: FeatureTable, horizon_days: int) -> np.ndarray:
    """1.0 where the customer makes no purchase in [as_of, as_of + horizon)."""
    start, end = table.as_of_day, table.as_of_day + horizon_days
    buys = (data.customer >= 0) & (data.amount > 0) & (data.ts >= start * DAY) & (data.ts < end * DAY)
    bought = np.zeros(data.n_customers, dtype=bool)
    bought[data.customer[buys]] = True
    return (~bought[table.customers]).astype(np.float32)


@dataclass
class LabelledSet:
    """Stacked (features, label) rows from one or more cutoffs of one store."""

    values: np.ndarray  # float32 [n, F]
    labels: np.ndarray  # float32 [n]
    cutoff: np.ndarray  # int day of each row
    store: np.ndarray  # object: store id of each row
    facts: dict[str, np.ndarray] = field(default_factory=dict)  # per row, see FeatureTable.facts
    plan: LabelPlan | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask: np.ndarray) -> LabelledSet:
        return LabelledSet(
            self.values[mask], self.labels[mask], self.cutoff[mask], self.store[mask],
            {k: v[mask] for k, v in self.facts.items()}, self.plan,
        )

    @staticmethod
    def concat(parts: list[LabelledSet]) -> LabelledSet:
        parts = [p for p in parts if len(p)]
        if not parts:
            raise LabelError("no labelled customers")
        return LabelledSet(
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.cutoff for p in parts]),
            np.concatenate([p.store for p in parts]),
            {k: np.concatenate([p.facts[k] for p in parts]) for k in parts[0].facts},
            parts[0].plan,
        )


def labelled_at(data: StoreData, cutoff_day: int, horizon_days: int, lookback_days: int) -> LabelledSet:
    """One cutoff: features from before it, labels from the horizon after it."""
    visible = data.until(cutoff_day * DAY)
    table = build_features(visible, cutoff_day, lookback_days)
    labels = churn_labels(data, table, horizon_days)
    return LabelledSet(
        table.values, labels, np.full(len(labels), cutoff_day), np.full(len(labels), data.store_id, dtype=object),
        table.facts,
    )


def training_set(
    data: StoreData,
    as_of_day: int,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    max_cutoffs: int = 6,
    step_days: int = 30,
) -> LabelledSet:
    """Stacked cutoffs for training at `as_of_day`, using only data before it."""
    seen = data.until(as_of_day * DAY)
    if not len(seen.ts):
        raise LabelError(f"store {data.store_id} has no transactions before as-of")
    plan = plan_cutoffs(seen.first_day, as_of_day, horizon_days, max_cutoffs, step_days)
    parts = [labelled_at(seen, cutoff, plan.horizon_days, lookback_days) for cutoff in plan.cutoffs]
    stacked = LabelledSet.concat(parts)
    stacked.plan = plan
    return stacked
