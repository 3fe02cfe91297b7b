"""The early warning measured as deployed: weekly scoring after as-of with the real alert policy.

A model trained at as-of is fixed; every week after as-of the store's
customers are scored with only the data before that day, and the alert policy
of the store box decides who is warned (levels from the value at risk, the
lapsed rule, the cooldown, the weekly budget). With a simulated chain's truth
(each customer's true churn date) this says what a store team would have
seen: how many of the customers who left were warned before they left, how
early, how many warnings were right, and how many went to loyal customers.

The same is measured for an "overdue rule" (warn when a customer is silent
for more than `overdue_gaps` of their usual gaps, the most overdue first) under
the same budget, cooldown and lapsed rule: what a store could do without a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.alerting import AlertPolicy, PreviousAlert, SentSoFar, select_alerts
from models.features import FeatureTable, build_features
from models.rhythm import lapsed as lapsed_by_rhythm
from models.rhythm import store_typical_gap
from models.risk import LEVELS, RiskConfig
from models.scoring import Budgets, ChurnModel, ScoredCustomer, standing
from models.store_data import DAY, StoreData

DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class WarningSpec:
    as_of_day: int  # first day after as-of: the first scoring day
    horizon_days: int
    weeks: int = 26
    min_lead_days: int = 56  # churners whose true churn date is at least this long after as-of
    lookback_days: int = 365
    overdue_gaps: float = 1.5


@dataclass(frozen=True)
class Alert:
    customer_id: str
    day: int
    level: str
    lapsed: bool


def _candidate(table: FeatureTable, row: int, probability: float, level: int, priority: float,
               lapsed: bool) -> ScoredCustomer:
    return ScoredCustomer(
        customer_id=str(table.customer_ids[row]), probability=probability, risk_score=int(round(100 * probability)),
        level=LEVELS[level], action=None, action_label=None, action_cost=None, clv_estimate=0.0,
        action_cost_cap=0.0, reasons=[], value_at_risk=priority, lapsed=lapsed,
        days_silent=int(table.facts["recency_days"][row]),
    )


def model_candidates(table: FeatureTable, model: ChurnModel, spec: WarningSpec, risk: RiskConfig,
                     budgets: Budgets) -> list[ScoredCustomer]:
    """Who the store box would put forward today: levels at or above the alert level, as in scoring."""
    state = standing(table, model, risk, spec.horizon_days, budgets)
    p, clv = state.probabilities, state.clv
    rows = np.flatnonzero(state.levels >= risk.level_rank(risk.alert_min_level))
    return [_candidate(table, r, float(p[r]), int(state.levels[r]), float(p[r] * clv[r]), bool(state.lapsed[r]))
            for r in rows]


def overdue_candidates(table: FeatureTable, spec: WarningSpec, risk: RiskConfig) -> list[ScoredCustomer]:
    """The rule without a model: silent for more than `overdue_gaps` usual gaps and not yet lapsed."""
    recency = table.facts["recency_days"]
    usual = table.facts["usual_gap_days"]
    gap = np.where(np.isfinite(usual), usual, store_typical_gap(usual))
    lapsed = lapsed_by_rhythm(recency, usual, table.facts["longest_gap_days"], risk.lapse_rule)
    overdue = recency / np.maximum(gap, 1.0)
    rows = np.flatnonzero((overdue > spec.overdue_gaps) & ~lapsed)
    level = risk.level_rank(risk.alert_min_level)
    return [_candidate(table, r, 0.0, level, float(overdue[r]), False) for r in rows]


def weekly_alerts(store: StoreData, spec: WarningSpec, risk: RiskConfig, policy: AlertPolicy,
                  candidates: Callable[[FeatureTable], list[ScoredCustomer]]) -> tuple[list[Alert], set[str]]:
    """(every alert over the weeks after as-of, every customer scored at least once)."""
    previous: dict[str, PreviousAlert] = {}
    alerts: list[Alert] = []
    scored: set[str] = set()
    for week in range(spec.weeks):
        day = spec.as_of_day + 7 * week
        table = build_features(store.until(day * DAY), day, spec.lookback_days)
        scored.update(str(c) for c in table.customer_ids)
        chosen = select_alerts(candidates(table), previous, SentSoFar(), day, policy)
        for alert in chosen.alerts:
            previous[alert.customer_id] = PreviousAlert(alert.level, day)
            alerts.append(Alert(alert.customer_id, day, alert.level, alert.lapsed))
    return alerts, scored


def measure(alerts: list[Alert], scored: set[str], truth: dict[str, int], spec: WarningSpec,
            known_until_day: int) -> dict[str, Any]:
    """The early-warning figures for one store (or several, concatenated)."""
    last_scoring = spec.as_of_day + 7 * (spec.weeks - 1)
    warnings = [a for a in alerts if not a.lapsed]
    first_warning: dict[str, int] = {}
    for alert in sorted(warnings, key=lambda a: a.day):
        first_warning.setdefault(alert.customer_id, alert.day)
    churners = {c: d for c, d in truth.items()
                if c in scored and spec.as_of_day + spec.min_lead_days <= d <= last_scoring}
    leads = [d - first_warning[c] for c, d in churners.items() if c in first_warning and first_warning[c] <= d]
    judged = {c: day for c, day in first_warning.items() if day + spec.horizon_days <= known_until_day}
    right = sum(1 for c, day in judged.items() if c in truth and truth[c] < day + spec.horizon_days)
    loyal = {c for c in scored if c not in truth or truth[c] > known_until_day}
    false_alarms = sum(1 for a in warnings if a.customer_id in loyal)
    months = spec.weeks * 7 / DAYS_PER_MONTH
    return {
        "churners": len(churners),
        "caught_before_churn": len(leads),
        "caught_before_churn_share": len(leads) / len(churners) if churners else None,
        "median_lead_days": float(np.median(leads)) if leads else None,
        "alerted_customers": len(first_warning),
        "alert_precision": right / len(judged) if judged else None,
        "alerts_judged_for_precision": len(judged),
        "false_alarms_per_1000_loyal_per_month": 1000 * false_alarms / len(loyal) / months if loyal else None,
        "warnings": len(warnings),
        "winbacks": len(alerts) - len(warnings),
        "weeks": spec.weeks,
    }


def early_warning(stores: list[tuple[StoreData, ChurnModel, dict[str, int]]], spec: WarningSpec, risk: RiskConfig,
                  policy: AlertPolicy, rule: str = "model") -> dict[str, Any]:
    """Weekly scoring with `rule` ("model" or "overdue") in every store, measured against the truth."""
    budgets = Budgets(policy.weekly_budget, policy.winback_weekly_budget)
    all_alerts: list[Alert] = []
    all_scored: set[str] = set()
    all_truth: dict[str, int] = {}
    known_until = min(store.last_day + 1 for store, _, _ in stores)
    for store, model, truth in stores:
        if rule == "model":
            pick = lambda table, m=model: model_candidates(table, m, spec, risk, budgets)  # noqa: E731
        else:
            pick = lambda table: overdue_candidates(table, spec, risk)  # noqa: E731
        alerts, scored = weekly_alerts(store, spec, risk, policy, pick)
        prefix = f"{store.store_id}\x1f"  # customer ids are per store
        all_alerts += [Alert(prefix + a.customer_id, a.day, a.level, a.lapsed) for a in alerts]
        all_scored |= {prefix + c for c in scored}
        all_truth |= {prefix + c: d for c, d in truth.items()}
    result = measure(all_alerts, all_scored, all_truth, spec, known_until)
    result["rule"] = rule if rule == "model" else f"overdue > {spec.overdue_gaps:g} usual gaps"
    result["weekly_budget_per_store"] = policy.weekly_budget
    return result
