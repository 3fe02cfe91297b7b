"""Model decay: live precision of past alerts from the control group, and the retrain signal."""

from __future__ import annotations

import pytest

from server.console.decay import PeriodCounts, live_precision, retrain_signal


def test_live_precision_per_month_with_wilson_interval_and_the_calibrated_expectation() -> None:
    (march, april) = live_precision([PeriodCounts("2026-04", 10, 8, 700.0), PeriodCounts("2026-03", 20, 5, 1200.0)])
    assert (march.period, march.outcomes, march.churned, march.precision) == ("2026-03", 20, 5, 0.25)
    assert march.expected == pytest.approx(0.60)  # mean score 60 -> 60% expected to churn
    assert (april.precision, april.low, april.high) == (0.8, pytest.approx(0.4902, abs=5e-5),
                                                        pytest.approx(0.9433, abs=5e-5))


def test_no_signal_until_enough_outcomes_are_known() -> None:
    signal = retrain_signal([PeriodCounts("2026-03", 12, 1, 700.0)], threshold=0.4, min_outcomes=30)
    assert not signal.retrain and signal.current is None
    assert signal.reason == "12 control outcome(s) known, 30 needed to judge"


def test_the_most_recent_months_are_pooled_until_they_hold_enough_outcomes() -> None:
    periods = [PeriodCounts("2026-01", 40, 30, 2600.0),  # long ago, when the model was good
               PeriodCounts("2026-02", 20, 6, 1300.0), PeriodCounts("2026-03", 15, 3, 1000.0)]
    signal = retrain_signal(periods, threshold=0.4, min_outcomes=30)
    assert signal.current is not None
    assert (signal.current.period, signal.current.outcomes, signal.current.churned) == ("2026-02..2026-03", 35, 9)
    assert signal.retrain and signal.current.precision == pytest.approx(9 / 35)
    assert "26% (2026-02..2026-03, 35 outcomes) is below 40%" in signal.reason


def test_precision_at_or_above_the_threshold_raises_no_signal() -> None:
    signal = retrain_signal([PeriodCounts("2026-03", 30, 12, 1800.0)], threshold=0.4, min_outcomes=30)
    assert not signal.retrain and signal.current is not None and signal.current.precision == 0.4
