"""Writing what the stores send: alerts (idempotent per store and alert id), status, metrics and dead letters.

Every function runs inside the caller's transaction (`CentralDb.write()`), so
a batch of messages is committed, or not, as one. Storing an alert again (a
store's resend, the broker's redelivery, a second aggregator) changes nothing:
the insert is ON CONFLICT (chain, store_id, alert_id) DO NOTHING on both
engines, the chain and store being those of the topic the alert came on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from models.payloads import (
    FOOTFALL_COUNTS, MAX_PAYLOAD_BYTES, OVERFLOW_SCHEMA, QUALITY_DAY_COUNTS, CameraGapDay, ChurnAlert, HourCounts,
)

from .database import insert_new, upsert
from .sequence import advance_seqs, lock_store_seq
from .tables import (
    ALERT_FIELD_COLUMNS, ALERT_KEY, alert_overflows, alerts, camera_gap_days, dead_letters, footfall_hourly,
    input_days, store_metrics, stores,
)

MAX_KEPT_BYTES = MAX_PAYLOAD_BYTES  # a dead letter larger than any valid message keeps its digest, not its body
MAX_TOPIC_CHARS = 512

# What an optional field absent or null is stored as (control: false, kind: early_warning, a list: [])
ALERT_ABSENT = {name: ChurnAlert.absent_means(name) for name in ALERT_FIELD_COLUMNS}
ALERT_JSON_COLUMNS = frozenset(name for name, absent in ALERT_ABSENT.items() if isinstance(absent, list))


@dataclass
class StoredAlerts:
    """One store's share of a batch: what was new, what was already there, and its contiguous seq."""

    new: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    contiguous_seq: int = 0

    @property
    def alert_ids(self) -> list[str]:
        return self.new + self.duplicates


def _alert_row(chain: str, store_id: str, document: dict[str, Any], raw: str, now: str) -> tuple[Any, dict[str, Any]]:
    """The row of one checked message; its chain and store are the topic's, whatever the payload says."""
    origin = {"chain": chain, "store_id": store_id}
    if document.get("schema") == OVERFLOW_SCHEMA:
        return alert_overflows, {
            **{k: document[k] for k in ("alert_id", "seq", "as_of", "suppressed", "created_at")}, **origin,
            "customers": json.dumps(document["customers"]), "payload": raw, "received_at": now}
    row = {}
    for name in ALERT_FIELD_COLUMNS:
        value = document.get(name)
        value = ALERT_ABSENT[name] if value is None else value
        row[name] = json.dumps(value) if isinstance(value, list) else value
    return alerts, {**row, **origin, "payload": raw, "received_at": now}


def store_alerts(connection: Connection, chain: str, store_id: str,
                 documents: list[tuple[dict[str, Any], str]], now: str) -> StoredAlerts:
    """Store one store's checked alert messages (alerts and overflow summaries) and advance its seq watermark.

    One multi-row INSERT ... ON CONFLICT DO NOTHING per table, not one statement per alert: building and
    running a statement per row was most of the aggregator's time. RETURNING says which ids were new.
    """
    result = StoredAlerts()
    locked = lock_store_seq(connection, chain, store_id, now)
    rows = [_alert_row(chain, store_id, document, raw, now) for document, raw in documents]
    inserted: set[str] = set()
    for table in (alerts, alert_overflows):
        inserted |= insert_new(connection, table, [row for t, row in rows if t is table], ALERT_KEY, "alert_id")
    new_seqs = []
    for _table, row in rows:  # in arrival order; a second copy within the batch is a duplicate
        if row["alert_id"] in inserted:
            inserted.discard(row["alert_id"])
            result.new.append(row["alert_id"])
            new_seqs.append(int(row["seq"]))
        else:
            result.duplicates.append(row["alert_id"])
    result.contiguous_seq = advance_seqs(connection, chain, store_id, locked, new_seqs, now)
    return result


