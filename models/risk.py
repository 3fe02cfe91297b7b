"""From a churn probability to a risk level and an affordable action.

Score = 100 × the calibrated probability of no purchase in the horizon,
rounded. The level says how much a store team should invest in a customer,
so it comes from the value at risk (probability × lifetime value), sized to
the store's weekly alert budget: among the customers drifting away from
their own rhythm (models/rhythm.py), the `alert_budgets` budgets' worth with the most value at risk are
orange or above (the alert policy then sends at most one budget a week), the
first `purple_share` of a budget purple, the next `red_share` red; the next
`yellow_budgets` budgets' worth are yellow, everyone else green. Purple is
therefore rare by construction and always where the most is at stake. The
seed plan's score bands (`level_by = "score"`, `thresholds`) remain available.

Levels and the action ladder are configuration. An action's cost must
stay under a share (5%) of the customer's estimated lifetime value; when the
level's default action costs more, the strongest action on the ladder that
fits is chosen instead, and when none fits there is no action.

CLV estimator: annual net spend (the last 12 months, annualised when the
history is shorter) × expected remaining lifetime in years. The lifetime is
r / (1 − r) for the store's annual retention r = (1 − p̄)^(365/H), p̄ the mean
predicted H-day churn probability of the store's customers who have not
lapsed (visited within the horizon), capped at
`max_lifetime_years`. It is what keeping a customer is worth at the store's
usual retention: the value an intervention tries to protect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .rhythm import LapseRule

LEVELS = ("green", "yellow", "orange", "red", "purple")
LEVEL_BY = ("value", "score")


class RiskConfigError(Exception):
    """A risk configuration that cannot be used; the message names the key."""


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    cost: float


DEFAULT_ACTIONS: dict[str, Action] = {
    "green": Action("care_sms", "care message (SMS)", 0.10),
    "yellow": Action("member_offer", "member-only offer", 3.00),
    "orange": Action("callback", "phone call-back", 6.00),
    "red": Action("service_plan", "one-to-one service plan", 20.00),
    "purple": Action("manager_contact", "store manager / executive contact", 40.00),
}


@dataclass(frozen=True)
class RiskConfig:
    """How probabilities become levels and actions; `[risk]` in a store box's configuration."""

    level_by: str = "value"  # "value": value at risk sized to the alert budget; "score": the bands below
    purple_share: float = 0.1  # of the weekly budget's customers, the most value at risk
    red_share: float = 0.2
    # orange and above: this many budgets' worth of customers, so the week's budget is still
    # filled when some of them were alerted recently (the cooldown holds them back)
    alert_budgets: float = 4.0
    yellow_budgets: float = 2.0  # yellow: the next this-many budgets' worth of customers
    thresholds: tuple[int, int, int, int] = (20, 40, 60, 80)  # level_by = "score": highest score of green..red
    actions: dict[str, Action] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    cost_cap_share: float = 0.05
    alert_min_level: str = "orange"
    max_lifetime_years: float = 5.0
    # A customer silent for more than `lapsed_after_gaps` of their usual gaps
    # (at least `lapsed_min_days`, and longer than any gap they came back from)
    # has lapsed: a win-back case, not an early warning (models/lapse.py).
    # `lapsed_after_days` caps the limit: silent that long is lapsed whatever the rhythm.
    lapsed_after_gaps: float = 3.0
    lapsed_min_days: int = 28
    lapsed_after_days: int | None = None
    # An early warning is for a customer still buying whose expected visits over the next
    # `drift_window_days` fall below `drift_ratio` of what their usual gap implies.
    drift_window_days: int = 60
    drift_ratio: float = 0.5

    def __post_init__(self) -> None:
        t = self.thresholds
        if len(t) != 4 or list(t) != sorted(t) or len(set(t)) != 4 or t[0] < 0 or t[-1] >= 100:
            raise RiskConfigError(f"risk.thresholds must be 4 increasing scores in 0..99, got {list(t)}")
        missing = [level for level in LEVELS if level not in self.actions]
        if missing:
            raise RiskConfigError(f"risk.actions lacks {', '.join(missing)}")
        if self.alert_min_level not in LEVELS:
            raise RiskConfigError(f"risk.alert_min_level must be one of {', '.join(LEVELS)}")
        if not 0 < self.cost_cap_share <= 1:
            raise RiskConfigError("risk.cost_cap_share must be in (0, 1]")
        if self.level_by not in LEVEL_BY:
            raise RiskConfigError(f"risk.level_by must be one of {', '.join(LEVEL_BY)}")
        if not (0 <= self.purple_share <= 1 and 0 <= self.red_share <= 1 and self.purple_share + self.red_share <= 1):
            raise RiskConfigError("risk.purple_share and risk.red_share must be shares in [0, 1] adding up to at most 1")
        if not 0 < self.drift_ratio <= 1 or self.drift_window_days < 7:
            raise RiskConfigError("risk.drift_ratio must be in (0, 1] and risk.drift_window_days at least 7")
        if self.yellow_budgets < 0 or self.alert_budgets < 1:
            raise RiskConfigError("risk.alert_budgets must be at least 1 and risk.yellow_budgets 0 or more")
        try:
            self.lapse_rule
        except ValueError as exc:
            raise RiskConfigError(str(exc)) from None

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> RiskConfig:
        """From a config file's `[risk]` table; unknown keys are errors, not ignored."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise RiskConfigError(f"unknown key risk.{unknown[0]} (known: {', '.join(sorted(known))})")
        kwargs: dict[str, Any] = {k: v for k, v in raw.items() if k != "actions"}
        if "thresholds" in kwargs:
            kwargs["thresholds"] = tuple(int(v) for v in kwargs["thresholds"])
        if "actions" in raw:
            actions = dict(DEFAULT_ACTIONS)
            for level, spec in raw["actions"].items():
                if level not in LEVELS:
                    raise RiskConfigError(f"unknown level risk.actions.{level}")
                try:
                    actions[level] = Action(str(spec["name"]), str(spec.get("label", spec["name"])), float(spec["cost"]))
                except (KeyError, TypeError, ValueError) as exc:
                    raise RiskConfigError(f"risk.actions.{level} needs name and cost ({exc})") from None
            kwargs["actions"] = actions
        return cls(**kwargs)

    def level_rank(self, level: str) -> int:
        return LEVELS.index(level)

    @property
    def lapse_rule(self) -> LapseRule:
        return LapseRule(self.lapsed_after_gaps, self.lapsed_min_days, self.lapsed_after_days)


def risk_scores(probabilities: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(probabilities) * 100), 0, 100).astype(np.int64)


def risk_levels(scores: np.ndarray, config: RiskConfig) -> np.ndarray:
    """Level index 0..4 (green..purple) per score by the score bands; monotone in the score."""
    return np.searchsorted(np.array(config.thresholds), np.asarray(scores), side="left").astype(np.int64)


def value_levels(probabilities: np.ndarray, clv: np.ndarray, eligible: np.ndarray, budget: int,
                 config: RiskConfig) -> np.ndarray:
    """Level index per customer from the value at risk (probability × CLV), sized to a weekly budget.

    Only `eligible` customers (drifting away, say, or lapsed for the win-back
    list) rise above green; the most value at risk comes first. Ties are broken
    by the probability, then by position, so the same inputs always give the
    same levels.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    value = p * np.maximum(np.asarray(clv, dtype=np.float64), 0.0)
    levels = np.zeros(len(p), dtype=np.int64)
    ranked = np.flatnonzero(np.asarray(eligible, dtype=bool))
    if not len(ranked) or budget <= 0:
        return levels
    ranked = ranked[np.lexsort((ranked, -p[ranked], -value[ranked]))]
    purple = math.ceil(config.purple_share * budget) if config.purple_share > 0 else 0
    red = purple + (math.ceil(config.red_share * budget) if config.red_share > 0 else 0)
    orange = max(math.ceil(config.alert_budgets * budget), red)
    yellow = orange + math.ceil(config.yellow_budgets * budget)
    for level, (start, stop) in enumerate(((orange, yellow), (red, orange), (purple, red), (0, purple)), start=1):
        levels[ranked[start:stop]] = level
    return levels


def annual_retention(probabilities: np.ndarray, horizon_days: int) -> float:
    mean = float(np.mean(probabilities)) if len(probabilities) else 0.0
    return float(np.clip(1.0 - mean, 0.0, 1.0) ** (365.0 / horizon_days))


def lifetime_values(
    net_spend: np.ndarray, history_days: np.ndarray, retention: float, max_years: float
) -> np.ndarray:
    """Annual net spend × expected remaining years at the store's retention."""
    annual = np.maximum(np.asarray(net_spend, dtype=np.float64), 0.0) * 365.0 / np.maximum(history_days, 1.0)
    years = max_years if retention >= 1 else min(max_years, retention / (1.0 - retention))
    return annual * years


def choose_action(level: int, cost_cap: float, config: RiskConfig) -> Action | None:
    """The level's action if affordable, else the strongest cheaper one on the ladder."""
    for rung in range(level, -1, -1):
        action = config.actions[LEVELS[rung]]
        if action.cost <= cost_cap:
            return action
    return None
