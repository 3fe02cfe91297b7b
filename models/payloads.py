"""The JSON payloads on the MQTT topics: one definition, checked the same way by every side.

Contract schemas (docs/architecture.md):

- `retail.churn-alert/1` on `.../alert/churn`: one customer's alert;
- `retail.churn-alert-overflow/1` on `.../alert/churn`: the alerts beyond a
  store's daily cap, summarised in one message (never dropped silently);
- `retail.churn-ack/1` on `.../ack`: what the aggregator has stored;
- `retail.store-status/1` on `.../status` (retained; the Last Will says offline);
- `retail.store-metrics/1` on `.../metrics`: health and footfall aggregates.

`check_*` raise PayloadError with a reason naming the field: the aggregator
puts such a payload in its dead-letter table with that reason.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Any

from .events import EVENT_KINDS
from .risk import LEVELS
from .safe_json import JsonRefused, loads_bounded

ALERT_SCHEMA = "retail.churn-alert/1"
OVERFLOW_SCHEMA = "retail.churn-alert-overflow/1"
ACK_SCHEMA = "retail.churn-ack/1"
STATUS_SCHEMA = "retail.store-status/1"
METRICS_SCHEMA = "retail.store-metrics/1"
MAX_PAYLOAD_BYTES = 256 * 1024
# An alert is an early warning (still buying, drifting away) or a win-back (lapsed by their own rhythm).
ALERT_KINDS = ("early_warning", "win_back")
# What an alert may carry of the customer's own events: a few, each a kind, an age and a number, never text.
RECENT_EVENTS_MAX = 10
RECENT_EVENT_FIELDS = ("kind", "days_ago", "value")
MAX_DAYS_AGO = 3660


class PayloadError(Exception):
    """A payload that breaks its schema; the message names the field."""


def decode(raw: bytes) -> dict[str, Any]:
    """A JSON object within bounds (size, nesting, finite numbers, 64-bit integers, valid UTF-8), or PayloadError."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(raw)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        document = loads_bounded(raw, MAX_PAYLOAD_BYTES)
    except JsonRefused as exc:
        raise PayloadError(str(exc)) from None
    if not isinstance(document, dict):
        raise PayloadError("not a JSON object")
    return document


def _require(document: dict[str, Any], field: str, kinds: type | tuple[type, ...]) -> Any:
    if field not in document:
        raise PayloadError(f"missing field {field}")
    value = document[field]
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise PayloadError(f"field {field} must be {_kind_name(kinds)}, got a boolean")
    if not isinstance(value, kinds):
        raise PayloadError(f"field {field} must be {_kind_name(kinds)}, got {type(value).__name__}")
    return value


def _kind_name(kinds: type | tuple[type, ...]) -> str:
    names = [k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,))]
    return " or ".join("null" if n == "NoneType" else n for n in names)


def _text(document: dict[str, Any], field: str, limit: int = 200) -> str:
    value = _require(document, field, str)
    if not value or len(value) > limit:
        raise PayloadError(f"field {field} must be 1 to {limit} characters")
    return str(value)


def _date(document: dict[str, Any], field: str) -> None:
    try:
        date.fromisoformat(_text(document, field, 10))
    except ValueError:
        raise PayloadError(f"field {field} must be a date (YYYY-MM-DD)") from None


