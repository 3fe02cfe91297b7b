"""Reasons on hand-made customers: present, ordered, and saying what staff would see."""

from __future__ import annotations

import numpy as np

from models.features import build_features
from models.reasons import explain
from models.schema import FEATURE_INDEX
from tests.models.helpers import day_number, every, history

AS_OF = day_number("2025-06-01")


def risk_from_overdue_and_trend(values: np.ndarray) -> np.ndarray:
    """A transparent stand-in model: risk rises with overdue ratio and falling visits."""
    overdue = np.nan_to_num(values[:, FEATURE_INDEX["overdue_log"]])
    trend = np.nan_to_num(values[:, FEATURE_INDEX["visit_trend_90"]])
    return 1 / (1 + np.exp(-(1.5 * overdue - 1.0 * trend - 1.0)))


def test_an_overdue_regular_gets_the_gap_reason_first() -> None:
    rows = [r for i in range(30) for r in every(7, "2024-06-01", "2025-05-28", f"regular{i}")]
    rows += every(12, "2024-06-01", "2025-04-21", "drifting")  # usually every 12 days, now 41 days away
    data = history(rows)
    table = build_features(data, AS_OF)
    target = np.array([list(table.customer_ids).index("drifting")])
    [reasons] = explain(risk_from_overdue_and_trend, table, target)
    assert reasons, "a customer far above the baseline has reasons"
    assert reasons[0]["text"] == "last visit 41 days ago, usually every 12 days"
    assert reasons[0]["feature"] == "days_since_last_visit"
    assert (reasons[0]["value"], reasons[0]["usual"]) == (41.0, 12.0)
    assert all(r["contribution"] > 0 for r in reasons)
    assert [r["contribution"] for r in reasons] == sorted((r["contribution"] for r in reasons), reverse=True)


def test_a_customer_like_everyone_else_has_no_reason() -> None:
    rows = [r for i in range(30) for r in every(7, "2024-06-01", "2025-05-28", f"regular{i}")]
    table = build_features(history(rows), AS_OF)
    assert explain(risk_from_overdue_and_trend, table, np.array([0])) == [[]]
