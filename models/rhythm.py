"""Where a customer stands against their own rhythm: drifting away (an early warning) or lapsed (win-back).

Drifting: the model's expected visits over the coming weeks fall well below
what the customer's own usual gap implies (visits thinning, a longer silence
than usual): they still buy, and there is time to act.

Lapsed: a weekly shopper silent for a month and a quarterly shopper silent for
a month are in different places: the first has missed four visits, the second
none. A customer is lapsed when the silence since their last visit is longer than
several of their usual gaps (the median of their own gaps), longer than any
gap they have come back from before, and longer than a floor that keeps a
daily shopper's fortnight away from counting as lapsed. Customers with a single
visit have no rhythm of their own yet: the store's typical gap stands in.

Pure numpy, shared by scoring on the store box and the backtests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LapseRule:
    """`gaps` usual gaps of silence, at least `min_days`, and longer than the longest gap come back from."""

    gaps: float = 3.0
    min_days: int = 28
    max_days: int | None = None  # silent this long is lapsed whatever the rhythm (None: no such limit)

    def __post_init__(self) -> None:
        if self.gaps <= 1:
            raise ValueError("risk.lapsed_after_gaps must be more than 1 (one usual gap is not a lapse)")
        if self.min_days < 1:
            raise ValueError("risk.lapsed_min_days must be at least 1")
        if self.max_days is not None and self.max_days < self.min_days:
            raise ValueError("risk.lapsed_after_days must be at least risk.lapsed_min_days")


def store_typical_gap(usual_gap_days: np.ndarray) -> float:
    """The median of the customers' usual gaps (NaN when nobody has two visits)."""
    known = np.asarray(usual_gap_days, dtype=np.float64)
    known = known[np.isfinite(known)]
    return float(np.median(known)) if len(known) else float("nan")


def lapse_limit_days(usual_gap_days: np.ndarray, longest_gap_days: np.ndarray, rule: LapseRule,
                     store_gap: float | None = None) -> np.ndarray:
    """Days of silence after which each customer counts as lapsed."""
    usual = np.asarray(usual_gap_days, dtype=np.float64)
    longest = np.asarray(longest_gap_days, dtype=np.float64)
    fallback = store_typical_gap(usual) if store_gap is None else store_gap
    gap = np.where(np.isfinite(usual), usual, fallback if np.isfinite(fallback) else rule.min_days)
    limit = np.maximum(rule.gaps * gap, rule.min_days)
    limit = np.maximum(limit, np.where(np.isfinite(longest), longest, 0.0))
    if rule.max_days is not None:
        limit = np.minimum(limit, rule.max_days)
    return limit


def lapsed(recency_days: np.ndarray, usual_gap_days: np.ndarray, longest_gap_days: np.ndarray, rule: LapseRule,
           store_gap: float | None = None) -> np.ndarray:
    """True where the customer's silence is past their lapse limit."""
    limit = lapse_limit_days(usual_gap_days, longest_gap_days, rule, store_gap)
    return np.asarray(recency_days, dtype=np.float64) > limit


def activity_ratio(expected_visits: np.ndarray, usual_gap_days: np.ndarray, window_days: float,
                   store_gap: float | None = None) -> np.ndarray:
    """The model's expected visits over the window / the visits the customer's usual gap implies."""
    usual = np.asarray(usual_gap_days, dtype=np.float64)
    fallback = store_typical_gap(usual) if store_gap is None else store_gap
    gap = np.where(np.isfinite(usual), usual, fallback if np.isfinite(fallback) else window_days)
    usual_visits = window_days / np.maximum(gap, 1.0)
    return np.asarray(expected_visits, dtype=np.float64) / usual_visits