def _timestamp(document: dict[str, Any], field: str) -> None:
    try:
        datetime.fromisoformat(_text(document, field, 40).replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError(f"field {field} must be an ISO 8601 time") from None


def _origin(document: dict[str, Any], chain: str | None, store_id: str | None) -> None:
    """The payload must name the store whose topic it came on: a store cannot speak for another."""
    for field, expected in (("chain", chain), ("store_id", store_id)):
        value = _text(document, field)
        if expected is not None and value != expected:
            raise PayloadError(f"field {field} is {value!r} but the topic is {expected!r}")


def _number(document: dict[str, Any], field: str, low: float | None = None, high: float | None = None) -> float:
    value = float(_require(document, field, (int, float)))
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        raise PayloadError(f"field {field} must be a finite number in [{low}, {high}]")
    return value


def _optional(document: dict[str, Any], field: str, kinds: type | tuple[type, ...]) -> Any:
    """An optional field: absent or null, or of `kinds` (what a store may add to its status or metrics)."""
    if document.get(field) is None:
        return None
    return _require(document, field, kinds)


def _count(document: dict[str, Any], field: str) -> None:
    value = _optional(document, field, int)
    if value is not None and not 0 <= value <= 2**63 - 1:
        raise PayloadError(f"field {field} must be a non-negative integer")


def _short_text(document: dict[str, Any], field: str, limit: int = 500) -> None:
    value = _optional(document, field, str)
    if value is not None and len(value) > limit:
        raise PayloadError(f"field {field} must be at most {limit} characters")


def _names_to_text(document: dict[str, Any], field: str, limit: int = 200) -> None:
    """An object of short names to short texts (a box's alarms, its children's states)."""
    value = _optional(document, field, dict)
    if value is None:
        return
    if len(value) > limit or not all(isinstance(v, str) and len(k) <= 200 and len(v) <= 1000 for k, v in value.items()):
        raise PayloadError(f"field {field} must map at most {limit} names to texts")


def _cameras(document: dict[str, Any]) -> None:
    """{source: state}, or [{"source": ..., "state": ...}]: both shapes a box has sent."""
    value = _optional(document, "cameras", (dict, list))
    if isinstance(value, dict):
        _names_to_text(document, "cameras")
    elif isinstance(value, list) and not (len(value) <= 200 and all(
            isinstance(c, dict) and isinstance(c.get("source"), str) and isinstance(c.get("state"), str)
            for c in value)):
        raise PayloadError("field cameras must list objects with a source and a state")


def _health_fields(document: dict[str, Any]) -> None:
    """What the console reads from a status or metrics message, each of the type it expects."""
    for field in ("outbox_unacked", "outbox_unacked_bytes"):
        _count(document, field)
    for field in ("reason", "model_version", "last_score"):
        _short_text(document, field)
    for field in ("last_publish_at", "at"):
        if document.get(field) is not None:
            _timestamp(document, field)
    _names_to_text(document, "alarms")
    _names_to_text(document, "children")
    _cameras(document)


def check_alert(document: dict[str, Any], chain: str | None = None, store_id: str | None = None) -> dict[str, Any]:
    """A `retail.churn-alert/1` payload, or PayloadError."""
    if document.get("schema") != ALERT_SCHEMA:
        raise PayloadError(f"schema must be {ALERT_SCHEMA!r}, got {document.get('schema')!r}")
    _text(document, "alert_id", 64)
    if _require(document, "seq", int) < 1:
        raise PayloadError("field seq must be a positive integer")
    _origin(document, chain, store_id)
    _text(document, "customer_ref", 128)
    _date(document, "as_of")
    score = _require(document, "risk_score", int)
    if not 0 <= score <= 100:
        raise PayloadError("field risk_score must be in 0..100")
    if _require(document, "level", str) not in LEVELS:
        raise PayloadError(f"field level must be one of {', '.join(LEVELS)}")
    _require(document, "action", (str, type(None)))
    _optional(document, "action_label", str)
    reasons = _require(document, "reasons", list)
    for index, reason in enumerate(reasons):
        if not isinstance(reason, dict) or not isinstance(reason.get("text"), str) or not isinstance(reason.get("feature"), str):
            raise PayloadError(f"reasons[{index}] needs text and feature")
        for key in ("value", "usual"):
            if reason.get(key) is not None:
                _number(reason, key)
    _number(document, "clv_estimate", 0)
    _number(document, "action_cost_cap", 0)
    _text(document, "model_version")
    _timestamp(document, "created_at")
    if "control" in document and not isinstance(document["control"], bool):
        raise PayloadError("field control must be a boolean")
    if document.get("kind", "early_warning") not in ALERT_KINDS:
        raise PayloadError(f"field kind must be one of {', '.join(ALERT_KINDS)}")
    if "days_silent" in document and (not isinstance(document["days_silent"], int)
                                      or isinstance(document["days_silent"], bool) or document["days_silent"] < 0):
        raise PayloadError("field days_silent must be a non-negative integer")
    if "value_at_risk" in document:
        _number(document, "value_at_risk", 0)
    _recent_events(document)
    return document


def _recent_events(document: dict[str, Any]) -> None:
    """At most RECENT_EVENTS_MAX {kind, days_ago, value} and no other key: a note, an account or a phone
    number has no field to travel in."""
    events = _optional(document, "recent_events", list)
    if events is None:
        return
    if len(events) > RECENT_EVENTS_MAX:
        raise PayloadError(f"field recent_events must list at most {RECENT_EVENTS_MAX} events")
    for index, event in enumerate(events):
        where = f"recent_events[{index}]"
        if not isinstance(event, dict) or set(event) != set(RECENT_EVENT_FIELDS):
            raise PayloadError(f"{where} must have exactly {', '.join(RECENT_EVENT_FIELDS)}")
        if event["kind"] not in EVENT_KINDS:
            raise PayloadError(f"{where}.kind must be one of {', '.join(EVENT_KINDS)}")
        days = event["days_ago"]
        if type(days) is not int or not 0 <= days <= MAX_DAYS_AGO:
            raise PayloadError(f"{where}.days_ago must be an integer in 0..{MAX_DAYS_AGO}")
        if event["value"] is not None:
            try:
                _number(event, "value")
            except PayloadError:
                raise PayloadError(f"{where}.value must be a finite number or null") from None


def check_overflow(document: dict[str, Any], chain: str | None = None, store_id: str | None = None) -> dict[str, Any]:
    """A `retail.churn-alert-overflow/1` payload, or PayloadError."""
    if document.get("schema") != OVERFLOW_SCHEMA:
        raise PayloadError(f"schema must be {OVERFLOW_SCHEMA!r}")
    _text(document, "alert_id", 64)
    if _require(document, "seq", int) < 1:
        raise PayloadError("field seq must be a positive integer")
    _origin(document, chain, store_id)
    _date(document, "as_of")
    suppressed = _require(document, "suppressed", int)
    customers = _require(document, "customers", list)
    if suppressed != len(customers):
        raise PayloadError("field suppressed must equal the number of customers")
    for index, entry in enumerate(customers):
        if not isinstance(entry, dict) or not isinstance(entry.get("customer_ref"), str) or entry.get("level") not in LEVELS:
            raise PayloadError(f"customers[{index}] needs customer_ref and level")
    _timestamp(document, "created_at")
    return document


def check_alert_message(raw: bytes, chain: str | None = None, store_id: str | None = None) -> dict[str, Any]:
    """Whatever arrives on an alert topic: a churn alert or an overflow summary."""
    document = decode(raw)
    if document.get("schema") == OVERFLOW_SCHEMA:
        return check_overflow(document, chain, store_id)
    return check_alert(document, chain, store_id)


def ack(alert_ids: list[str], up_to_seq: int | None, acked_at: str,
        rejected: list[dict[str, str]] | None = None) -> bytes:
    """`rejected`: [{"alert_id", "reason"}] for alerts the aggregator put in its dead letters, so the
    store stops resending them and raises its alarm instead."""
    document: dict[str, Any] = {"schema": ACK_SCHEMA, "alert_ids": alert_ids, "up_to_seq": up_to_seq,
                                "acked_at": acked_at}
    if rejected:
        document["rejected"] = rejected
    return json.dumps(document).encode()


def check_ack(raw: bytes) -> dict[str, Any]:
    document = decode(raw)
    if document.get("schema") != ACK_SCHEMA:
        raise PayloadError(f"schema must be {ACK_SCHEMA!r}")
    ids = _require(document, "alert_ids", list)
    if not all(isinstance(i, str) for i in ids):
        raise PayloadError("alert_ids must be strings")
    _require(document, "up_to_seq", (int, type(None)))
    rejected = document.get("rejected", [])
    if not isinstance(rejected, list) or not all(
        isinstance(r, dict) and isinstance(r.get("alert_id"), str) and isinstance(r.get("reason"), str) for r in rejected
    ):
        raise PayloadError("rejected must be a list of {alert_id, reason}")
    return document


def alert_id_of(raw: bytes) -> str | None:
    """The alert id of a payload that may break its contract, if one can be read at all."""
    try:
        document = loads_bounded(raw, MAX_PAYLOAD_BYTES)
    except JsonRefused:
        return None
    value = document.get("alert_id") if isinstance(document, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


def check_status(raw: bytes, chain: str | None = None, store_id: str | None = None) -> dict[str, Any]:
    document = decode(raw)
    if document.get("schema") != STATUS_SCHEMA:
        raise PayloadError(f"schema must be {STATUS_SCHEMA!r}")
    if document.get("state") not in ("online", "offline"):
        raise PayloadError("field state must be online or offline")
    _origin(document, chain, store_id)
    _health_fields(document)
    return document


FOOTFALL_COUNTS = ("entries", "exits", "transactions")
# The store box's inputs, as its ingest runs record them (store database migration 8).
DATA_INPUTS = ("pos", "events", "identities", "footfall")
QUALITY_MAX_DAYS = 60  # days of figures one metrics message may carry
QUALITY_MAX_REASONS = 20  # quarantine reasons per input and day (a box folds the rest into OTHER_REASONS)
OTHER_REASONS = "other reasons"
QUALITY_DAY_COUNTS = ("runs", "failed", "accepted", "quarantined")


def check_metrics(raw: bytes, chain: str | None = None, store_id: str | None = None) -> dict[str, Any]:
    """A `retail.store-metrics/1` payload; its optional `footfall_hourly` list is
    [{"hour": "YYYY-MM-DDTHH:00", "entries": n, "exits": n, "transactions": n}, ...]."""
    document = decode(raw)
    if document.get("schema") != METRICS_SCHEMA:
        raise PayloadError(f"schema must be {METRICS_SCHEMA!r}")
    _origin(document, chain, store_id)
    _timestamp(document, "at")
    _health_fields(document)
    _data_quality(document)
    hours = document.get("footfall_hourly")
    if hours is None:
        return document
    if not isinstance(hours, list):
        raise PayloadError("field footfall_hourly must be a list")
    for index, hour in enumerate(hours):
        valid = isinstance(hour, dict) and all(type(hour.get(n)) is int and 0 <= hour[n] < 2**31
                                               for n in FOOTFALL_COUNTS)
        try:
            datetime.strptime(str(hour.get("hour")) if isinstance(hour, dict) else "", "%Y-%m-%dT%H:00")
        except ValueError:
            valid = False
        if not valid:
            raise PayloadError(f"footfall_hourly[{index}] needs hour (YYYY-MM-DDTHH:00) and non-negative "
                               "integer entries, exits and transactions")
    return document


def _non_negative_int(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**53


def _quality_day(entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise PayloadError(f"{where} must be an object")
    try:
        date.fromisoformat(str(entry.get("day")))
    except ValueError:
        raise PayloadError(f"{where}.day must be a date (YYYY-MM-DD)") from None
    if not all(_non_negative_int(entry.get(name)) for name in QUALITY_DAY_COUNTS):
        raise PayloadError(f"{where} needs non-negative integer {', '.join(QUALITY_DAY_COUNTS)}")
    reasons = entry.get("reasons")
    if not isinstance(reasons, dict) or len(reasons) > QUALITY_MAX_REASONS or not all(
            isinstance(k, str) and 0 < len(k) <= 100 and _non_negative_int(v) for k, v in reasons.items()):
        raise PayloadError(f"{where}.reasons must map at most {QUALITY_MAX_REASONS} reasons to counts")


def _data_quality(document: dict[str, Any]) -> None:
    """The optional `data_quality` of a metrics message: per input and store-local day, the rows accepted and
    quarantined (by reason), the time of the input's last export, and the camera gaps per day.

    {"today": "YYYY-MM-DD", "days": n,
     "inputs": {"pos": {"last_export_at": "...Z" | null,
                        "daily": [{"day", "runs", "failed", "accepted", "quarantined", "reasons": {reason: n}}]}, ...},
     "camera_gaps": [{"day", "source", "gaps", "seconds"}]}"""
    quality = _optional(document, "data_quality", dict)
    if quality is None:
        return
    _date(quality, "today")
    days = _require(quality, "days", int)
    if not 1 <= days <= QUALITY_MAX_DAYS:
        raise PayloadError(f"data_quality.days must be in 1..{QUALITY_MAX_DAYS}")
    inputs = _require(quality, "inputs", dict)
    for name, figures in inputs.items():
        where = f"data_quality.inputs.{str(name)[:40]}"
        if name not in DATA_INPUTS:
            raise PayloadError(f"{where}: the inputs are {', '.join(DATA_INPUTS)}")
        if not isinstance(figures, dict):
            raise PayloadError(f"{where} must be an object")
        if figures.get("last_export_at") is not None:
            try:
                _timestamp(figures, "last_export_at")
            except PayloadError:
                raise PayloadError(f"{where}.last_export_at must be an ISO 8601 time") from None
        daily = figures.get("daily")
        if not isinstance(daily, list) or len(daily) > QUALITY_MAX_DAYS:
            raise PayloadError(f"{where}.daily must list at most {QUALITY_MAX_DAYS} days")
        for index, entry in enumerate(daily):
            _quality_day(entry, f"{where}.daily[{index}]")
    gaps = _require(quality, "camera_gaps", list)
    if len(gaps) > QUALITY_MAX_DAYS * 20:
        raise PayloadError(f"data_quality.camera_gaps must list at most {QUALITY_MAX_DAYS * 20} entries")
    for index, gap in enumerate(gaps):
        where = f"data_quality.camera_gaps[{index}]"
        valid = isinstance(gap, dict) and isinstance(gap.get("source"), str) and 0 < len(gap["source"]) <= 200 \
            and _non_negative_int(gap.get("gaps")) and type(gap.get("seconds")) in (int, float) \
            and math.isfinite(gap["seconds"]) and gap["seconds"] >= 0
        try:
            date.fromisoformat(str(gap.get("day")) if isinstance(gap, dict) else "")
        except ValueError:
            valid = False
        if not valid:
            raise PayloadError(f"{where} needs day (YYYY-MM-DD), source, a count of gaps and their seconds")
