"""From a churn probability to a risk level and an affordable action.

Score = 100 × the calibrated probability of no purchase in the horizon,
rounded. Levels and the action ladder are configuration. An action's cost must
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

from dataclasses import dataclass, field
from typing import Any

import numpy as np

LEVELS = ("green", "yellow", "orange", "red", "purple")


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
    """Thresholds are the highest score of green, yellow, orange and red."""

    thresholds: tuple[int, int, int, int] = (20, 40, 60, 80)
    actions: dict[str, Action] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    cost_cap_share: float = 0.05
    alert_min_level: str = "orange"
    max_lifetime_years: float = 5.0
    # Customers silent for longer than this have lapsed already (None: the
    # model's horizon): they are scored and counted, but an early warning
    # about them would come too late, so they raise no alert.
    lapsed_after_days: int | None = None

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

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> RiskConfig:
        """From a config file's `[risk]` table; unknown keys are errors, not ignored."""
        known = {"thresholds", "actions", "cost_cap_share", "alert_min_level", "max_lifetime_years", "lapsed_after_days"}
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


def risk_scores(probabilities: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(probabilities) * 100), 0, 100).astype(np.int64)


def risk_levels(scores: np.ndarray, config: RiskConfig) -> np.ndarray:
    """Level index 0..4 (green..purple) per score; monotone in the score by construction."""
    return np.searchsorted(np.array(config.thresholds), np.asarray(scores), side="left").astype(np.int64)


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
