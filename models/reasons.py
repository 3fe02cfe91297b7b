"""Why a customer is at risk: the feature groups that push their risk up most, in staff's words.

Occlusion against the population: each group of a customer's features is
replaced by the store's median customer's values, and the drop in the model's
logit is that group's contribution. It needs only the model's predictions, so
it runs on the store box with onnxruntime. The two or three largest positive
contributions become reasons, phrased from plain facts ("last visit 41 days
ago, usually every 12 days").
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .features import FeatureTable
from .schema import FEATURE_INDEX, FEATURES, GROUP_COLUMNS, INDICATORS

Predict = Callable[[np.ndarray], np.ndarray]
MIN_CONTRIBUTION = 0.05  # logit units; smaller pushes are not worth a sentence
REASON_GROUPS = tuple(
    group for group, columns in GROUP_COLUMNS.items()
    if any(FEATURES[i].name not in INDICATORS for i in columns)
)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def group_contributions(predict: Predict, values: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """[n, len(REASON_GROUPS)] logit drop when each group is set to the baseline."""
    n = len(values)
    if n == 0:
        return np.zeros((0, len(REASON_GROUPS)))
    batch = np.repeat(values[None, :, :], len(REASON_GROUPS) + 1, axis=0)
    for g, group in enumerate(REASON_GROUPS, start=1):
        columns = [i for i in GROUP_COLUMNS[group] if FEATURES[i].name not in INDICATORS]
        batch[g][:, columns] = baseline[columns]
    logits = _logit(predict(batch.reshape(-1, values.shape[1]).astype(np.float32))).reshape(len(batch), n)
    return (logits[0][None, :] - logits[1:]).T


def _times(count: int, what: str) -> str:
    return f"{count} {what}" + ("" if count == 1 else "s")


def _days(value: float) -> str:
    return f"{int(round(value))} day" + ("" if int(round(value)) == 1 else "s")


def _phrase(group: str, facts: dict[str, float], store: dict[str, float]) -> tuple[str, str, float, float | None]:
    """(text, feature, value, usual value) for one customer's reason."""
    f = facts
    if group == "recency":
        gap = f["usual_gap_days"]
        if np.isfinite(gap):
            return (f"last visit {_days(f['recency_days'])} ago, usually every {_days(gap)}",
                    "days_since_last_visit", f["recency_days"], float(round(gap)))
        return (f"last visit {_days(f['recency_days'])} ago", "days_since_last_visit", f["recency_days"],
                store.get("usual_gap_days"))
    if group in ("frequency", "frequency_trend"):
        recent, before = int(f["visits_90"]), int(f["visits_prev_90"])
        if before > recent:
            text = f"{recent} visit{'s' if recent != 1 else ''} in the last 90 days, down from {before} in the 90 days before"
        else:
            text = f"only {recent} visit{'s' if recent != 1 else ''} in the last 90 days"
        return (text, "visits_last_90_days", f["visits_90"], f["visits_prev_90"])
    if group in ("spend", "basket_trend"):
        if np.isfinite(f["basket_90"]) and np.isfinite(f["basket_before"]):
            return (f"average basket {f['basket_90']:.2f} in the last 90 days, was {f['basket_before']:.2f}",
                    "average_basket_90_days", round(f["basket_90"], 2), round(f["basket_before"], 2))
        monthly = f["spend_365"] * 30 / max(1.0, f["history_days"])
        return (f"spends about {monthly:.2f} a month", "monthly_spend", round(monthly, 2), store.get("monthly_spend"))
    if group == "regularity":
        return ("visits have become irregular", "visit_gap_variation", f.get("gap_cv", float("nan")), None)
    if group == "tenure":
        return (f"member for {_days(f['tenure_days'])} only", "days_since_first_visit", f["tenure_days"], None)
    if group == "refunds":
        return (f"returned {int(f['refunds_365'])} purchase(s) in the last year ({f['refund_amount_365']:.2f})",
                "refunds_last_year", f["refunds_365"], None)
    if group == "channel":
        return ("buys online more than in store", "online_share", f.get("online_share", float("nan")), None)
    if group == "hours":
        return ("shops at the store's busiest hours", "peak_hour_share", f.get("peak_share", float("nan")), None)
    if group == "items":
        return ("buys fewer items per visit", "items_per_visit", f.get("items_per_visit", float("nan")), None)
    if group == "store_traffic":
        change = np.expm1(f.get("footfall_trend", 0.0)) * 100
        return (f"store traffic {change:+.0f}% over the last 4 weeks", "store_traffic_change_pct", round(change), None)
    if group == "complaints":
        recent, unresolved = int(f["complaints_30"]), int(f["unresolved_180"])
        count = recent if recent else int(f["complaints_90"])
        window = 30 if recent else 90
        text = f"{_times(count, 'complaint')} in the last {window} days"
        if unresolved:
            text += f", {'one' if unresolved == 1 else unresolved} unresolved"
        return (text, "complaints", float(count), None)
    if group == "service":
        return (f"{_times(int(f['service_90']), 'service contact')} in the last 90 days", "service_contacts_90_days",
                f["service_90"], None)
    if group == "returns":
        return (f"returned {_times(int(f['returns_180']), 'purchase')} in the last 180 days", "returns_180_days",
                f["returns_180"], None)
    if group == "online":
        looked, carts = int(f["online_visits_30"]), int(f["carts_abandoned_30"])
        if carts and not f["store_visits_30"]:
            text = f"left {_times(carts, 'cart')} online this month without buying"
        elif f["store_visits_30"]:
            text = f"looked online {_times(looked, 'time')} this month, bought {_times(int(f['store_visits_30']), 'time')}"
        else:
            text = f"looked online {_times(looked, 'time')} this month without buying"
        return (text, "online_visits_30_days", float(looked), f["store_visits_30"])
    if group == "feedback":
        survey, change = f.get("survey_last", float("nan")), f.get("survey_change", float("nan"))
        if np.isfinite(survey) and np.isfinite(change) and change < 0:
            return (f"survey score {survey:.0f}, was {survey - change:.0f}", "survey_score", survey, survey - change)
        if np.isfinite(survey):
            return (f"survey score {survey:.0f} of 10", "survey_score", survey, None)
        rating = f.get("review_mean", float("nan"))
        return (f"rated the store {rating:.1f} of 5", "review_rating", rating, None)
    if group == "crowding":
        change = np.expm1(f.get("crowding_trend", 0.0)) * 100
        hour = int(f["usual_hour"])
        return (f"usually shops around {hour}:00, now {change:+.0f}% busier at that hour",
                "crowding_change_pct", round(change), None)
    return (group, group, float("nan"), None)


