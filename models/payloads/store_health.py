"""`retail.store-status/1` on `.../status` (retained; the Last Will says offline) and
`retail.store-metrics/1` on `.../metrics`: a store box's health and footfall aggregates, checked field by
field (every field but the origin is optional, and a box has sent more than one shape of some)."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

from .base import (
    METRICS_SCHEMA, STATUS_SCHEMA, PayloadError, _date, _optional, _origin, _require, _timestamp, decode,
)


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
