"""Where a customer stands against their own rhythm: lapsed (win-back) or drifting (early warning)."""

from __future__ import annotations

import numpy as np
import pytest

from models.rhythm import LapseRule, activity_ratio, lapse_limit_days, lapsed


def test_a_month_of_silence_is_a_lapse_for_a_weekly_shopper_not_for_a_monthly_one() -> None:
    rule = LapseRule(gaps=3, min_days=28)
    recency = np.array([30.0, 30.0])
    usual = np.array([7.0, 30.0])
    longest = np.array([9.0, 35.0])
    assert lapsed(recency, usual, longest, rule).tolist() == [True, False]
    assert lapse_limit_days(usual, longest, rule).tolist() == [28.0, 90.0]


def test_a_silence_they_came_back_from_before_is_not_a_lapse() -> None:
    rule = LapseRule(gaps=3, min_days=28)
    assert not lapsed(np.array([70.0]), np.array([10.0]), np.array([80.0]), rule)[0]
    assert lapsed(np.array([81.0]), np.array([10.0]), np.array([80.0]), rule)[0]


def test_single_visit_customers_use_the_store_typical_gap_and_a_cap_applies() -> None:
    usual = np.array([np.nan, 10.0, 20.0, 30.0])
    longest = np.full(4, np.nan)
    limits = lapse_limit_days(usual, longest, LapseRule(gaps=3, min_days=28))
    assert limits[0] == 60.0  # 3 x the median usual gap (20)
    capped = lapse_limit_days(usual, longest, LapseRule(gaps=3, min_days=28, max_days=45))
    assert capped.max() == 45.0


@pytest.mark.parametrize("kwargs", [{"gaps": 1.0}, {"min_days": 0}, {"min_days": 30, "max_days": 20}])
def test_a_rule_that_cannot_work_is_refused(kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):
        LapseRule(**kwargs)


def test_activity_ratio_sets_expected_visits_against_the_usual_rhythm() -> None:
    ratio = activity_ratio(np.array([4.0, 1.0, 2.0]), np.array([7.0, 7.0, np.nan]), 28.0)
    assert ratio[:2] == pytest.approx([1.0, 0.25])
    assert ratio[2] == pytest.approx(2.0 / (28.0 / 7.0))  # no rhythm of their own: the store's (7 days)