def record_dead_letter(connection: Connection, topic: str, reason: str, raw: bytes, now: str,
                       keep_body: bool = True) -> None:
    """Keep a message that cannot be used, with why; the same bytes again only bump its count.

    The body is kept only when it is no larger than a valid message may be (and `keep_body`): of 30 MB of
    garbage the table keeps the size and the sha256, not the 30 MB. Topic and reason are kept as printable text.
    """
    digest = hashlib.sha256(raw).hexdigest()
    kept = raw if keep_body and len(raw) <= MAX_KEPT_BYTES else b""
    if len(kept) < len(raw):
        reason = f"{reason} (body of {len(raw)} bytes not kept; sha256 {digest})"
    topic = _printable(topic)[:MAX_TOPIC_CHARS]
    reason = _printable(reason)[:1000]
    row = {"topic": topic, "reason": reason, "raw": kept, "digest": digest, "size": len(raw), "received_at": now,
           "last_received_at": now}
    if not upsert(connection, dead_letters, row, ("topic", "digest")):
        connection.execute(dead_letters.update()
                           .where((dead_letters.c.topic == topic) & (dead_letters.c.digest == digest))
                           .values(count=dead_letters.c.count + 1, last_received_at=now, reason=reason))


def _printable(text: str) -> str:
    """Text any database and terminal takes: no NUL or control characters, no unpaired surrogates."""
    cleaned = "".join(c if c.isprintable() else "?" for c in text)
    return cleaned.encode("utf-8", "replace").decode("utf-8")


def record_status(connection: Connection, chain: str, store_id: str, document: dict[str, Any], now: str,
                  retained: bool) -> None:
    """A store's online/offline state. A retained status replayed on (re)subscribe is not a sign of life."""
    seen_at = document.get("at") if isinstance(document.get("at"), str) else (None if retained else now)
    row = {"chain": chain, "store_id": store_id, "state": document["state"], "status": json.dumps(document),
           "updated_at": now, "last_seen": seen_at}
    update = ["state", "status", "updated_at"] + (["last_seen"] if seen_at else [])
    upsert(connection, stores, row, ("chain", "store_id"), update)


def record_metrics(connection: Connection, chain: str, store_id: str, document: dict[str, Any], now: str) -> int:
    """The store's latest metrics, its hourly footfall and its data quality per day; return how many hours
    were written."""
    key = {"chain": chain, "store_id": store_id}
    upsert(connection, store_metrics, {**key, "at": document["at"], "metrics": json.dumps(document),
                                       "received_at": now}, ("chain", "store_id"), ("at", "metrics", "received_at"))
    hours = document.get("footfall_hourly") or []
    for hour in hours:  # the columns are named as the payload's fields
        upsert(connection, footfall_hourly,
               {**key, **{k: hour[k] for k in HourCounts.field_names()}, "updated_at": now},
               ("chain", "store_id", "hour"), (*FOOTFALL_COUNTS, "updated_at"))
    record_data_quality(connection, key, document.get("data_quality") or {}, now)
    return len(hours)


def record_data_quality(connection: Connection, key: dict[str, str], quality: dict[str, Any], now: str) -> None:
    """Each day an input reported, and each day's camera gaps: the box's figures for a day replace the
    centre's, and days it no longer sends stay (the history the console compares today with)."""
    for name, figures in sorted((quality.get("inputs") or {}).items()):
        for day in figures.get("daily") or []:
            upsert(connection, input_days,
                   {**key, "input": name, "day": day["day"], **{k: day[k] for k in QUALITY_DAY_COUNTS},
                    "reasons": json.dumps(day["reasons"], sort_keys=True), "updated_at": now},
                   ("chain", "store_id", "input", "day"), (*QUALITY_DAY_COUNTS, "reasons", "updated_at"))
    for gap in quality.get("camera_gaps") or []:
        upsert(connection, camera_gap_days,
               {**key, **{k: gap[k] for k in CameraGapDay.field_names()}, "updated_at": now},
               ("chain", "store_id", "source", "day"), ("gaps", "seconds", "updated_at"))
