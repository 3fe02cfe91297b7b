"""Writing what the stores send: alerts (idempotent by alert_id), status, metrics and dead letters.

Every function runs inside the caller's transaction (`CentralDb.write()`), so
a batch of messages is committed, or not, as one. Storing an alert again (a
store's resend, the broker's redelivery, a second aggregator) changes nothing:
the insert is ON CONFLICT (alert_id) DO NOTHING on both engines.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from models.payloads import OVERFLOW_SCHEMA

from .database import insert_new, upsert
from .sequence import advance_seqs, lock_store_seq
from .tables import alert_overflows, alerts, dead_letters, footfall_hourly, store_metrics, stores

ALERT_FIELDS = ("alert_id", "seq", "chain", "store_id", "customer_ref", "as_of", "risk_score", "level", "action",
                "action_label", "clv_estimate", "action_cost_cap", "model_version", "created_at")


@dataclass
class StoredAlerts:
    """One store's share of a batch: what was new, what was already there, and its contiguous seq."""

    new: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    contiguous_seq: int = 0

    @property
    def alert_ids(self) -> list[str]:
        return self.new + self.duplicates


def _alert_row(document: dict[str, Any], raw: str, now: str) -> tuple[Any, dict[str, Any]]:
    if document.get("schema") == OVERFLOW_SCHEMA:
        return alert_overflows, {
            **{k: document[k] for k in ("alert_id", "seq", "chain", "store_id", "as_of", "suppressed", "created_at")},
            "customers": json.dumps(document["customers"]), "payload": raw, "received_at": now}
    return alerts, {
        **{k: document.get(k) for k in ALERT_FIELDS},
        "reasons": json.dumps(document["reasons"]), "control": bool(document.get("control", False)),
        "payload": raw, "received_at": now}


def store_alerts(connection: Connection, chain: str, store_id: str,
                 documents: list[tuple[dict[str, Any], str]], now: str) -> StoredAlerts:
    """Store one store's checked alert messages (alerts and overflow summaries) and advance its seq watermark.

    One multi-row INSERT ... ON CONFLICT DO NOTHING per table, not one statement per alert: building and
    running a statement per row was most of the aggregator's time. RETURNING says which ids were new.
    """
    result = StoredAlerts()
    locked = lock_store_seq(connection, chain, store_id, now)
    rows = [_alert_row(document, raw, now) for document, raw in documents]
    inserted: set[str] = set()
    for table in (alerts, alert_overflows):
        inserted |= insert_new(connection, table, [row for t, row in rows if t is table], "alert_id")
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


def record_dead_letter(connection: Connection, topic: str, reason: str, raw: bytes, now: str) -> None:
    """Keep a message that cannot be used, with why; the same bytes again only bump its count."""
    digest = hashlib.sha256(raw).hexdigest()
    row = {"topic": topic, "reason": reason, "raw": raw, "digest": digest, "received_at": now,
                     "last_received_at": now}
    if not upsert(connection, dead_letters, row, ("topic", "digest")):
        connection.execute(dead_letters.update()
                           .where((dead_letters.c.topic == topic) & (dead_letters.c.digest == digest))
                           .values(count=dead_letters.c.count + 1, last_received_at=now, reason=reason))


def record_status(connection: Connection, chain: str, store_id: str, document: dict[str, Any], now: str,
                  retained: bool) -> None:
    """A store's online/offline state. A retained status replayed on (re)subscribe is not a sign of life."""
    seen_at = document.get("at") if isinstance(document.get("at"), str) else (None if retained else now)
    row = {"chain": chain, "store_id": store_id, "state": document["state"], "status": json.dumps(document),
           "updated_at": now, "last_seen": seen_at}
    update = ["state", "status", "updated_at"] + (["last_seen"] if seen_at else [])
    upsert(connection, stores, row, ("chain", "store_id"), update)


def record_metrics(connection: Connection, chain: str, store_id: str, document: dict[str, Any], now: str) -> int:
    """The store's latest metrics, and its hourly footfall; return how many hours were written."""
    key = {"chain": chain, "store_id": store_id}
    upsert(connection, store_metrics, {**key, "at": document["at"], "metrics": json.dumps(document),
                                       "received_at": now}, ("chain", "store_id"), ("at", "metrics", "received_at"))
    hours = document.get("footfall_hourly") or []
    for hour in hours:
        upsert(connection, footfall_hourly,
               {**key, **{k: hour[k] for k in ("hour", "entries", "exits", "transactions")}, "updated_at": now},
               ("chain", "store_id", "hour"), ("entries", "exits", "transactions", "updated_at"))
    return len(hours)
