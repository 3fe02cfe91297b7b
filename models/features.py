"""Customer features at an as-of date: pure numpy, and blind to anything at or after it.

Everything is computed from what happened strictly before `as_of` (a store-local
day boundary, in seconds). Values a store's data cannot support (no times of
day, no item counts, no door counts, fewer than two visits for a gap) are NaN;
the model's input layer turns NaN into "average" and indicator features tell it
which kind of store it is looking at. Rates are per day of history actually
available, so a store with four months of data is not mistaken for a store of
lapsing customers.

"Visits" are distinct days with a positive purchase, so exports with one row
per invoice line count the same as exports with one row per basket.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .events import KIND, event_features
from .schema import FEATURE_INDEX, FEATURE_NAMES
from .store_data import DAY, StoreData

WINDOWS = (30, 90, 180, 365)
RECENT_FOOTFALL_DAYS = 28
EARLIER_FOOTFALL_DAYS = 84
PEAK_HOURS = 4


@dataclass
class FeatureTable:
    """Features of the customers active at `as_of`, plus plain facts for reasons."""

    as_of_day: int
    customers: np.ndarray  # index into StoreData.customer_ids
    customer_ids: np.ndarray  # object
    values: np.ndarray  # float32 [n, len(FEATURE_NAMES)], NaN = unavailable
    facts: dict[str, np.ndarray]  # human-scale numbers used to phrase reasons and estimate CLV

    def __len__(self) -> int:
        return len(self.customers)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, FEATURE_INDEX[name]]


@dataclass
class Visits:
    """Distinct (customer, day) visits with a positive purchase, sorted by customer then day."""

    customer: np.ndarray
    day: np.ndarray
    spend: np.ndarray
    items: np.ndarray  # NaN where unknown
    online: np.ndarray  # 1 if any purchase that day was online, NaN if unknown


def visits_before(data: StoreData, bound_day: int) -> Visits:
    """Collapse the purchases made before `bound_day` into visit days."""
    keep = (data.customer >= 0) & (data.amount > 0) & (data.ts < bound_day * DAY)
    customer = data.customer[keep]
    day = data.ts[keep] // DAY
    key = customer * (1 << 24) + day
    unique, inverse = np.unique(key, return_inverse=True)
    n = len(unique)
    items = data.items[keep]
    known_items = ~np.isnan(items)
    item_sum = np.bincount(inverse, np.where(known_items, items, 0.0), minlength=n)
    item_known = np.bincount(inverse, known_items.astype(float), minlength=n)
    online = data.online[keep]
    known_online = ~np.isnan(online)
    online_max = np.zeros(n)
    np.maximum.at(online_max, inverse[known_online], online[known_online])
    online_known = np.bincount(inverse, known_online.astype(float), minlength=n)
    return Visits(
        customer=unique >> 24,
        day=unique & ((1 << 24) - 1),
        spend=np.bincount(inverse, data.amount[keep], minlength=n),
        items=np.where(item_known > 0, item_sum, np.nan),
        online=np.where(online_known > 0, online_max, np.nan),
    )


def _count(groups: np.ndarray, mask: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    w = None if weights is None else weights[mask]
    return np.bincount(groups[mask], weights=w, minlength=n).astype(np.float64)


def _mean_where_known(
    groups: np.ndarray, window: np.ndarray, values: np.ndarray, n: int
) -> tuple[float, np.ndarray | None]:
    """(1.0 if most rows carry the value, else 0.0; per-group mean of the known values in the window)."""
    known = ~np.isnan(values)
    if not len(known) or known.mean() <= 0.5:
        return 0.0, None
    total = _count(groups, window & known, n, np.nan_to_num(values))
    count = _count(groups, window & known, n)
    return 1.0, np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _group_median(groups: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Median of `values` per group (NaN for empty groups); groups are 0..n-1."""
    order = np.lexsort((values, groups))
    g, v = groups[order], values[order]
    counts = np.bincount(g, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    result = np.full(n, np.nan)
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    result[has] = (v[lo] + v[hi]) / 2
    return result


def _safe_log_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(numerator / denominator)
    return np.where(np.isfinite(ratio), ratio, np.nan)


def _hour_histograms(data: StoreData, bound_day: int, since_day: int, n: int) -> np.ndarray:
    """[n customers, 24] counts of timed purchases in [since_day, bound_day)."""
    keep = (
        (data.customer >= 0) & (data.amount > 0) & data.has_time
        & (data.ts < bound_day * DAY) & (data.ts >= since_day * DAY)
    )
    hours = (data.ts[keep] % DAY) // 3600
    flat = np.bincount(data.customer[keep] * 24 + hours, minlength=n * 24)
    return flat.reshape(n, 24).astype(np.float64)


def _footfall_by_hour(data: StoreData, start_day: int, end_day: int) -> tuple[np.ndarray, np.ndarray]:
    """(entries per hour of day, open hours per hour of day) over [start_day, end_day)."""
    foot = data.footfall
    keep = (foot.start >= start_day * DAY) & (foot.start < end_day * DAY) & (foot.entries > 0)
    hours = (foot.start[keep] % DAY) // 3600
    return (
        np.bincount(hours, weights=foot.entries[keep], minlength=24),
        np.bincount(hours, minlength=24).astype(np.float64),
    )


def _store_context(
    data: StoreData, as_of_day: int, hour_share: np.ndarray, timed: bool
) -> dict[str, np.ndarray | float]:
    """Footfall trend, conversion trend and crowding at each customer's usual hours."""
    nan = float("nan")
    context: dict[str, np.ndarray | float] = {
        "footfall_trend": nan, "conversion_trend": nan, "has_footfall": 0.0,
        "crowding_usual_hours": np.full(len(hour_share), np.nan),
        "crowding_trend": np.full(len(hour_share), np.nan),
    }
    recent_start = as_of_day - RECENT_FOOTFALL_DAYS
    earlier_start = recent_start - EARLIER_FOOTFALL_DAYS
    recent, recent_hours = _footfall_by_hour(data, recent_start, as_of_day)
    earlier, earlier_hours = _footfall_by_hour(data, earlier_start, recent_start)
    if recent_hours.sum() == 0:
        return context
    context["has_footfall"] = 1.0
    if earlier_hours.sum() == 0:
        return context
    recent_rate = recent.sum() / recent_hours.sum()
    earlier_rate = earlier.sum() / earlier_hours.sum()
    context["footfall_trend"] = float(_safe_log_ratio(np.array(recent_rate), np.array(earlier_rate)))
    in_store = (data.amount > 0) & ~(data.online == 1)
    sales_recent = np.count_nonzero(in_store & (data.ts >= recent_start * DAY) & (data.ts < as_of_day * DAY))
    sales_earlier = np.count_nonzero(in_store & (data.ts >= earlier_start * DAY) & (data.ts < recent_start * DAY))
    if sales_recent and sales_earlier:
        context["conversion_trend"] = float(
            _safe_log_ratio(np.array(sales_recent / recent.sum()), np.array(sales_earlier / earlier.sum()))
        )
    if timed:
        with np.errstate(divide="ignore", invalid="ignore"):
            recent_per_hour = np.where(recent_hours > 0, recent / recent_hours, 0.0)
            earlier_per_hour = np.where(earlier_hours > 0, earlier / earlier_hours, 0.0)
        open_mean = recent_per_hour[recent_hours > 0].mean()
        at_usual_recent = hour_share @ recent_per_hour
        at_usual_earlier = hour_share @ earlier_per_hour
        context["crowding_usual_hours"] = _safe_log_ratio(at_usual_recent, np.full(len(hour_share), open_mean))
        context["crowding_trend"] = _safe_log_ratio(at_usual_recent, at_usual_earlier)
    return context


def _rhythm(c: np.ndarray, d: np.ndarray, as_of_day: int, n_all: int, usual_gap: np.ndarray,
            recency: np.ndarray) -> dict[str, np.ndarray]:
    """The customer's own rhythm over the whole history: BTYD summaries and how the last gaps compare.

    `c`, `d` are visit days sorted by customer then day. The BTYD summaries
    are x (repeat visits), t_x (first to last visit) and T (first visit to
    as-of); the gap ratios say whether visits are thinning (the last gaps
    longer than usual) and whether this silence is already longer than any
    the customer came back from.
    """
    visits = np.bincount(c, minlength=n_all).astype(np.float64)
    first = np.full(n_all, np.nan)
    last = np.full(n_all, np.nan)
    if len(c):
        starts = np.r_[True, c[1:] != c[:-1]]
        ends = np.r_[c[1:] != c[:-1], True]
        first[c[starts]] = d[starts]
        last[c[ends]] = d[ends]
    same = c[1:] == c[:-1] if len(c) else np.zeros(0, dtype=bool)
    gap = np.full(len(c), np.nan)
    if len(c):
        gap[1:] = np.where(same, d[1:] - d[:-1], np.nan)
    longest = np.full(n_all, np.nan)
    known = np.isfinite(gap)
    np.fmax.at(longest, c[known], gap[known])
    # the last three gaps of each customer, at their last visits
    last_gaps = np.full((n_all, 3), np.nan)
    if len(c):
        ends_at = np.flatnonzero(np.r_[c[1:] != c[:-1], True])
        for back in range(3):
            at = ends_at - back
            ok = (at >= 0) & (c[np.maximum(at, 0)] == c[ends_at])
            last_gaps[c[ends_at[ok]], back] = gap[at[ok]]
    counted = np.isfinite(last_gaps).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recent_mean = np.where(counted > 0, np.nansum(last_gaps, axis=1) / np.maximum(counted, 1), np.nan)
    age = as_of_day - first
    with np.errstate(invalid="ignore", divide="ignore"):
        position = np.where(age > 0, (last - first) / age, np.nan)
    return {
        "repeat_visits_log": np.log1p(np.maximum(visits - 1, 0)),
        "last_visit_position": position,
        "silence_vs_longest_gap": _safe_log_ratio(recency, longest),
        "last_gap_rel": _safe_log_ratio(last_gaps[:, 0], usual_gap),
        "recent_gaps_rel": _safe_log_ratio(recent_mean, usual_gap),
        "longest_gap": longest,
    }


def _event_facts(data: StoreData, as_of_day: int, n_all: int, c: np.ndarray, d: np.ndarray,
                 active: np.ndarray) -> dict[str, np.ndarray]:
    """Plain counts behind the event reasons ("2 complaints in the last 30 days, one unresolved")."""
    events = data.events.before(as_of_day * DAY)
    age = as_of_day - events.ts // DAY

    def count(kind: str, within: int) -> np.ndarray:
        mask = (events.kind == KIND[kind]) & (age <= within)
        return np.bincount(events.customer[mask], minlength=n_all).astype(np.float64)[active]

    return {
        "complaints_30": count("complaint", 30),
        "complaints_90": count("complaint", 90),
        "unresolved_180": np.maximum(count("complaint", 180) - count("complaint_resolved", 180), 0),
        "service_90": count("service_contact", 90),
        "returns_180": count("return", 180),
        "online_visits_30": count("online_visit", 30),
        "carts_abandoned_30": count("cart_abandoned", 30),
        "store_visits_30": np.bincount(c[as_of_day - d <= 30], minlength=n_all).astype(np.float64)[active],
    }


def build_features(data: StoreData, as_of_day: int, lookback_days: int = 365) -> FeatureTable:
    """Features at the start of `as_of_day` for customers with a visit in the lookback window."""
    n_all = data.n_customers
    visits = visits_before(data, as_of_day)
    span = max(1, as_of_day - data.first_day) if len(data.ts) else 1
    c, d, spend = visits.customer, visits.day, visits.spend
    age = as_of_day - d  # days ago, >= 1

    last_day = np.full(n_all, -1, dtype=np.int64)
    np.maximum.at(last_day, c, d)
    first_day = np.full(n_all, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_day, c, d)
    active = np.flatnonzero((last_day >= 0) & (as_of_day - last_day <= lookback_days))
    n = len(active)
    out = np.full((n, len(FEATURE_NAMES)), np.nan, dtype=np.float64)
    col = FEATURE_INDEX

    def put(name: str, values: np.ndarray | float) -> None:
        out[:, col[name]] = values[active] if isinstance(values, np.ndarray) and len(values) == n_all else values

    # recency and frequency
    recency = (as_of_day - last_day).astype(np.float64)
    put("recency_log", np.log1p(recency))
    rates = {}
    for window in WINDOWS:
        effective = min(window, span)
        in_window = age <= window
        count = _count(c, in_window, n_all)
        money = _count(c, in_window, n_all, spend)
        rates[window] = count * 30.0 / effective
        put(f"visits_{window}_rate", np.log1p(rates[window]))
        if window != 180:
            put(f"spend_{window}_rate", np.log1p(np.maximum(money, 0) * 30.0 / effective))
    visits_365 = _count(c, age <= 365, n_all)
    spend_365 = _count(c, age <= 365, n_all, spend)
    put("basket_mean_log", np.log1p(np.where(visits_365 > 0, spend_365 / np.maximum(visits_365, 1), np.nan)))
    periods = np.zeros((n_all, 12), dtype=bool)
    recent12 = age <= 360
    periods[c[recent12], np.minimum(11, (age[recent12] - 1) // 30)] = True
    put("active_months", periods.sum(axis=1) / max(1, min(12, span // 30)))

    # gaps between visits (last 365 days)
    same = (c[1:] == c[:-1]) & (age[1:] <= 365)
    gap_customer = c[1:][same]
    gaps = (d[1:] - d[:-1])[same].astype(np.float64)
    n_gaps = np.bincount(gap_customer, minlength=n_all)
    gap_sum = np.bincount(gap_customer, weights=gaps, minlength=n_all)
    gap_sq = np.bincount(gap_customer, weights=gaps**2, minlength=n_all)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap_mean = np.where(n_gaps > 0, gap_sum / n_gaps, np.nan)
        gap_std = np.sqrt(np.maximum(0, np.where(n_gaps > 1, gap_sq / n_gaps - gap_mean**2, np.nan)))
    usual_gap = _group_median(gap_customer, gaps, n_all)
    put("gap_mean_log", np.log1p(gap_mean))
    put("gap_cv", np.where(n_gaps > 1, gap_std / gap_mean, np.nan))
    put("overdue_log", _safe_log_ratio(recency, usual_gap))
    store_gap = np.nanmedian(usual_gap[active]) if n and np.isfinite(usual_gap[active]).any() else np.nan
    put("store_relative_recency", _safe_log_ratio(recency, np.full(n_all, store_gap)))
    rhythm = _rhythm(c, d, as_of_day, n_all, usual_gap, recency)
    for name in ("repeat_visits_log", "last_visit_position", "silence_vs_longest_gap", "last_gap_rel",
                 "recent_gaps_rel"):
        put(name, rhythm[name])
    store_rate = np.median(rates[90][active]) if n else np.nan
    put("store_relative_frequency", _safe_log_ratio(rates[90] + 0.1, np.full(n_all, store_rate + 0.1)))
    weekday = np.bincount(c * 7 + (d + 3) % 7, minlength=n_all * 7).reshape(n_all, 7)  # day 0 was a Thursday
    with np.errstate(divide="ignore", invalid="ignore"):
        concentration = weekday.max(axis=1) / weekday.sum(axis=1)
    put("weekday_concentration", np.where(weekday.sum(axis=1) >= 3, concentration, np.nan))

    # trends, smoothed so one visit more or less does not swing them
    def window_count(lo: int, hi: int, weights: np.ndarray | None = None) -> np.ndarray:
        return _count(c, (age > lo) & (age <= hi), n_all, weights)

    for name, recent, earlier in (("visit_trend_30", 30, 90), ("visit_trend_90", 90, 180)):
        if span >= recent + earlier:
            trend = np.log((window_count(0, recent) + 0.5) / recent) - np.log(
                (window_count(recent, recent + earlier) + 0.5) / earlier
            )
            put(name, trend)
    basket_all = np.where(visits_365 > 0, spend_365 / np.maximum(visits_365, 1), np.nan)
    n_recent, s_recent = window_count(0, 90), window_count(0, 90, spend)
    n_before, s_before = window_count(90, 365), window_count(90, 365, spend)
    if span > 120:
        put("basket_trend", _safe_log_ratio((s_recent + basket_all) / (n_recent + 1), (s_before + basket_all) / (n_before + 1)))
    last_spend = np.full(n_all, np.nan)
    is_last = np.append(c[1:] != c[:-1], True) if len(c) else np.zeros(0, bool)
    last_spend[c[is_last]] = spend[is_last]
    put("last_basket_rel", _safe_log_ratio(last_spend, basket_all))

    # tenure
    tenure = (as_of_day - first_day).astype(np.float64)
    put("tenure_log", np.log1p(np.where(last_day >= 0, tenure, np.nan)))
    put("tenure_censored", (first_day - data.first_day <= 14).astype(np.float64))

    # refunds (any refund row of the customer in the last 365 days)
    refunds = (data.customer >= 0) & (data.amount < 0) & (data.ts < as_of_day * DAY) & (
        data.ts >= (as_of_day - 365) * DAY
    )
    refund_count = np.bincount(data.customer[refunds], minlength=n_all).astype(np.float64)
    refund_money = -np.bincount(data.customer[refunds], weights=data.amount[refunds], minlength=n_all)
    put("refund_share", refund_count / np.maximum(visits_365, 1))
    put("refund_amount_share", np.where(spend_365 > 0, refund_money / np.maximum(spend_365, 1e-9), np.nan))

    # channel, items, hours: only where the store's data carries them
    has_channel, online_share = _mean_where_known(c, age <= 365, visits.online, n_all)
    put("has_channel", has_channel)
    if online_share is not None:
        put("online_share", online_share)
    has_items, items_per_visit = _mean_where_known(c, age <= 365, visits.items, n_all)
    put("has_items", has_items)
    if items_per_visit is not None:
        put("items_per_visit_log", np.log1p(items_per_visit))
    window_start = as_of_day - 365
    timed_rows = data.has_time & (data.ts < as_of_day * DAY) & (data.ts >= window_start * DAY)
    timed = bool(timed_rows.any()) and data.has_time[data.ts < as_of_day * DAY].mean() > 0.5
    put("has_time", float(timed))
    hours = _hour_histograms(data, as_of_day, window_start, n_all) if timed else np.zeros((n_all, 24))
    hour_count = hours.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        hour_share = np.where(hour_count[:, None] > 0, hours / hour_count[:, None], 0.0)
    if timed:
        peak = np.argsort(hours.sum(axis=0))[-PEAK_HOURS:]
        put("peak_share", np.where(hour_count > 0, hours[:, peak].sum(axis=1) / np.maximum(hour_count, 1), np.nan))

    context = _store_context(data, as_of_day, hour_share[active], timed)
    for name, value in context.items():
        if isinstance(value, np.ndarray):
            out[:, col[name]] = value
        else:
            out[:, col[name]] = value
    if timed:
        no_hours = hour_count[active] == 0
        out[no_hours, col["crowding_usual_hours"]] = np.nan
        out[no_hours, col["crowding_trend"]] = np.nan

    events = event_features(data, as_of_day, (c, d))
    for name, values in events.items():
        put(name, values)
    facts = {
        **_event_facts(data, as_of_day, n_all, c, d, active),
        "recency_days": recency[active],
        "usual_gap_days": usual_gap[active],
        "longest_gap_days": rhythm["longest_gap"][active],
        "visits_90": window_count(0, 90)[active],
        "visits_prev_90": window_count(90, 180)[active],
        "basket_90": np.where(n_recent > 0, s_recent / np.maximum(n_recent, 1), np.nan)[active],
        "basket_before": np.where(n_before > 0, s_before / np.maximum(n_before, 1), np.nan)[active],
        "spend_365": spend_365[active],
        "history_days": np.full(n, float(min(365, span))),
        "refunds_365": refund_count[active],
        "refund_amount_365": refund_money[active],
        "tenure_days": tenure[active],
        "visit_days_total": np.bincount(c, minlength=n_all)[active].astype(np.float64),
        "usual_hour": np.where(hour_count[active] > 0, hours[active].argmax(axis=1), -1).astype(np.float64),
    }
    return FeatureTable(
        as_of_day=as_of_day,
        customers=active,
        customer_ids=data.customer_ids[active] if len(data.customer_ids) else np.zeros(0, dtype=object),
        values=out.astype(np.float32),
        facts=facts,
    )
