"""Walk-in sales and the door counter: hourly entries and exits consistent with the tills.

Entries = buyers (some with company) + browsers who leave without buying; the
share of browsers grows when the store is crowded, so conversion falls at peak
hours, as it does in real stores. Exits follow entries after a dwell time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .calendar import Calendar
from .stores import StoreProfile

# Share of the people entering in an hour who leave in that hour, the next, the one after.
DWELL_SPLIT = (0.55, 0.38, 0.07)


@dataclass
class WalkIns:
    """Anonymous sales (no loyalty card)."""

    day: np.ndarray
    seconds: np.ndarray
    amount: np.ndarray
    items: np.ndarray


def make_walk_ins(
    store: StoreProfile, calendar: Calendar, loyalty_visits_per_day: np.ndarray, seed: int
) -> WalkIns:
    """Walk-in sales in proportion to the loyalty trade, growing with the store's traffic."""
    rng = np.random.default_rng([seed, store.index, 3])
    expected = store.archetype.anonymous_share * loyalty_visits_per_day * store.growth(calendar)
    counts = rng.poisson(expected)
    day = np.repeat(np.arange(calendar.total_days), counts)
    weekend = calendar.weekday[day] >= 5
    hours = np.where(
        weekend,
        rng.choice(24, size=len(day), p=store.weekend_hours),
        rng.choice(24, size=len(day), p=store.weekday_hours),
    )
    seconds = (hours * 3600 + rng.integers(0, 3600, size=len(day))).astype(np.int64)
    amount = np.maximum(0.5, np.round(rng.lognormal(np.log(12.0), 0.7, size=len(day)), 2))
    items = 1 + rng.poisson(amount / 4.5)
    return WalkIns(day, seconds, amount, items)


def hourly_sales(day: np.ndarray, seconds: np.ndarray, total_days: int) -> np.ndarray:
    """Count of in-store sales per (day, hour)."""
    grid = np.zeros((total_days, 24), dtype=np.int64)
    np.add.at(grid, (day, np.minimum(23, seconds // 3600)), 1)
    return grid


def _exits_from_entries(entries: np.ndarray, closes: int) -> np.ndarray:
    """Spread each hour's entries over the next hours; everyone is out at closing."""
    exits = np.zeros_like(entries, dtype=float)
    for lag, share in enumerate(DWELL_SPLIT):
        exits[:, lag:] += share * entries[:, : 24 - lag]
    exits = np.floor(exits).astype(np.int64)
    last = min(23, closes - 1)
    exits[:, last + 1 :] = 0
    exits[:, last] += entries.sum(axis=1) - exits.sum(axis=1)  # nobody is locked in
    return exits


def make_footfall(store: StoreProfile, calendar: Calendar, sales: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(entries, exits) per (day, hour) for a store with `sales` in-store sales per (day, hour)."""
    rng = np.random.default_rng([seed, store.index, 4])
    crowd = sales / store.capacity
    conversion = store.archetype.conversion / (1.0 + 0.6 * np.maximum(0.0, crowd - 0.5))
    conversion = np.clip(conversion * rng.lognormal(0, 0.1, size=sales.shape), 0.1, 0.95)
    companions = rng.poisson(sales * 0.25)
    browsers = rng.poisson(sales * (1.0 / conversion - 1.0))
    opens, closes = store.archetype.opens, store.archetype.closes
    open_hours = np.zeros(24, dtype=bool)
    open_hours[opens:closes] = True
    open_day = store.open_days(calendar)[:, None] & open_hours[None, :]
    passers = rng.poisson(0.8, size=sales.shape) * open_day  # staff, deliveries, a look around
    entries = (sales + companions + browsers + passers) * open_day
    return entries, _exits_from_entries(entries, closes)
