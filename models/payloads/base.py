"""What every payload shares: the schema ids, the size and JSON bounds, and the contract error."""

from __future__ import annotations

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
