"""Measured uplift and return on the actions: pure functions over counts of known outcomes.

The store box holds a random share of alerts out of action when it creates
them (`control`: chosen by a hash of the alert id). Retention among alerts
whose outcome is known, with action (treated) against without (control), at
the same level, is an intention-to-treat estimate of what the action adds:

    retention r = stayed / (stayed + churned)          Wilson score interval
    uplift    u = r_treated - r_control                Newcombe's hybrid score interval (method 10)
    recovered   = u x sum(CLV of the treated alerts)   (the interval scales with u's)
    cost        = sum(actual cost if recorded, else the alert's action_cost_cap)
    net         = recovered - cost;  ROI = net / cost

Control alerts carry no action, so an action's control arm is the control
alerts at the levels where that action was given (pooled when it was given
at several levels).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # two-sided 95%


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion; None without observations."""
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_difference(s1: int, n1: int, s2: int, n2: int,
                        z: float = Z95) -> tuple[float, float, float] | None:
    """(p1 - p2, low, high): Newcombe's hybrid score interval from the two Wilson intervals."""
    first, second = wilson(s1, n1, z), wilson(s2, n2, z)
    if first is None or second is None:
        return None
    p1, p2 = s1 / n1, s2 / n2
    (l1, u1), (l2, u2) = first, second
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


@dataclass(frozen=True)
class Arm:
    """Alerts of one arm with a known outcome: counts, and the sums that value them."""

    stayed: int = 0
    churned: int = 0
    clv: float = 0.0  # sum of clv_estimate
    cost: float = 0.0  # sum of the actual cost, else action_cost_cap

    @property
    def n(self) -> int:
        return self.stayed + self.churned

    def __add__(self, other: Arm) -> Arm:
        return Arm(self.stayed + other.stayed, self.churned + other.churned, self.clv + other.clv,
                   self.cost + other.cost)


@dataclass(frozen=True)
class Rate:
    n: int
    stayed: int
    rate: float | None
    low: float | None
    high: float | None

    @classmethod
    def of(cls, arm: Arm, z: float = Z95) -> Rate:
        interval = wilson(arm.stayed, arm.n, z)
        if interval is None:
            return cls(0, 0, None, None, None)
        return cls(arm.n, arm.stayed, arm.stayed / arm.n, *interval)


@dataclass(frozen=True)
class Uplift:
    key: str  # a level or an action
    treated: Rate
    control: Rate
    uplift: float | None  # retention with action minus without; None until both arms have outcomes
    uplift_low: float | None
    uplift_high: float | None
    cost: float  # of the treated alerts with a known outcome
    clv: float
    recovered: float | None
    recovered_low: float | None
    recovered_high: float | None
    net: float | None
    roi: float | None  # net / cost

    @property
    def measured(self) -> bool:
        return self.uplift is not None


def measure(key: str, treated: Arm, control: Arm, z: float = Z95) -> Uplift:
    difference = newcombe_difference(treated.stayed, treated.n, control.stayed, control.n, z)
    if difference is None:
        return Uplift(key, Rate.of(treated, z), Rate.of(control, z), None, None, None, treated.cost, treated.clv,
                      None, None, None, None, None)
    d, low, high = difference
    recovered = d * treated.clv
    net = recovered - treated.cost
    return Uplift(key, Rate.of(treated, z), Rate.of(control, z), d, low, high, treated.cost, treated.clv,
                  recovered, low * treated.clv, high * treated.clv, net,
                  net / treated.cost if treated.cost > 0 else None)


@dataclass(frozen=True)
class OutcomeGroup:
    """One GROUP BY row: alerts of a level and action, in or out of the control group, with one result."""

    level: str
    action: str | None
    control: bool
    result: str  # stayed / churned
    count: int
    clv: float
    cost: float

    def arm(self) -> Arm:
        stayed = self.count if self.result == "stayed" else 0
        return Arm(stayed, self.count - stayed, self.clv, self.cost)


def _sum(groups: Iterable[OutcomeGroup]) -> Arm:
    total = Arm()
    for group in groups:
        total = total + group.arm()
    return total


def uplift_by_level(groups: Sequence[OutcomeGroup], levels: Sequence[str], z: float = Z95) -> list[Uplift]:
    """One row per level that has any known outcome, in the order of `levels`."""
    present = {g.level for g in groups}
    return [measure(level, _sum(g for g in groups if g.level == level and not g.control),
                    _sum(g for g in groups if g.level == level and g.control), z)
            for level in levels if level in present]


def uplift_by_action(groups: Sequence[OutcomeGroup], z: float = Z95) -> list[Uplift]:
    """One row per action; its control arm is the control alerts at the levels where it was given."""
    actions = sorted({g.action for g in groups if not g.control and g.action})
    rows = []
    for action in actions:
        treated = [g for g in groups if not g.control and g.action == action]
        levels = {g.level for g in treated}
        rows.append(measure(action, _sum(treated), _sum(g for g in groups if g.control and g.level in levels), z))
    return rows


@dataclass(frozen=True)
class Return:
    """Cost against recovered value, over the levels whose uplift could be measured."""

    levels: tuple[str, ...]
    unmeasured: tuple[str, ...]  # levels with outcomes but no control (or no treated) outcome yet
    cost: float
    recovered: float
    recovered_low: float
    recovered_high: float
    net: float
    roi: float | None


def total_return(rows: Sequence[Uplift], z: float = Z95) -> Return:
    """Sums of the per-level rows.

    The interval of the sum is MOVER's (Zou and Donner): the distances from each
    level's estimate down to its lower bound add in quadrature, and likewise up
    to the upper bound, so asymmetric per-level intervals stay asymmetric and one
    level's total is exactly that level's interval.
    """
    measured = [r for r in rows if r.measured]
    cost = sum(r.cost for r in measured)
    recovered = sum(r.recovered or 0.0 for r in measured)
    below = math.sqrt(sum(((r.recovered or 0.0) - (r.recovered_low or 0.0)) ** 2 for r in measured))
    above = math.sqrt(sum(((r.recovered_high or 0.0) - (r.recovered or 0.0)) ** 2 for r in measured))
    net = recovered - cost
    return Return(tuple(r.key for r in measured), tuple(r.key for r in rows if not r.measured), cost, recovered,
                  recovered - below, recovered + above, net, net / cost if cost > 0 else None)
