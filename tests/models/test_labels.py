"""Cutoffs, horizons and labels."""

from __future__ import annotations

import pytest

from models.labels import LabelError, churn_labels, plan_cutoffs, training_set
from models.features import build_features
from tests.models.helpers import day_number, every, history


def test_cutoffs_end_their_label_windows_by_as_of() -> None:
    plan = plan_cutoffs(first_day=0, as_of_day=730, horizon_days=90, max_cutoffs=6, step_days=30)
    assert plan.horizon_days == 90 and not plan.note
    assert plan.cutoffs == (640, 610, 580, 550, 520, 490)
    assert all(c + plan.horizon_days <= 730 for c in plan.cutoffs)


def test_short_history_uses_the_longest_horizon_it_allows_and_says_so() -> None:
    plan = plan_cutoffs(first_day=0, as_of_day=120, horizon_days=90)
    assert plan.horizon_days < 90
    assert plan.cutoffs[0] + plan.horizon_days == 120
    assert "too short for a 90-day horizon" in plan.note
    with pytest.raises(LabelError, match="only 20 days of history"):
        plan_cutoffs(first_day=0, as_of_day=20, horizon_days=90)


def test_churned_means_no_purchase_in_the_horizon() -> None:
    data = history(
        every(7, "2025-01-01", "2025-06-30", "stays")
        + every(7, "2025-01-01", "2025-03-31", "leaves")
        + every(7, "2025-01-01", "2025-03-31", "returns") + [("returns", "2025-06-20T10:00:00", 5.0)]
        + [("refunds-only", "2025-03-01T10:00:00", 10.0), ("refunds-only", "2025-04-10T10:00:00", -10.0)]
    )
    cutoff = day_number("2025-04-01")
    table = build_features(data.until(cutoff * 86400), cutoff)
    labels = dict(zip(table.customer_ids, churn_labels(data, table, 90)))
    assert labels == {"stays": 0.0, "leaves": 1.0, "returns": 0.0, "refunds-only": 1.0}


def test_training_set_stacks_cutoffs() -> None:
    data = history(every(7, "2024-01-01", "2025-12-31", "a") + every(10, "2024-01-01", "2025-03-01", "b"))
    stacked = training_set(data, day_number("2025-12-31"), 90, max_cutoffs=4)
    assert len(set(stacked.cutoff)) == 4 and len(stacked) == 8
    assert stacked.plan is not None and stacked.plan.horizon_days == 90
