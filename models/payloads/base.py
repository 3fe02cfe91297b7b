"""What every payload shares: the schema ids, the size and JSON bounds, the contract error, and the
field checks of the messages still validated by hand (status, metrics, data quality)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ..safe_json import JsonRefused, loads_bounded

ALERT_SCHEMA = "retail.churn-alert/1"
OVERFLOW_SCHEMA = "retail.churn-alert-overflow/1"
ACK_SCHEMA = "retail.churn-ack/1"
STATUS_SCHEMA = "retail.store-status/1"
METRICS_SCHEMA = "retail.store-metrics/1"
MAX_PAYLOAD_BYTES = 256 * 1024
INT64_MAX = 2**63 - 1


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


def alert_id_of(raw: bytes) -> str | None:
    """The alert id of a payload that may break its contract, if one can be read at all."""
    try:
        document = loads_bounded(raw, MAX_PAYLOAD_BYTES)
    except JsonRefused:
        return None
    value = document.get("alert_id") if isinstance(document, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


def topic_mismatch(field: str, value: str, expected: str | None) -> str | None:
    """Why a payload cannot speak for the store whose topic it came on (None: it does not)."""
    if expected is not None and value != expected:
        return f"field {field} is {value!r} but the topic is {expected!r}"
    return None


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
        problem = topic_mismatch(field, _text(document, field), expected)
        if problem:
            raise PayloadError(problem)


def _optional(document: dict[str, Any], field: str, kinds: type | tuple[type, ...]) -> Any:
    """An optional field: absent or null, or of `kinds` (what a store may add to its status or metrics)."""
    if document.get(field) is None:
        return None
    return _require(document, field, kinds)
