"""Uplift and ROI: the pure statistics, against published and hand-computed values."""

from __future__ import annotations

import pytest

from server.console.uplift import (
    Arm, OutcomeGroup, measure, newcombe_difference, total_return, uplift_by_action, uplift_by_level, wilson,
)


@pytest.mark.parametrize(("successes", "n", "low", "high"), [
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
    (8, 10, 0.4902, 0.9433),
])
def test_wilson_interval_matches_the_published_values(successes: int, n: int, low: float, high: float) -> None:
    interval = wilson(successes, n)
    assert interval == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


def test_wilson_without_observations_is_unknown_and_an_all_success_interval_reaches_one() -> None:
    assert wilson(0, 0) is None
    low, high = wilson(29, 29)  # type: ignore[misc]
    assert low == pytest.approx(0.8830, abs=5e-5) and high == pytest.approx(1.0)


@pytest.mark.parametrize(("s1", "n1", "s2", "n2", "low", "high"), [
    # Newcombe (1998), "Interval estimation for the difference between independent proportions", Table II, method 10
    (56, 70, 48, 80, 0.0524, 0.3339), (9, 10, 3, 10, 0.1705, 0.8090), (5, 56, 0, 29, -0.0381, 0.1926),
    (6, 7, 2, 7, 0.0582, 0.8062), (0, 10, 0, 20, -0.1611, 0.2775), (10, 10, 0, 20, 0.6791, 1.0),
    (10, 10, 0, 10, 0.6075, 1.0),
])
def test_newcombe_difference_matches_the_published_values(s1: int, n1: int, s2: int, n2: int, low: float,
                                                          high: float) -> None:
    d, lower, upper = newcombe_difference(s1, n1, s2, n2)  # type: ignore[misc]
    assert d == pytest.approx(s1 / n1 - s2 / n2)
    assert (lower, upper) == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


def test_a_difference_needs_both_groups() -> None:
    assert newcombe_difference(3, 4, 0, 0) is None and newcombe_difference(0, 0, 3, 4) is None


def test_measure_values_the_uplift_of_the_treated_customers_against_their_cost() -> None:
    # treated: 4 stayed, 1 churned, CLV 5 x 800, cost 4 caps of 40 and one actual cost of 25
    row = measure("red", Arm(4, 1, clv=4000.0, cost=185.0), Arm(1, 3, clv=3200.0, cost=0.0))
    assert (row.treated.n, row.treated.rate, row.control.n, row.control.rate) == (5, 0.8, 4, 0.25)
    assert row.uplift == pytest.approx(0.55)
    assert row.recovered == pytest.approx(0.55 * 4000)  # 2200
    assert row.net == pytest.approx(2200 - 185)
    assert row.roi == pytest.approx(2015 / 185)  # 10.89: each unit spent brought back 10.89 more
    assert row.recovered_low == pytest.approx(row.uplift_low * 4000)  # type: ignore[operator]
    assert row.recovered_high == pytest.approx(row.uplift_high * 4000)  # type: ignore[operator]
    assert row.uplift_low < 0.55 < row.uplift_high  # type: ignore[operator]


def test_measure_without_a_control_outcome_reports_the_rates_but_no_uplift() -> None:
    row = measure("orange", Arm(2, 1, clv=900.0, cost=18.0), Arm())
    assert row.treated.rate == pytest.approx(2 / 3) and row.control.rate is None
    assert (row.uplift, row.recovered, row.roi, row.measured) == (None, None, None, False)
    assert row.cost == 18.0


def group(level: str, action: str | None, control: bool, result: str, count: int, clv: float = 0.0,
          cost: float = 0.0) -> OutcomeGroup:
    return OutcomeGroup(level, action, control, result, count, clv, cost)


GROUPS = [
    group("red", "service_plan", False, "stayed", 4, 3200, 160),
    group("red", "service_plan", False, "churned", 1, 800, 25),
    group("red", None, True, "stayed", 1), group("red", None, True, "churned", 3),
    group("orange", "callback", False, "stayed", 3, 1500, 36),
    group("orange", "callback", False, "churned", 1, 500, 12),
    group("orange", "member_offer", False, "stayed", 1, 400, 3),  # a cheaper action where the cap ruled out a call
    group("orange", None, True, "churned", 2),
    group("purple", "manager_contact", False, "stayed", 2, 2000, 80),  # no control outcome yet
]


def test_uplift_by_level_compares_each_level_with_its_own_control_group() -> None:
    rows = {r.key: r for r in uplift_by_level(GROUPS, ("green", "yellow", "orange", "red", "purple"))}
    assert list(rows) == ["orange", "red", "purple"]
    red = rows["red"]
    assert (red.treated.n, red.treated.stayed, red.control.n, red.control.stayed) == (5, 4, 4, 1)
    assert (red.clv, red.cost, red.recovered) == (4000, 185, pytest.approx(2200))
    orange = rows["orange"]
    assert (orange.treated.n, orange.treated.stayed, orange.control.n) == (5, 4, 2)
    assert orange.uplift == pytest.approx(0.8) and orange.cost == 51
    assert not rows["purple"].measured


def test_uplift_by_action_uses_the_control_alerts_of_the_levels_where_the_action_was_given() -> None:
    rows = {r.key: r for r in uplift_by_action(GROUPS)}
    assert list(rows) == ["callback", "manager_contact", "member_offer", "service_plan"]
    assert (rows["callback"].treated.n, rows["callback"].control.n) == (4, 2)  # orange's control group
    assert rows["callback"].uplift == pytest.approx(0.75)
    assert (rows["service_plan"].treated.n, rows["service_plan"].control.n) == (5, 4)
    assert rows["member_offer"].uplift == pytest.approx(1.0)
    assert rows["manager_contact"].control.n == 0 and not rows["manager_contact"].measured


def test_total_return_sums_the_measured_levels_and_names_the_others() -> None:
    rows = uplift_by_level(GROUPS, ("orange", "red", "purple"))
    total = total_return(rows)
    assert total.levels == ("orange", "red") and total.unmeasured == ("purple",)
    recovered = 0.8 * 2400 + 0.55 * 4000
    assert total.cost == 51 + 185 and total.recovered == pytest.approx(recovered)
    assert total.net == pytest.approx(recovered - 236) and total.roi == pytest.approx((recovered - 236) / 236)
    assert total.recovered_low < recovered < total.recovered_high


def test_the_total_of_one_measured_level_has_that_levels_own_interval() -> None:
    rows = uplift_by_level([g for g in GROUPS if g.level == "red"], ("red",))
    total = total_return(rows)
    assert (total.recovered_low, total.recovered_high) == pytest.approx((rows[0].recovered_low, rows[0].recovered_high))


def test_total_return_without_any_measured_level_is_zero_and_has_no_roi() -> None:
    total = total_return(uplift_by_level([group("red", "service_plan", False, "stayed", 3, 900, 60)], ("red",)))
    assert (total.levels, total.unmeasured, total.cost, total.recovered, total.roi) == ((), ("red",), 0, 0, None)
