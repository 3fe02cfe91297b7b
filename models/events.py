"""Customer events as early signals: complaints, service contacts, returns, online browsing, reviews, surveys.

The kinds are the customer-events contract (docs/ingest.md); the features are
pure functions of the events before as-of, per customer, set against the
customer's own past where a level means little alone (browsing without
buying, a survey score that fell). A store whose exports carry no events gets
NaN for all of them and `has_events` = 0, so one federated model serves stores
with and without them; in a store with events, a customer without any has
counts of zero.
"""

from __future__ import annotations

import numpy as np

from .store_data import DAY, StoreData

EVENT_KINDS = ("complaint", "complaint_resolved", "service_contact", "return", "online_visit", "cart_abandoned",
               "review", "survey", "coupon_redeemed")
KIND = {name: code for code, name in enumerate(EVENT_KINDS)}
EVENTS_SCHEMA = "retail.customer-events/1"

EVENT_FEATURES = (
    "complaints_90_log", "complaint_trend", "days_since_complaint_log", "unresolved_complaints",
    "service_contacts_90_log", "days_since_service_log", "returns_per_visit_180",
    "online_visits_30_log", "online_visit_trend", "browsing_without_buying", "carts_abandoned_30_log",
    "review_mean", "survey_last", "survey_change", "has_events",
)


def _counts(customer: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(customer[mask], minlength=n).astype(np.float64)


def _last_day(customer: np.ndarray, day: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, customer[mask], day[mask])
    return np.where(last >= 0, last, np.nan).astype(np.float64)


def event_features(data: StoreData, as_of_day: int, visit_days: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """Per customer of the store (all of them), each event feature at the start of `as_of_day`.

    `visit_days` is (customer, day) of the purchase visits before as-of, for
    the features that set events against purchases.
    """
    n = data.n_customers
    events = data.events.before(as_of_day * DAY)
    if events.empty:
        nan = np.full(n, np.nan)
        return {**{name: nan for name in EVENT_FEATURES[:-1]}, "has_events": np.zeros(n)}
    c, kind, value = events.customer, events.kind, events.value
    age = as_of_day - events.ts // DAY  # days ago, >= 1

    def count(name: str, within: int, since: int = 0) -> np.ndarray:
        return _counts(c, (kind == KIND[name]) & (age > since) & (age <= within), n)

    complaints_30, complaints_before = count("complaint", 30), count("complaint", 180, 30)
    last_complaint = _last_day(c, events.ts // DAY, kind == KIND["complaint"], n)
    last_service = _last_day(c, events.ts // DAY, kind == KIND["service_contact"], n)
    visit_customer, visit_day = visit_days
    visits_180 = _counts(visit_customer, as_of_day - visit_day <= 180, n)
    visits_30 = _counts(visit_customer, as_of_day - visit_day <= 30, n)
    online_30, online_before = count("online_visit", 30), count("online_visit", 180, 30)
    recent_review = (kind == KIND["review"]) & (age <= 365) & np.isfinite(value)
    reviews = _counts(c, recent_review, n)
    review_total = np.bincount(c[recent_review], weights=value[recent_review], minlength=n)
    review_mean = np.where(reviews > 0, review_total / np.maximum(reviews, 1), np.nan)
    survey_last, survey_change = _survey_scores(c, kind, value, n)
    return {
        "complaints_90_log": np.log1p(count("complaint", 90)),
        "complaint_trend": np.log((complaints_30 + 0.25) / 30) - np.log((complaints_before + 0.25) / 150),
        "days_since_complaint_log": _days_since_log(as_of_day, last_complaint),
        "unresolved_complaints": np.maximum(count("complaint", 180) - count("complaint_resolved", 180), 0),
        "service_contacts_90_log": np.log1p(count("service_contact", 90)),
        "days_since_service_log": _days_since_log(as_of_day, last_service),
        "returns_per_visit_180": count("return", 180) / np.maximum(visits_180, 1),
        "online_visits_30_log": np.log1p(online_30),
        "online_visit_trend": np.log((online_30 + 0.5) / 30) - np.log((online_before + 0.5) / 150),
        "browsing_without_buying": np.log((online_30 + 0.5) / (visits_30 + 0.5)),
        "carts_abandoned_30_log": np.log1p(count("cart_abandoned", 30)),
        "review_mean": review_mean,
        "survey_last": survey_last,
        "survey_change": survey_change,
        "has_events": np.ones(n),
    }


NEVER_DAYS = 730  # "never, as far as the events go back": a customer without any counts as two years ago


def _days_since_log(as_of_day: int, last_day: np.ndarray) -> np.ndarray:
    """log(1 + days since the last such event), capped, so "never" is far rather than the average."""
    days = np.where(np.isfinite(last_day), as_of_day - last_day, NEVER_DAYS)
    return np.log1p(np.minimum(days, NEVER_DAYS))


def _survey_scores(customer: np.ndarray, kind: np.ndarray, value: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(each customer's last survey score, that score minus the mean of their earlier ones), NaN where unknown.

    Events are in time order, so the last survey of a customer is their last row."""
    surveys = np.flatnonzero((kind == KIND["survey"]) & np.isfinite(value))
    last = np.full(n, np.nan)
    change = np.full(n, np.nan)
    if not len(surveys):
        return last, change
    who, score = customer[surveys], value[surveys]
    last[who] = score  # later rows overwrite earlier ones
    total = np.bincount(who, weights=score, minlength=n)
    count = np.bincount(who, minlength=n).astype(np.float64)
    earlier = count > 1
    with np.errstate(invalid="ignore", divide="ignore"):
        change[earlier] = last[earlier] - (total[earlier] - last[earlier]) / (count[earlier] - 1)
    return last, change


def recent_events(data: StoreData, as_of_day: int, customer: int, days: int = 90, limit: int = 10
                  ) -> list[dict[str, object]]:
    """A customer's latest events (kind, days ago, value), newest first: what an alert shows beside its reasons.

    Kinds, dates and numbers only: a note's text never leaves the box."""
    events = data.events.before(as_of_day * DAY)
    rows = np.flatnonzero((events.customer == customer) & (as_of_day - events.ts // DAY <= days))[::-1][:limit]
    return [{"kind": EVENT_KINDS[int(events.kind[r])], "days_ago": int(as_of_day - events.ts[r] // DAY),
             "value": None if not np.isfinite(events.value[r]) else float(events.value[r])} for r in rows]


# How staff read an event beside an alert's reasons ("complaint 12 days ago", "survey score 3, 30 days ago").
EVENT_LABELS = {
    "complaint": "complaint", "complaint_resolved": "complaint resolved", "service_contact": "service contact",
    "return": "return", "online_visit": "online visit", "cart_abandoned": "cart left online", "review": "review",
    "survey": "survey", "coupon_redeemed": "coupon redeemed",
}
_VALUE_WORDS = {"return": "of {:.2f}", "cart_abandoned": "of {:.2f}", "review": "rated {:g}", "survey": "score {:g}"}


def describe_event(kind: str, days_ago: int, value: float | None) -> str:
    """One recent event in staff's words; a value is shown only where the kind gives it a meaning."""
    words = EVENT_LABELS.get(kind, kind.replace("_", " "))
    if value is not None and kind in _VALUE_WORDS:
        words += " " + _VALUE_WORDS[kind].format(value) + ","
    when = "today" if days_ago == 0 else f"{days_ago} day{'s' if days_ago != 1 else ''} ago"
    return f"{words} {when}"