def explain(
    predict: Predict,
    table: FeatureTable,
    rows: np.ndarray,
    max_reasons: int = 3,
) -> list[list[dict[str, Any]]]:
    """Ordered reasons for the customers at `rows` of the table (strongest first)."""
    if len(rows) == 0:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # masked features are all-NaN: baseline NaN
        baseline = np.nanmedian(table.values, axis=0).astype(np.float32)
    contributions = group_contributions(predict, table.values[rows], baseline)
    store = {
        "usual_gap_days": float(np.nanmedian(table.facts["usual_gap_days"])) if np.isfinite(table.facts["usual_gap_days"]).any() else None,
        "monthly_spend": float(np.median(table.facts["spend_365"] * 30 / np.maximum(1.0, table.facts["history_days"]))),
    }
    extra = {
        name: table.column(name)
        for name in ("gap_cv", "online_share", "peak_share", "footfall_trend", "crowding_trend", "review_mean",
                     "survey_last", "survey_change")
    }
    extra["items_per_visit"] = np.expm1(table.column("items_per_visit_log"))
    result = []
    for k, row in enumerate(rows):
        facts = {name: float(values[row]) for name, values in table.facts.items()}
        facts.update({name: float(values[row]) for name, values in extra.items()})
        order = np.argsort(-contributions[k])
        reasons: list[dict[str, Any]] = []
        seen_text: set[str] = set()
        for g in order:
            if contributions[k, g] < MIN_CONTRIBUTION or len(reasons) >= max_reasons:
                break
            text, feature, value, usual = _phrase(REASON_GROUPS[g], facts, store)
            if text in seen_text:
                continue  # frequency and its trend can say the same thing
            seen_text.add(text)
            reasons.append({
                "text": text,
                "feature": feature,
                "value": None if value is None or not np.isfinite(value) else round(float(value), 2),
                "usual": None if usual is None or not np.isfinite(usual) else round(float(usual), 2),
                "group": REASON_GROUPS[g],
                "contribution": round(float(contributions[k, g]), 3),
            })
        result.append(reasons)
    return result


__all__ = ["REASON_GROUPS", "explain", "group_contributions", "FEATURE_INDEX"]
