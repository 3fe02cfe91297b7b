"""From customer habits to dated purchases: a renewal process in "shopping time".

Each customer's expected visits per day (their own rhythm × season × weekday ×
promotions × store growth × their fade or quiet spell) is integrated into
operational time; gamma-distributed gaps in that time give rhythmic weekly
shoppers (shape > 1) as well as bursty ones (shape < 1), and closed days are
skipped because no operational time passes on them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .calendar import Calendar
from .customers import Population
from .stores import StoreProfile


@dataclass
class Purchases:
    """Loyalty purchases of one store as parallel arrays, one entry per purchase."""

    customer: np.ndarray  # index into the population
    day: np.ndarray  # day index
    seconds: np.ndarray  # seconds after local midnight
    amount: np.ndarray
    items: np.ndarray  # -1 = unknown (refunds)
    online: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.day)


def daily_multipliers(
    store: StoreProfile, population: Population, calendar: Calendar
) -> tuple[np.ndarray, np.ndarray]:
    """(visit-rate, basket) multipliers per customer and day, before the customer's own rate."""
    n, total = len(population), calendar.total_days
    days = np.arange(total)
    weekly = np.array(store.archetype.weekly_shape)[calendar.weekday]
    shared = calendar.season * weekly * np.where(store.promo, 1.2, 1.0)
    shared = shared * store.open_days(calendar)
    if store.competitor_day is not None:  # some spend drifts away from everyone
        shared = shared * np.where(days >= store.competitor_day, 0.93, 1.0)
    rate = np.tile(shared, (n, 1))
    basket = np.tile(np.where(store.promo, 1.1, 1.0) * np.where(calendar.season > 1.2, 1.25, 1.0), (n, 1))
    rate[days[None, :] < population.join_day[:, None]] = 0.0
    for c in range(n):
        for start, end, level in population.spells[c]:
            rate[c, start:end] *= level
        churn = population.churn_day[c]
        if churn < 0:
            continue
        rate[c, churn + 1 :] = 0.0
        fade = int(population.fade_days[c])
        if fade:
            begin = max(0, churn - fade)
            progress = (days[begin : churn + 1] - (churn - fade)) / fade
            rate[c, begin : churn + 1] *= 1 - (1 - population.fade_floor[c]) * progress
            basket[c, begin : churn + 1] *= 1 - (1 - population.basket_floor[c]) * progress
    return rate, basket


def purchase_days(
    rate: np.ndarray, mean_gap: np.ndarray, regularity: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(customer index, day index) of every visit, from gamma renewals in operational time."""
    operational = np.cumsum(rate / mean_gap[:, None], axis=1)
    customers, days = [], []
    for c in range(rate.shape[0]):
        horizon = operational[c, -1]
        if horizon <= 0:
            continue
        k = regularity[c]
        count = int(horizon * 1.5 + 4 * np.sqrt(horizon) + 5)
        gaps = rng.gamma(k, 1.0 / k, size=count)
        times = np.cumsum(gaps) - gaps[0] * rng.random()  # a random phase at the start
        times = times[(times > 0) & (times < horizon)]
        visit_days = np.searchsorted(operational[c], times, side="left")
        customers.append(np.full(len(visit_days), c))
        days.append(visit_days)
    if not days:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    return np.concatenate(customers), np.concatenate(days)


def _visit_seconds(
    store: StoreProfile,
    calendar: Calendar,
    habit_hour: np.ndarray,
    day: np.ndarray,
    online: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    opens, closes = store.archetype.opens, store.archetype.closes
    hour = habit_hour + rng.normal(0, 1.2, size=len(day))
    weekend = calendar.weekday[day] >= 5
    switch = weekend & (rng.random(len(day)) < 0.6)
    hour = np.where(switch, rng.choice(24, size=len(day), p=store.weekend_hours) + rng.random(len(day)), hour)
    hour = np.clip(hour, opens, closes - 1e-3)
    hour = np.where(online, rng.uniform(6, 24 - 1e-3, size=len(day)), hour)
    return (hour * 3600).astype(np.int64)


def make_purchases(store: StoreProfile, population: Population, calendar: Calendar, seed: int) -> Purchases:
    """Every loyalty purchase (and refund) of one store over the whole calendar."""
    rng = np.random.default_rng([seed, store.index, 2])
    rate, basket_multiplier = daily_multipliers(store, population, calendar)
    customer, day = purchase_days(rate, population.mean_gap, population.regularity, rng)
    online = rng.random(len(day)) < population.online_share[customer]
    seconds = _visit_seconds(store, calendar, population.habit_hour[customer], day, online, rng)
    spread = population.basket_spread[customer]
    amount = population.basket[customer] * basket_multiplier[customer, day] * rng.lognormal(
        -0.5 * spread**2, spread
    )
    amount = np.maximum(0.5, np.round(amount, 2))
    items = 1 + rng.poisson(amount / 4.5)
    purchases = Purchases(customer, day, seconds, amount, items, online)
    return _with_refunds(purchases, population, calendar, store, rng)


def _with_refunds(
    purchases: Purchases,
    population: Population,
    calendar: Calendar,
    store: StoreProfile,
    rng: np.random.Generator,
) -> Purchases:
    """About 1.5% of purchases come back, in part, one to fourteen days later."""
    chosen = np.flatnonzero(rng.random(len(purchases)) < 0.015)
    day = purchases.day[chosen] + rng.integers(1, 15, size=len(chosen))
    churn = population.churn_day[purchases.customer[chosen]]
    keep = (day < calendar.total_days) & ((churn < 0) | (day <= churn))
    keep &= store.open_days(calendar)[np.minimum(day, calendar.total_days - 1)]
    chosen, day = chosen[keep], day[keep]
    opens, closes = store.archetype.opens, store.archetype.closes
    refund = Purchases(
        customer=purchases.customer[chosen],
        day=day,
        seconds=rng.integers(opens * 3600, closes * 3600, size=len(chosen)),
        amount=-np.round(purchases.amount[chosen] * rng.uniform(0.2, 1.0, size=len(chosen)), 2),
        items=np.full(len(chosen), -1),
        online=purchases.online[chosen],
    )
    return Purchases(
        *(np.concatenate([getattr(purchases, f), getattr(refund, f)]) for f in
          ("customer", "day", "seconds", "amount", "items", "online"))
    )
