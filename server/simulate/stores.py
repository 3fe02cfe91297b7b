"""Store archetypes, shopper segments and the per-store world (competitors, growth, promotions).

Stores differ on purpose: a federation over identical stores would prove
nothing. A neighbourhood grocery lives on weekly shoppers, a hypermarket on
occasional big baskets, a convenience store on frequent top-ups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .calendar import Calendar


@dataclass(frozen=True)
class Segment:
    """A kind of shopper: how often, how regularly, how much, how loyal."""

    name: str
    mean_gap_days: float  # typical days between visits
    gap_spread: float  # log-sd of the per-customer mean gap
    regularity: float  # gamma shape of gaps: >1 rhythmic, <1 bursty
    basket: float  # typical basket value
    basket_spread: float  # log-sd of a single basket around the customer's own mean
    annual_churn: float  # base probability of leaving within a year


SEGMENTS: tuple[Segment, ...] = (
    Segment("weekly", 7.0, 0.25, 4.0, 48.0, 0.35, 0.22),
    Segment("frequent", 2.8, 0.35, 2.0, 14.0, 0.45, 0.30),
    Segment("big_basket", 24.0, 0.35, 1.8, 135.0, 0.35, 0.28),
    Segment("irregular", 15.0, 0.50, 0.8, 32.0, 0.55, 0.40),
)
SEGMENT_INDEX = {s.name: i for i, s in enumerate(SEGMENTS)}


@dataclass(frozen=True)
class Archetype:
    """A kind of store: its clientele, opening hours and the shape of its day."""

    name: str
    segment_mix: tuple[float, ...]  # share of each segment, in SEGMENTS order
    opens: int
    closes: int
    # (hour, weight, width) peaks of a weekday and of a Saturday
    weekday_peaks: tuple[tuple[float, float, float], ...]
    weekend_peaks: tuple[tuple[float, float, float], ...]
    weekly_shape: tuple[float, ...]  # Monday..Sunday relative traffic
    conversion: float  # share of entries that buy, away from the crowd
    anonymous_share: float  # walk-in sales per loyalty sale
    online_customers: float  # share of customers who also order online


ARCHETYPES: tuple[Archetype, ...] = (
    Archetype(
        "neighbourhood", (0.60, 0.22, 0.05, 0.13), 8, 21,
        ((8.5, 0.6, 0.8), (12.5, 1.0, 1.0), (17.8, 1.6, 1.2)),
        ((11.0, 1.0, 2.0), (16.5, 0.7, 1.5)),
        (0.90, 0.85, 0.90, 0.95, 1.15, 1.45, 0.70), 0.55, 0.6, 0.05,
    ),
    Archetype(
        "hypermarket", (0.28, 0.05, 0.50, 0.17), 9, 22,
        ((11.0, 0.6, 1.5), (18.5, 1.4, 1.5)),
        ((11.5, 1.2, 2.0), (15.5, 1.0, 2.0)),
        (0.75, 0.75, 0.85, 0.90, 1.15, 1.80, 0.80), 0.40, 0.35, 0.25,
    ),
    Archetype(
        "convenience", (0.18, 0.62, 0.00, 0.20), 7, 23,
        ((8.0, 1.2, 0.7), (12.7, 1.5, 0.8), (18.5, 1.3, 1.3)),
        ((12.0, 1.0, 3.0),),
        (1.00, 1.00, 1.00, 1.00, 1.10, 1.00, 0.90), 0.70, 1.2, 0.02,
    ),
    Archetype(
        "suburban", (0.40, 0.15, 0.25, 0.20), 8, 21,
        ((10.0, 0.8, 1.5), (17.5, 1.4, 1.3)),
        ((10.5, 1.2, 1.5), (15.0, 0.9, 2.0)),
        (0.85, 0.85, 0.90, 0.95, 1.10, 1.60, 0.85), 0.50, 0.5, 0.12,
    ),
)


def hourly_profile(peaks: tuple[tuple[float, float, float], ...], opens: int, closes: int) -> np.ndarray:
    """Relative traffic for each of the 24 hours (zero while closed), summing to 1."""
    hours = np.arange(24) + 0.5
    shape = np.full(24, 0.15)
    for centre, weight, width in peaks:
        shape += weight * np.exp(-0.5 * ((hours - centre) / width) ** 2)
    shape[:opens] = 0.0
    shape[closes:] = 0.0
    return shape / shape.sum()


@dataclass(frozen=True)
class StoreProfile:
    """One simulated store and the events of its year."""

    store_id: str
    index: int
    archetype: Archetype
    n_customers: int
    sunday_closed: bool
    competitor_day: int | None  # day index a competitor opens nearby, if any
    traffic_growth: float  # relative growth of traffic over the simulated span
    capacity: float  # customers per hour the tills handle before queues form
    promo: np.ndarray  # bool per day: a promotion runs

    @property
    def weekday_hours(self) -> np.ndarray:
        a = self.archetype
        return hourly_profile(a.weekday_peaks, a.opens, a.closes)

    @property
    def weekend_hours(self) -> np.ndarray:
        a = self.archetype
        return hourly_profile(a.weekend_peaks, a.opens, a.closes)

    def open_days(self, calendar: Calendar) -> np.ndarray:
        closed = calendar.holiday.copy()
        if self.sunday_closed:
            closed |= calendar.weekday == 6
        return ~closed

    def growth(self, calendar: Calendar) -> np.ndarray:
        """Traffic level per day relative to the first day (1.0 = unchanged)."""
        return 1.0 + self.traffic_growth * np.linspace(0.0, 1.0, calendar.total_days)


def _promotion_days(calendar: Calendar, rng: np.random.Generator) -> np.ndarray:
    promo = np.zeros(calendar.total_days, dtype=bool)
    weeks = max(1, calendar.total_days // 60)
    for start in rng.integers(0, max(1, calendar.total_days - 7), size=weeks):
        promo[start : start + 7] = True
    return promo


def make_store(index: int, customers_per_store: int, calendar: Calendar, seed: int) -> StoreProfile:
    """Store `index` of the chain; its profile depends only on (seed, index)."""
    rng = np.random.default_rng([seed, index, 0])
    archetype = ARCHETYPES[(index + seed) % len(ARCHETYPES)]
    size = max(20, int(round(customers_per_store * rng.lognormal(0.0, 0.3))))
    total = calendar.total_days
    competitor = None
    if rng.random() < 0.4:  # a competitor opens nearby during the written period
        earliest = calendar.warmup + calendar.days // 6
        competitor = int(rng.integers(earliest, max(earliest + 1, total - 14)))
    growth = float(rng.choice([0.0, 0.0, rng.uniform(0.3, 0.7)]))
    peak = max(hourly_profile(archetype.weekday_peaks, archetype.opens, archetype.closes))
    # Tills sized for today's peak plus a margin: growth later brings queues.
    expected_peak_visitors = size / 10.0 * peak * (1 + archetype.anonymous_share)
    return StoreProfile(
        store_id=f"store-{index + 1:02d}",
        index=index,
        archetype=archetype,
        n_customers=size,
        sunday_closed=bool(rng.random() < 0.3),
        competitor_day=competitor,
        traffic_growth=growth,
        capacity=expected_peak_visitors * rng.uniform(1.1, 1.4),
        promo=_promotion_days(calendar, rng),
    )
