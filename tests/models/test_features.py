"""Features on hand-made customers, their masks, and that nothing after as-of leaks in."""

from __future__ import annotations

import numpy as np
import pytest

from models.features import build_features
from models.labels import training_set
from models.survival import survival_set
from models.schema import FEATURE_NAMES
from models.store_data import DAY, Footfall, load_store_data
from tests.models.helpers import day_number, every, history

AS_OF = day_number("2025-06-01")


def row(table, customer: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    i = list(table.customer_ids).index(customer)
    return {name: float(table.values[i, j]) for j, name in enumerate(FEATURE_NAMES)} | {
        f"fact:{k}": float(v[i]) for k, v in table.facts.items()
    }


@pytest.fixture
def store():  # type: ignore[no-untyped-def]
    rows = (
        every(7, "2024-06-01", "2025-05-30", "steady")          # weekly, still coming
        + every(7, "2024-06-01", "2025-03-01", "lapsing")       # weekly, then nothing for 3 months
        + every(3, "2025-05-01", "2025-05-31", "newbie", 5.0)   # joined a month ago
        + [("", "2025-05-20T10:00:00", 3.0), ("steady", "2025-04-02T18:00:00", -10.0)]
    )
    return history(rows)


def test_recency_gap_and_frequency_of_hand_made_customers(store) -> None:  # type: ignore[no-untyped-def]
    table = build_features(store, AS_OF)
    assert set(table.customer_ids) == {"steady", "lapsing", "newbie"}  # anonymous sales are not customers
    steady, lapsing = row(table, "steady"), row(table, "lapsing")
    assert steady["fact:recency_days"] == AS_OF - day_number("2025-05-24")
    assert lapsing["fact:recency_days"] == AS_OF - day_number("2025-03-01")
    assert steady["fact:usual_gap_days"] == 7 == lapsing["fact:usual_gap_days"]
    assert lapsing["overdue_log"] == pytest.approx(np.log(lapsing["fact:recency_days"] / 7))
    assert steady["visits_90_rate"] == pytest.approx(np.log1p(13 * 30 / 90), rel=0.1)
    assert lapsing["visits_30_rate"] == 0.0
    assert lapsing["visit_trend_90"] < -1 < 0 < steady["visit_trend_90"] + 1
    assert steady["refund_share"] > 0 and lapsing["refund_share"] == 0


def test_short_or_absent_data_is_masked_not_guessed(store) -> None:  # type: ignore[no-untyped-def]
    table = build_features(store, AS_OF)
    newbie = row(table, "newbie")
    assert np.isnan(newbie["items_per_visit_log"]) and newbie["has_items"] == 0  # no item counts exported
    assert np.isnan(newbie["online_share"]) and newbie["has_channel"] == 0
    assert np.isnan(newbie["footfall_trend"]) and newbie["has_footfall"] == 0
    assert newbie["has_time"] == 1 and not np.isnan(newbie["peak_share"])
    date_only = history([(c, t[:10], a) for c, t, a in every(7, "2024-06-01", "2025-05-30", "x")])
    assert np.isnan(build_features(date_only, AS_OF).column("peak_share")).all()
    assert build_features(date_only, AS_OF).column("has_time")[0] == 0


def test_rates_use_the_history_that_exists() -> None:
    """Four months of data: a weekly shopper's 365-day rate is weekly, not a third of it."""
    short = history(every(7, "2025-02-01", "2025-05-30", "weekly"))
    table = build_features(short, AS_OF)
    assert table.column("visits_365_rate")[0] == pytest.approx(table.column("visits_90_rate")[0], rel=0.15)
    assert np.isnan(table.column("visit_trend_90")[0])  # not enough history for the earlier window


def test_footfall_context_when_the_store_counts_people() -> None:
    rows = every(7, "2024-06-01", "2025-05-30", "evening", hour=18)
    hours = np.arange(day_number("2025-01-01") * 24, AS_OF * 24)
    is_evening = (hours % 24) == 18
    recent = hours >= (AS_OF - 28) * 24
    entries = np.where(is_evening, np.where(recent, 200.0, 100.0), 50.0)
    data = history(rows)
    data.footfall = Footfall(hours * 3600, entries)
    c = row(build_features(data, AS_OF), "evening")
    assert c["has_footfall"] == 1
    assert c["crowding_trend"] == pytest.approx(np.log(2.0), rel=1e-3)  # twice as busy at 18:00
    assert c["crowding_usual_hours"] > 0


def test_nothing_at_or_after_as_of_changes_features_or_training_labels(chain_dbs) -> None:  # type: ignore[no-untyped-def]
    data = load_store_data(chain_dbs[0])
    as_of = day_number("2025-09-01")
    before = build_features(data, as_of)
    train_before = training_set(data, as_of, 60)
    planted = data.until(as_of * DAY)  # drop the real future...
    # ...and plant a different one: big purchases by everyone, from the first instant of as-of.
    future_ts = np.concatenate([np.full(len(data.customer_ids), as_of * DAY), np.full(len(data.customer_ids), (as_of + 30) * DAY)])
    customers = np.concatenate([np.arange(len(data.customer_ids))] * 2)
    planted.customer = np.concatenate([planted.customer, customers])
    planted.ts = np.concatenate([planted.ts, future_ts])
    planted.amount = np.concatenate([planted.amount, np.full(len(customers), 999.0)])
    planted.has_time = np.concatenate([planted.has_time, np.ones(len(customers), bool)])
    planted.items = np.concatenate([planted.items, np.full(len(customers), 3.0)])
    planted.online = np.concatenate([planted.online, np.zeros(len(customers))])
    after = build_features(planted, as_of)
    np.testing.assert_array_equal(before.customers, after.customers)
    np.testing.assert_array_equal(before.values, after.values)
    train_after = training_set(planted, as_of, 60)
    np.testing.assert_array_equal(train_before.values, train_after.values)
    np.testing.assert_array_equal(train_before.labels, train_after.labels)
    assert max(train_before.cutoff) + 60 <= as_of  # every label window ends by as-of
    rows_before, rows_after = survival_set(data, as_of), survival_set(planted, as_of)
    for name in ("values", "event_days", "window_days", "window_visits", "last_visit", "cutoff"):
        np.testing.assert_array_equal(getattr(rows_before, name), getattr(rows_after, name), err_msg=name)
    assert (rows_before.last_visit <= rows_before.window_days).all()  # every window ends at as-of
