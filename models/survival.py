"""Training rows for a horizon-free churn model: what each customer did after each cutoff, censored at as-of.

At a cutoff C (a day), each customer active in the lookback window before C
gives one row: the features from before C, and what they did in the window
from C to as-of: how many visit days, when the last one was, and the day of
the next visit after C. The window simply ends at as-of (censoring): the
likelihood of models/network.py uses exactly what was seen. Cutoffs run every
`step_days` through the whole history, so the early part of a store's history
is not thrown away and no label window is needed: a horizon longer than the
history itself is still defined by the model.

Everything is read from `data.until(as_of)`: a model trained at as-of sees
nothing after it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from .features import Visits, build_features, visits_before
from .store_data import DAY, StoreData

DEFAULT_STEP_DAYS = 7
DEFAULT_LOOKBACK_DAYS = 365
MIN_HISTORY_DAYS = 28  # a cutoff needs this much history before it for the features to mean something


class SurvivalDataError(Exception):
    """Not enough history before as-of to learn anything."""


@dataclass
class SurvivalSet:
    """Stacked rows from one or more cutoffs of one or more stores."""

    values: np.ndarray  # float32 [n, F]
    event_days: np.ndarray  # int32: days from the cutoff to the next visit (1 = on the cutoff day), 0 = none seen
    window_days: np.ndarray  # int32: days observed after the cutoff (as-of − cutoff)
    window_visits: np.ndarray  # int32: visit days in the window
    last_visit: np.ndarray  # float32: days from the cutoff to the middle of the last visit day in the window, 0 = none
    cutoff: np.ndarray  # int32 day of each row
    customer: np.ndarray  # int64 index into the store's customers (for splits that keep a customer together)
    store: np.ndarray  # object: store id of each row
    as_of_day: int = 0
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.event_days)

    def subset(self, mask: np.ndarray) -> SurvivalSet:
        return SurvivalSet(*(getattr(self, name)[mask] for name in _ARRAYS), as_of_day=self.as_of_day,
                           notes=list(self.notes))

    @staticmethod
    def concat(parts: list[SurvivalSet]) -> SurvivalSet:
        parts = [p for p in parts if len(p)]
        if not parts:
            raise SurvivalDataError("no customer with enough history to learn from")
        return SurvivalSet(
            *(np.concatenate([getattr(p, name) for p in parts]) for name in _ARRAYS),
            as_of_day=max(p.as_of_day for p in parts),
            notes=sorted({note for p in parts for note in p.notes}),
        )

    def churned_within(self, horizon_days: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows whose window covers the horizon, 1.0 where they made no visit in it)."""
        observed = self.window_days >= horizon_days
        churned = (self.event_days == 0) | (self.event_days > horizon_days)
        return observed, churned[observed].astype(np.float32)


_ARRAYS = ("values", "event_days", "window_days", "window_visits", "last_visit", "cutoff", "customer", "store")


def window_after(visits: Visits, customers: np.ndarray, cutoff_day: int,
                 end_day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per customer, over the days [cutoff, end): (days to the first visit, 1-based, 0 = none;
    visit days; days from the cutoff to the middle of the last visit day, 0 = none)."""
    key = visits.customer.astype(np.int64) * (1 << 24) + visits.day
    base = customers.astype(np.int64) * (1 << 24)
    first = np.searchsorted(key, base + cutoff_day)
    stop = np.searchsorted(key, base + end_day)
    count = (stop - first).astype(np.int32)
    seen = count > 0
    next_day = np.where(seen, visits.day[np.minimum(first, max(len(key) - 1, 0))] - cutoff_day + 1, 0) if len(key) else count
    last = np.where(seen, visits.day[np.maximum(stop - 1, 0)] - cutoff_day + 0.5, 0.0) if len(key) else count * 0.0
    return next_day.astype(np.int32), count, last.astype(np.float32)


def cutoff_days(first_day: int, as_of_day: int, step_days: int = DEFAULT_STEP_DAYS,
                min_history_days: int = MIN_HISTORY_DAYS) -> list[int]:
    """Cutoffs every `step_days` back from as-of, each with some history before it (newest first)."""
    if step_days < 1:
        raise SurvivalDataError("the cutoff step must be at least one day")
    cutoffs = []
    cutoff = as_of_day - step_days
    while cutoff - first_day >= min_history_days:
        cutoffs.append(cutoff)
        cutoff -= step_days
    return cutoffs


def survival_set(
    data: StoreData,
    as_of_day: int,
    *,
    step_days: int = DEFAULT_STEP_DAYS,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    max_rows: int | None = None,
    seed: int = 0,
) -> SurvivalSet:
    """The store's rows for training at `as_of_day`, from data before it only.

    With `max_rows`, a uniform sample of the rows is kept (the same for the
    same seed), so training time stays bounded on long histories.
    """
    seen = data.until(as_of_day * DAY)
    if not len(seen.ts):
        raise SurvivalDataError(f"store {data.store_id} has no transactions before as-of")
    cutoffs = cutoff_days(seen.first_day, as_of_day, step_days)
    if not cutoffs:
        raise SurvivalDataError(
            f"store {data.store_id}: only {as_of_day - seen.first_day} days of history before as-of; "
            f"need at least {MIN_HISTORY_DAYS + step_days}"
        )
    visits = visits_before(seen, as_of_day)
    parts = []
    for cutoff in cutoffs:
        table = build_features(seen.until(cutoff * DAY), cutoff, lookback_days)
        n = len(table)
        next_day, count, last = window_after(visits, table.customers, cutoff, as_of_day)
        parts.append(SurvivalSet(
            table.values, next_day, np.full(n, as_of_day - cutoff, np.int32), count, last,
            np.full(n, cutoff, np.int32), table.customers.astype(np.int64), np.full(n, data.store_id, dtype=object),
            as_of_day,
        ))
    rows = SurvivalSet.concat(parts)
    if max_rows is not None and len(rows) > max_rows:
        total = len(rows)
        rows = rows.subset(np.sort(np.random.default_rng(seed).choice(total, max_rows, replace=False)))
        rows.notes.append(f"{data.store_id}: {max_rows} rows sampled of {total} ({len(cutoffs)} cutoffs)")
    return rows


def customer_split(rows: SurvivalSet, share: float, seed: int = 0) -> np.ndarray:
    """True for the rows of about `share` of the customers (the same customers for the same seed)."""
    stores, store_index = np.unique(rows.store.astype(str), return_inverse=True)
    salts = np.array([zlib.crc32(f"{seed}\x1f{s}".encode()) for s in stores], dtype=np.uint64)
    key = salts[store_index] * np.uint64(0x9E3779B97F4A7C15) + rows.customer.astype(np.uint64)
    key ^= key >> np.uint64(31)  # splitmix64's finaliser: neighbouring customers land far apart
    key *= np.uint64(0xBF58476D1CE4E5B9)
    key ^= key >> np.uint64(29)
    return (key % np.uint64(10_000)) < np.uint64(share * 10_000)


def holdout_split(rows: SurvivalSet, share: float = 0.1, seed: int = 0) -> tuple[SurvivalSet, SurvivalSet]:
    """(training rows, rows of the held-out customers)."""
    valid = customer_split(rows, share, seed)
    if valid.all() or not valid.any():
        raise SurvivalDataError("too few customers to hold some out")
    return rows.subset(~valid), rows.subset(valid)
