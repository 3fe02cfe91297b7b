"""Scoring a store's customers: probabilities → scores, levels, CLV, capped actions and reasons.

Pure: it takes the feature table and any churn model (onnxruntime on the store
box, torch in a backtest), so the same code decides alerts everywhere. Each
customer still buying is an early-warning candidate when they drift away from
their own rhythm; each lapsed customer is a win-back candidate; the levels
rank each list by value at risk, sized to its weekly budget (models/risk.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .features import FeatureTable
from .rhythm import activity_ratio, store_typical_gap
from .rhythm import lapsed as lapsed_by_rhythm
from .reasons import explain
from .risk import (
    LEVELS, RiskConfig, annual_retention, choose_action, lifetime_values, risk_levels, risk_scores, value_levels,
)


@dataclass
class ScoredCustomer:
    customer_id: str
    probability: float
    risk_score: int
    level: str
    action: str | None
    action_label: str | None
    action_cost: float | None
    clv_estimate: float
    action_cost_cap: float
    reasons: list[dict[str, Any]]
    value_at_risk: float = 0.0  # probability × CLV: what the store stands to lose
    lapsed: bool = False  # silent past their own rhythm: a win-back case, not an early warning
    days_silent: int = 0


@dataclass
class StoreScores:
    """Every active customer's score, and the details of those at or above the alert level."""

    probabilities: np.ndarray
    scores: np.ndarray
    levels: np.ndarray  # level index per customer (early-warning levels; win-back levels for the lapsed)
    lapsed_mask: np.ndarray  # bool per customer
    alerts: list[ScoredCustomer]  # candidates: early warnings and win-backs at or above the alert level

    @property
    def lapsed(self) -> int:
        """Customers lapsed by their own rhythm: the win-back list draws from them, early warnings never do."""
        return int(self.lapsed_mask.sum())

    def level_counts(self) -> dict[str, int]:
        """Early-warning levels of the customers still buying (the lapsed are counted apart)."""
        counts = np.bincount(self.levels[~self.lapsed_mask], minlength=len(LEVELS))
        return {level: int(counts[i]) for i, level in enumerate(LEVELS)}


class ChurnModel(Protocol):
    """What scoring needs of a released model (models/network.py's quantities)."""

    def predict(self, values: np.ndarray) -> np.ndarray:
        """Calibrated P(no visit in the model's horizon)."""
        ...

    def expected_visits(self, values: np.ndarray, days: int) -> np.ndarray:
        """Expected visit days in the next `days` days."""
        ...


@dataclass(frozen=True)
class Budgets:
    """Alerts a store team can act on per week: early warnings, and the win-back list."""

    warnings: int = 50
    winbacks: int = 20


def customer_values(facts: dict[str, np.ndarray], probabilities: np.ndarray, lapsed: np.ndarray, risk: RiskConfig,
                    horizon_days: int) -> np.ndarray:
    """Each customer's estimated lifetime value at the store's retention (models/risk.py), from their facts."""
    retention = annual_retention(probabilities[~lapsed], horizon_days)  # the customers still coming
    net_spend = facts["spend_365"] - facts["refund_amount_365"]
    return lifetime_values(net_spend, facts["history_days"], retention, risk.max_lifetime_years)


def assign_levels(probabilities: np.ndarray, clv: np.ndarray, lapsed: np.ndarray, drifting: np.ndarray,
                  risk: RiskConfig, budgets: Budgets) -> np.ndarray:
    """Early-warning levels for the customers drifting away (and more likely than usual to leave),
    win-back levels for the lapsed."""
    if risk.level_by == "score":
        return risk_levels(risk_scores(probabilities), risk)
    buying = ~lapsed
    usual = probabilities[buying].mean() if buying.any() else 0.0
    likely = probabilities >= usual  # more likely to leave than the store's customers still buying
    warnings = value_levels(probabilities, clv, buying & drifting & likely, budgets.warnings, risk)
    winbacks = value_levels(probabilities, clv, lapsed, budgets.winbacks, risk)
    return np.where(lapsed, winbacks, warnings)


@dataclass
class Standing:
    """Where each customer stands: churn probability, value, lapsed, drifting, and the level that follows."""

    probabilities: np.ndarray
    clv: np.ndarray
    lapsed: np.ndarray
    drifting: np.ndarray
    activity: np.ndarray  # expected visits over the drift window / the usual
    levels: np.ndarray


def standing(table: FeatureTable, model: ChurnModel, risk: RiskConfig, horizon_days: int,
             budgets: Budgets = Budgets()) -> Standing:
    """Everything the levels depend on, for every customer of the table."""
    if not len(table):
        empty = np.zeros(0)
        return Standing(empty, empty, empty.astype(bool), empty.astype(bool), empty, empty.astype(np.int64))
    probabilities = np.asarray(model.predict(table.values), dtype=np.float64)
    usual = table.facts["usual_gap_days"]
    store_gap = store_typical_gap(usual)
    lapsed = lapsed_by_rhythm(table.facts["recency_days"], usual, table.facts["longest_gap_days"], risk.lapse_rule,
                              store_gap)
    expected = np.asarray(model.expected_visits(table.values, risk.drift_window_days), dtype=np.float64)
    activity = activity_ratio(expected, usual, risk.drift_window_days, store_gap)
    drifting = activity < risk.drift_ratio
    clv = customer_values(table.facts, probabilities, lapsed, risk, horizon_days)
    return Standing(probabilities, clv, lapsed, drifting, activity,
                    assign_levels(probabilities, clv, lapsed, drifting, risk, budgets))


def score_table(table: FeatureTable, model: ChurnModel, risk: RiskConfig, horizon_days: int,
                budgets: Budgets = Budgets()) -> StoreScores:
    state = standing(table, model, risk, horizon_days, budgets)
    probabilities, clv, levels, lapsed = state.probabilities, state.clv, state.levels, state.lapsed
    scores = risk_scores(probabilities)
    recency = table.facts["recency_days"]
    alerting = np.flatnonzero(levels >= risk.level_rank(risk.alert_min_level))
    reasons = explain(model.predict, table, alerting)
    alerts = []
    for k, row in enumerate(alerting):
        cap = float(clv[row] * risk.cost_cap_share)
        action = choose_action(int(levels[row]), cap, risk)
        alerts.append(
            ScoredCustomer(
                customer_id=str(table.customer_ids[row]),
                probability=float(probabilities[row]),
                risk_score=int(scores[row]),
                level=LEVELS[int(levels[row])],
                action=action.name if action else None,
                action_label=action.label if action else None,
                action_cost=action.cost if action else None,
                clv_estimate=round(float(clv[row]), 2),
                action_cost_cap=round(cap, 2),
                reasons=reasons[k],
                value_at_risk=round(float(probabilities[row] * clv[row]), 2),
                lapsed=bool(lapsed[row]),
                days_silent=int(recency[row]),
            )
        )
    return StoreScores(probabilities, scores, levels, lapsed, alerts)
