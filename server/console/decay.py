"""Model decay: the live precision of past alerts as their outcomes arrive, and when to retrain.

Precision here is the share of alerted customers (orange or above) who did
churn. It is measured on the control group only: those customers got no
action, so their churn is the model's prediction coming true or not. Among
treated customers the action itself lowers churn (that is its purpose), so
their churn rate would blame the model for the action's success.

Periods are months of the alerts' `as_of`. The current precision pools the
most recent periods, going back until they hold `min_outcomes` known
outcomes; when it falls below the threshold the console raises the retrain
signal. The expected precision beside it is the mean score / 100 of the same
alerts (scores are calibrated probabilities): a model that still fits its
customers keeps the two close.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .uplift import Z95, wilson


@dataclass(frozen=True)
class PeriodCounts:
    period: str  # YYYY-MM
    outcomes: int  # control alerts with a known result
    churned: int
    score_sum: float  # sum of their risk scores (0-100)


@dataclass(frozen=True)
class Precision:
    period: str  # one month, or "FIRST..LAST" when pooled
    outcomes: int
    churned: int
    precision: float | None
    low: float | None
    high: float | None
    expected: float | None  # mean score / 100


def precision_of(period: str, outcomes: int, churned: int, score_sum: float, z: float = Z95) -> Precision:
    interval = wilson(churned, outcomes, z)
    if interval is None:
        return Precision(period, 0, 0, None, None, None, None)
    return Precision(period, outcomes, churned, churned / outcomes, *interval, score_sum / outcomes / 100)


def live_precision(periods: Sequence[PeriodCounts], z: float = Z95) -> list[Precision]:
    ordered = sorted(periods, key=lambda p: p.period)
    return [precision_of(p.period, p.outcomes, p.churned, p.score_sum, z) for p in ordered]


@dataclass(frozen=True)
class RetrainSignal:
    retrain: bool
    reason: str
    threshold: float
    min_outcomes: int
    current: Precision | None  # the recent periods pooled to min_outcomes


def retrain_signal(periods: Sequence[PeriodCounts], threshold: float, min_outcomes: int,
                   z: float = Z95) -> RetrainSignal:
    """Pool the most recent periods until they hold `min_outcomes`; retrain when their precision < threshold."""
    pooled: list[PeriodCounts] = []
    for period in sorted(periods, key=lambda p: p.period, reverse=True):
        pooled.append(period)
        if sum(p.outcomes for p in pooled) >= min_outcomes:
            break
    outcomes = sum(p.outcomes for p in pooled)
    if outcomes < max(1, min_outcomes):
        return RetrainSignal(False, f"{outcomes} control outcome(s) known, {min_outcomes} needed to judge",
                             threshold, min_outcomes, None)
    label = pooled[0].period if len(pooled) == 1 else f"{pooled[-1].period}..{pooled[0].period}"
    current = precision_of(label, outcomes, sum(p.churned for p in pooled), sum(p.score_sum for p in pooled), z)
    assert current.precision is not None
    if current.precision < threshold:
        return RetrainSignal(True, f"live precision {current.precision:.0%} ({label}, {outcomes} outcomes) is "
                                   f"below {threshold:.0%}: retrain the model", threshold, min_outcomes, current)
    return RetrainSignal(False, f"live precision {current.precision:.0%} ({label}, {outcomes} outcomes) is at or "
                                f"above {threshold:.0%}", threshold, min_outcomes, current)
