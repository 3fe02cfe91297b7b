"""Risk levels, the action ladder under the cost cap, and the configuration's errors."""

from __future__ import annotations

import numpy as np
import pytest

from models.risk import (
    LEVELS, RiskConfig, RiskConfigError, choose_action, lifetime_values, risk_levels, risk_scores, value_levels,
)


def test_levels_follow_the_seed_plan_and_are_monotone() -> None:
    config = RiskConfig()
    scores = np.arange(0, 101)
    levels = risk_levels(scores, config)
    assert np.all(np.diff(levels) >= 0)
    names = [LEVELS[i] for i in risk_levels(np.array([0, 20, 21, 40, 41, 60, 61, 80, 81, 100]), config)]
    assert names == ["green", "green", "yellow", "yellow", "orange", "orange", "red", "red", "purple", "purple"]
    assert list(risk_scores(np.array([0.0, 0.204, 0.5, 1.0]))) == [0, 20, 50, 100]


def test_thresholds_are_configuration() -> None:
    config = RiskConfig.from_mapping({"thresholds": [10, 30, 50, 70]})
    assert LEVELS[int(risk_levels(np.array([35]), config)[0])] == "orange"


def test_action_steps_down_the_ladder_to_stay_under_the_cap() -> None:
    config = RiskConfig()
    purple = LEVELS.index("purple")
    assert choose_action(purple, cost_cap=100.0, config=config).name == "manager_contact"  # type: ignore[union-attr]
    assert choose_action(purple, cost_cap=10.0, config=config).name == "callback"  # type: ignore[union-attr]
    assert choose_action(purple, cost_cap=0.05, config=config) is None
    assert choose_action(LEVELS.index("yellow"), cost_cap=1000.0, config=config).name == "member_offer"  # type: ignore[union-attr]


def test_lifetime_value_is_annual_spend_times_expected_years() -> None:
    clv = lifetime_values(np.array([1200.0, 600.0, -50.0]), np.array([365.0, 182.5, 365.0]), retention=0.5, max_years=5)
    assert clv == pytest.approx([1200.0, 1200.0, 0.0])  # r/(1-r) = 1 year; half a year of history annualised
    assert lifetime_values(np.array([100.0]), np.array([365.0]), retention=1.0, max_years=5)[0] == 500.0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"thresholds": [50, 40, 60, 80]}, "risk.thresholds"),
        ({"alert_min_level": "blue"}, "risk.alert_min_level"),
        ({"colour": "red"}, "unknown key risk.colour"),
        ({"actions": {"orange": {"name": "call"}}}, "risk.actions.orange needs name and cost"),
        ({"actions": {"teal": {"name": "x", "cost": 1}}}, "unknown level risk.actions.teal"),
    ],
)
def test_bad_configuration_names_the_key(raw: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(RiskConfigError, match=message):
        RiskConfig.from_mapping(raw)


def test_value_levels_are_sized_to_the_budget_and_ranked_by_value_at_risk() -> None:
    config = RiskConfig()  # purple 10% of a budget, red 20%, orange up to 4 budgets, yellow 2 more
    n = 400
    p = np.linspace(0.2, 0.9, n)
    clv = np.full(n, 100.0)
    clv[7] = 10_000.0  # a big spender at modest risk has the most value at risk
    eligible = np.ones(n, dtype=bool)
    eligible[-1] = False  # the riskiest customer is not eligible (lapsed, say): never above green
    levels = value_levels(p, clv, eligible, budget=20, config=config)
    counts = np.bincount(levels, minlength=5)
    assert counts.tolist() == [400 - 120, 40, 80 - 6, 4, 2]
    assert LEVELS[levels[7]] == "purple" and levels[-1] == 0
    assert LEVELS[levels[-2]] == "purple"  # then the highest probability at equal value
    assert np.array_equal(levels, value_levels(p, clv, eligible, budget=20, config=config)), "deterministic"


def test_score_bands_remain_available_as_configuration() -> None:
    config = RiskConfig.from_mapping({"level_by": "score", "thresholds": [10, 30, 50, 70]})
    assert config.level_by == "score"
    with pytest.raises(RiskConfigError, match="risk.level_by"):
        RiskConfig.from_mapping({"level_by": "mood"})
    with pytest.raises(RiskConfigError, match="risk.drift_ratio"):
        RiskConfig.from_mapping({"drift_ratio": 1.5})
    with pytest.raises(RiskConfigError, match="lapsed_after_gaps"):
        RiskConfig.from_mapping({"lapsed_after_gaps": 0.5})
