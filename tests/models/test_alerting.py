"""Which candidates become alerts: the weekly budgets of both lists, the daily cap, the cooldowns."""

from __future__ import annotations

from models.alerting import AlertPolicy, PreviousAlert, SentSoFar, select_alerts
from models.scoring import ScoredCustomer


def candidate(ref: str, level: str, value: float, lapsed: bool = False) -> ScoredCustomer:
    return ScoredCustomer(ref, 0.6, 60, level, "callback", "phone call-back", 6.0, 500.0, 25.0, [],
                          value_at_risk=value, lapsed=lapsed)


def test_the_weekly_budget_counts_what_was_sent_in_the_last_seven_days() -> None:
    policy = AlertPolicy(weekly_budget=5, winback_weekly_budget=2)
    pool = [candidate(f"w{i}", "orange", 100 - i) for i in range(8)] + [candidate(f"l{i}", "orange", 50, True) for i in range(4)]
    chosen = select_alerts(pool, {}, SentSoFar(today=0, last_7_days=3, winback_last_7_days=1), 100, policy)
    refs = [c.customer_id for c in chosen.alerts]
    assert refs == ["w0", "w1", "l0"]  # two early warnings and one win-back left in this week's budgets
    assert len(chosen.overflow) == 9, "everyone held back goes into the summary"


def test_highest_level_then_most_value_at_risk_first() -> None:
    pool = [candidate("big", "orange", 900.0), candidate("urgent", "purple", 50.0), candidate("mid", "red", 60.0)]
    chosen = select_alerts(pool, {}, SentSoFar(), 10, AlertPolicy(weekly_budget=2))
    assert [c.customer_id for c in chosen.alerts] == ["urgent", "mid"]


def test_each_list_has_its_own_cooldown() -> None:
    policy = AlertPolicy(cooldown_days=14, winback_cooldown_days=60)
    previous = {"w": PreviousAlert("orange", 80), "l": PreviousAlert("orange", 80)}
    pool = [candidate("w", "orange", 10.0), candidate("l", "orange", 10.0, lapsed=True)]
    chosen = select_alerts(pool, previous, SentSoFar(), 100, policy)
    assert [c.customer_id for c in chosen.alerts] == ["w"] and chosen.cooled == 1


def test_the_daily_cap_holds_for_both_lists_together() -> None:
    pool = [candidate(f"w{i}", "orange", 10.0) for i in range(3)] + [candidate("l", "red", 5.0, True)]
    chosen = select_alerts(pool, {}, SentSoFar(today=1), 100, AlertPolicy(daily_cap=3))
    assert len(chosen.alerts) == 2 and len(chosen.overflow) == 2
