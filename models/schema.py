"""The feature schema: names, order and meaning, shared by training and scoring.

A model records the schema version it was trained with; a store box refuses a
model whose schema it does not build. Features are grouped: a group is what a
reason talks about ("visits less often than before"), and occlusion for
reasons replaces a whole group at once.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = "churn-features/3"


@dataclass(frozen=True)
class Feature:
    name: str
    group: str
    description: str


FEATURES: tuple[Feature, ...] = (
    Feature("recency_log", "recency", "log(1 + days since the last visit)"),
    Feature("overdue_log", "recency", "log(days since the last visit / the customer's usual gap)"),
    Feature("store_relative_recency", "recency", "log(days since the last visit / the store's typical gap)"),
    Feature("silence_vs_longest_gap", "recency", "log(days since the last visit / the longest gap ever come back from)"),
    Feature("last_visit_position", "recency", "days from the first to the last visit / days from the first visit to as-of"),
    Feature("visits_30_rate", "frequency", "log(1 + visit days per 30 days, last 30 days)"),
    Feature("visits_90_rate", "frequency", "log(1 + visit days per 30 days, last 90 days)"),
    Feature("visits_180_rate", "frequency", "log(1 + visit days per 30 days, last 180 days)"),
    Feature("visits_365_rate", "frequency", "log(1 + visit days per 30 days, last 365 days)"),
    Feature("store_relative_frequency", "frequency", "log(90-day visit rate / the store's median rate)"),
    Feature("active_months", "frequency", "share of the last twelve 30-day periods with a visit"),
    Feature("repeat_visits_log", "frequency", "log(1 + visits after the first, whole history)"),
    Feature("visit_trend_30", "frequency_trend", "log(visit rate last 30 days / days 30-120 before)"),
    Feature("visit_trend_90", "frequency_trend", "log(visit rate last 90 days / days 90-270 before)"),
    Feature("last_gap_rel", "frequency_trend", "log(the last gap between visits / the usual gap)"),
    Feature("recent_gaps_rel", "frequency_trend", "log(mean of the last three gaps / the usual gap)"),
    Feature("spend_30_rate", "spend", "log(1 + spend per 30 days, last 30 days)"),
    Feature("spend_90_rate", "spend", "log(1 + spend per 30 days, last 90 days)"),
    Feature("spend_365_rate", "spend", "log(1 + spend per 30 days, last 365 days)"),
    Feature("basket_mean_log", "spend", "log(1 + spend per visit, last 365 days)"),
    Feature("basket_trend", "basket_trend", "log(spend per visit last 90 days / days 90-365 before)"),
    Feature("last_basket_rel", "basket_trend", "log(spend of the last visit / usual spend per visit)"),
    Feature("gap_mean_log", "regularity", "log(1 + mean days between visits)"),
    Feature("gap_cv", "regularity", "coefficient of variation of the days between visits"),
    Feature("weekday_concentration", "regularity", "share of visits on the customer's usual weekday"),
    Feature("tenure_log", "tenure", "log(1 + days since the first visit on record)"),
    Feature("tenure_censored", "tenure", "1 if the first visit on record is at the start of the data"),
    Feature("refund_share", "refunds", "refunds per visit, last 365 days"),
    Feature("refund_amount_share", "refunds", "refunded amount / spend, last 365 days"),
    Feature("online_share", "channel", "share of visit days with an online purchase"),
    Feature("has_channel", "channel", "1 if the store's exports carry a channel"),
    Feature("peak_share", "hours", "share of visits in the store's four busiest hours"),
    Feature("has_time", "hours", "1 if the store's exports carry a time of day"),
    Feature("items_per_visit_log", "items", "log(1 + items per visit)"),
    Feature("has_items", "items", "1 if the store's exports carry item counts"),
    Feature("footfall_trend", "store_traffic", "log(entries per open hour last 28 days / 84 days before)"),
    Feature("conversion_trend", "store_traffic", "log(conversion last 28 days / 84 days before)"),
    Feature("has_footfall", "store_traffic", "1 if the store has door counts"),
    Feature("crowding_usual_hours", "crowding", "log(entries at the customer's usual hours / store hourly mean)"),
    Feature("crowding_trend", "crowding", "log(entries at the customer's usual hours, last 28 days / 84 before)"),
    Feature("complaints_90_log", "complaints", "log(1 + complaints in the last 90 days)"),
    Feature("complaint_trend", "complaints", "log(complaint rate last 30 days / days 30-180 before)"),
    Feature("days_since_complaint_log", "complaints", "log(1 + days since the last complaint, at most 730)"),
    Feature("unresolved_complaints", "complaints", "complaints in the last 180 days not marked resolved"),
    Feature("service_contacts_90_log", "service", "log(1 + service contacts in the last 90 days)"),
    Feature("days_since_service_log", "service", "log(1 + days since the last service contact, at most 730)"),
    Feature("returns_per_visit_180", "returns", "returns logged by the service desk per visit, last 180 days"),
    Feature("online_visits_30_log", "online", "log(1 + online visits in the last 30 days)"),
    Feature("online_visit_trend", "online", "log(online visit rate last 30 days / days 30-180 before)"),
    Feature("browsing_without_buying", "online", "log(online visits / store visits, last 30 days)"),
    Feature("carts_abandoned_30_log", "online", "log(1 + carts abandoned in the last 30 days)"),
    Feature("review_mean", "feedback", "mean review rating, last 365 days"),
    Feature("survey_last", "feedback", "the last survey score"),
    Feature("survey_change", "feedback", "the last survey score minus the customer's earlier ones"),
    Feature("has_events", "event_data", "1 if the store's exports carry customer events"),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(f.group for f in FEATURES))
GROUP_COLUMNS: dict[str, tuple[int, ...]] = {
    group: tuple(i for i, f in enumerate(FEATURES) if f.group == group) for group in GROUPS
}
# Indicators say what the store's data holds; they are never a customer's reason.
INDICATORS = frozenset({"has_channel", "has_time", "has_items", "has_footfall", "tenure_censored", "has_events"})
