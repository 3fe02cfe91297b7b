"""The store's outbox: every message that must reach the central side, until the aggregator says so.

Rows are written in the same transaction as the alerts they carry (see
score.py). A PUBACK only means the broker has a message, and a broker killed
before it saves its queue loses it, so a row stays until the aggregator's ack
names it (or a seq watermark covers it); unacknowledged rows are sent again
after `resend_after` seconds. Acknowledged rows are pruned after a while; the
bytes of unacknowledged rows count against the configured disk quota.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from .store_db import StoreDatabase, utc_now_iso, write_transaction
from .store_queries import alerts as queries


@dataclass(frozen=True)
class OutboxEntry:
    seq: int
    alert_id: str
    kind: str  # "alert" or "overflow"
    payload: bytes
    sent_count: int


@dataclass(frozen=True)
class OutboxStats:
    unacked: int
    unsent: int
    unacked_bytes: int
    oldest_unacked_at: str | None
    acked: int

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class Outbox:
    def __init__(self, store: StoreDatabase):
        self.store = store
        self.conn = store.conn

    def append(self, seq: int, alert_id: str, kind: str, document: dict[str, Any], created_at: str) -> str:
        """Write one message inside the caller's transaction (scoring's, with the alert it carries); returns
        the payload as stored. An alert id already in the outbox is refused (sqlite3.IntegrityError)."""
        payload = json.dumps(document)
        queries.append_outbox(self.store, {"seq": seq, "alert_id": alert_id, "kind": kind, "payload": payload,
                                           "created_at": created_at})
        return payload

    def last_seq(self) -> int:
        """The store's alert counter so far: the next message takes the seq after it."""
        return queries.last_outbox_seq(self.conn)

    def has(self, alert_id: str) -> bool:
        return queries.in_outbox(self.conn, alert_id)

    def unacked_bytes(self) -> int:
        """What counts against the disk quota."""
        return queries.unacked_bytes(self.conn)

    def due(self, resend_after: float, limit: int, now: float | None = None, after_seq: int = 0) -> list[OutboxEntry]:
        """Unacknowledged rows never sent, or sent longer than `resend_after` seconds ago, in seq order.

        `after_seq` lets one drain page through the outbox without meeting again what it has just sent.
        """
        now = time.time() if now is None else now
        rows = queries.due_messages(self.conn, after_seq, now - resend_after, limit)
        return [OutboxEntry(seq, alert_id, kind, payload.encode(), sent) for seq, alert_id, kind, payload, sent in rows]

    def mark_sent(self, seqs: list[int], now: float | None = None) -> None:
        if not seqs:
            return
        stamp = time.time() if now is None else now
        with write_transaction(self.conn):
            queries.mark_sent(self.conn, seqs, stamp)

    def mark_acked(self, alert_ids: list[str], up_to_seq: int | None) -> int:
        """Record the aggregator's ack; return how many rows it newly covers."""
        with write_transaction(self.conn):
            return queries.mark_acked(self.conn, alert_ids, up_to_seq, utc_now_iso())

    def mark_rejected(self, rejected: list[dict[str, str]]) -> int:
        """The aggregator refused these alerts: stop resending them, keep the reason for the alarm."""
        with write_transaction(self.conn):
            return queries.mark_rejected(self.conn, [(r["alert_id"], r["reason"]) for r in rejected], utc_now_iso())

    def rejected(self) -> int:
        return queries.rejected_count(self.conn)

    def unacked(self) -> int:
        """Rows still waiting for the aggregator: the index alone answers, however big the payloads."""
        return queries.unacked_count(self.conn)

    def stats(self) -> OutboxStats:
        return OutboxStats(*queries.outbox_figures(self.conn))

    def prune_acked(self, older_than_days: float = 7.0) -> int:
        """Forget acknowledged rows after a while (the alerts table keeps the record)."""
        cutoff = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - older_than_days * 86400))
        with write_transaction(self.conn):
            return queries.delete_acked_before(self.conn, cutoff)
