"""Scoring a store's customers: probabilities → scores, levels, CLV, capped actions and reasons.

Pure: it takes the feature table and any prediction function (onnxruntime on
the store box, torch in a backtest), so the same code decides alerts
everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .features import FeatureTable
from .reasons import Predict, explain
from .risk import LEVELS, RiskConfig, annual_retention, choose_action, lifetime_values, risk_levels, risk_scores


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


@dataclass
class StoreScores:
    """Every active customer's score, and the details of those at or above the alert level."""

    probabilities: np.ndarray
    scores: np.ndarray
    levels: np.ndarray  # level index per customer
    alerts: list[ScoredCustomer]
    lapsed: int = 0  # at or above the alert level but silent too long to warn about

    def level_counts(self) -> dict[str, int]:
        counts = np.bincount(self.levels, minlength=len(LEVELS))
        return {level: int(counts[i]) for i, level in enumerate(LEVELS)}


def score_table(table: FeatureTable, predict: Predict, risk: RiskConfig, horizon_days: int) -> StoreScores:
    probabilities = np.asarray(predict(table.values), dtype=np.float64) if len(table) else np.zeros(0)
    scores = risk_scores(probabilities)
    levels = risk_levels(scores, risk)
    at_risk = levels >= risk.level_rank(risk.alert_min_level)
    lapsed_after = risk.lapsed_after_days if risk.lapsed_after_days is not None else horizon_days
    lapsed = table.facts["recency_days"] > lapsed_after
    alerting = np.flatnonzero(at_risk & ~lapsed)
    retention = annual_retention(probabilities[~lapsed], horizon_days)  # the customers still coming
    net_spend = table.facts["spend_365"] - table.facts["refund_amount_365"]
    clv = lifetime_values(net_spend, table.facts["history_days"], retention, risk.max_lifetime_years)
    reasons = explain(predict, table, alerting)
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
            )
        )
    return StoreScores(probabilities, scores, levels, alerts, int((at_risk & lapsed).sum()))
