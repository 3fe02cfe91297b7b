"""A store's loyalty customers: their habits, and when and why some of them leave.

Churn is drawn from a daily hazard with three drivers: a base rate per segment
(higher for new members), a competitor opening nearby (stronger for
price-sensitive shoppers) and crowding (peak-hour shoppers leave when the
store's queues grow). Before leaving, most churners fade: visits thin out and
baskets shrink over weeks, noisily. Some stop abruptly (they moved away), and
some loyal customers have quiet spells that look like churn but end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .calendar import Calendar
from .stores import SEGMENTS, StoreProfile

CAUSES = ("base", "competitor", "crowding")


@dataclass
class Population:
    """Per-customer parameters as parallel arrays (one entry per customer)."""

    customer_ids: list[str]
    segment: np.ndarray  # index into SEGMENTS
    mean_gap: np.ndarray  # days
    regularity: np.ndarray  # gamma shape of gaps
    basket: np.ndarray  # mean basket value
    basket_spread: np.ndarray
    habit_hour: np.ndarray  # preferred hour on weekdays (float)
    online_share: np.ndarray  # share of purchases made online
    peak_exposure: np.ndarray  # 0..1, how much of the crowd this customer meets
    join_day: np.ndarray  # day index of the first possible purchase (may be < 0)
    churn_day: np.ndarray  # day index after which they never buy; -1 = stays
    churn_cause: list[str]  # "" for customers who stay
    fade_days: np.ndarray  # length of the fade before churn (0 = abrupt)
    fade_floor: np.ndarray  # visit-rate multiplier reached at the end of the fade
    basket_floor: np.ndarray  # basket multiplier reached at the end of the fade
    spells: list[list[tuple[int, int, float]]]  # quiet spells: (start, end, multiplier)

    def __len__(self) -> int:
        return len(self.customer_ids)


def _draw_churn(
    store: StoreProfile,
    calendar: Calendar,
    base_annual: np.ndarray,
    join_day: np.ndarray,
    price_sensitivity: np.ndarray,
    crowd_sensitivity: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[str]]:
    """First day each customer's cumulative hazard passes an Exp(1) draw, and its cause."""
    n, total = len(base_annual), calendar.total_days
    days = np.arange(total)[None, :]
    tenure = days - join_day[:, None]
    base = -np.log1p(-base_annual)[:, None] / 365.0 * np.where(tenure < 90, 1.8, 1.0)
    competitor = np.zeros((n, total))
    if store.competitor_day is not None:
        after = days >= store.competitor_day
        competitor = base * after * 6.0 * price_sensitivity[:, None]
    crowding = base * 8.0 * crowd_sensitivity[:, None] * (store.growth(calendar) - 1.0)[None, :]
    hazard = (base + competitor + crowding) * (tenure >= 30)  # nobody leaves in the first month
    cumulative = np.cumsum(hazard, axis=1)
    threshold = rng.exponential(1.0, size=n)
    crossed = cumulative >= threshold[:, None]
    churn_day = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    causes = []
    for c in range(n):
        d = churn_day[c]
        if d < 0:
            causes.append("")
            continue
        weights = np.array([base[c, 0], competitor[c, d], crowding[c, d]])
        causes.append(CAUSES[int(rng.choice(3, p=weights / weights.sum()))])
    return churn_day, causes


def _quiet_spells(n: int, calendar: Calendar, rng: np.random.Generator) -> list[list[tuple[int, int, float]]]:
    """Holidays, illness, a month at the in-laws': dips that end."""
    spells: list[list[tuple[int, int, float]]] = []
    counts = rng.poisson(0.5 * calendar.total_days / 365.0, size=n)
    for count in counts:
        own = []
        for _ in range(count):
            start = int(rng.integers(0, calendar.total_days))
            length = int(rng.integers(14, 50))
            own.append((start, start + length, float(rng.uniform(0.0, 0.3))))
        spells.append(own)
    return spells


def make_population(store: StoreProfile, calendar: Calendar, seed: int) -> Population:
    """The loyalty customers of one store; depends only on (seed, store index)."""
    rng = np.random.default_rng([seed, store.index, 1])
    n = store.n_customers
    segment = rng.choice(len(SEGMENTS), size=n, p=np.array(store.archetype.segment_mix))
    seg = [SEGMENTS[s] for s in segment]
    mean_gap = np.array([s.mean_gap_days for s in seg]) * np.exp(
        rng.normal(0, [s.gap_spread for s in seg])
    )
    regularity = np.array([s.regularity for s in seg]) * rng.lognormal(0, 0.25, size=n)
    basket = np.array([s.basket for s in seg]) * rng.lognormal(0, 0.4, size=n)
    basket_spread = np.array([s.basket_spread for s in seg])
    weekday_hours = store.weekday_hours
    habit_hour = rng.choice(24, size=n, p=weekday_hours) + rng.uniform(0, 1, size=n)
    peak_exposure = weekday_hours[habit_hour.astype(int)] / weekday_hours.max()
    online = rng.random(n) < store.archetype.online_customers
    online_share = np.where(online, rng.uniform(0.1, 0.6, size=n), 0.0)
    # 75% were members before the export starts (tenure up to 8 years), the rest join during it.
    existing = rng.random(n) < 0.75
    growth_skew = 1.0 + store.traffic_growth  # growing stores sign up more members later
    join_during = (rng.power(growth_skew, size=n) * (calendar.total_days - 30)).astype(int)
    join_day = np.where(existing, -rng.integers(0, 8 * 365, size=n), join_during)

    base_annual = np.array([s.annual_churn for s in seg]) * rng.lognormal(0, 0.3, size=n)
    base_annual = np.clip(base_annual, 0.02, 0.9)
    price_sensitivity = rng.beta(2, 3, size=n)
    crowd_sensitivity = peak_exposure * rng.beta(2, 2, size=n)
    churn_day, causes = _draw_churn(
        store, calendar, base_annual, join_day, price_sensitivity, crowd_sensitivity, rng
    )
    abrupt = rng.random(n) < 0.25
    fade_days = np.where(abrupt, 0, rng.integers(21, 85, size=n))
    first_id = 100_000 + store.index * 1_000_000
    return Population(
        customer_ids=[f"C{first_id + i:08d}" for i in range(n)],
        segment=segment,
        mean_gap=mean_gap,
        regularity=regularity,
        basket=basket,
        basket_spread=basket_spread,
        habit_hour=habit_hour,
        online_share=online_share,
        peak_exposure=peak_exposure,
        join_day=join_day,
        churn_day=churn_day,
        churn_cause=causes,
        fade_days=fade_days,
        fade_floor=rng.uniform(0.1, 0.45, size=n),
        basket_floor=rng.uniform(0.5, 0.9, size=n),
        spells=_quiet_spells(n, calendar, rng),
    )
