"""The store's outbox: every message that must reach the central side, until the aggregator says so.

Rows are written in the same transaction as the alerts they carry (see
score.py). A PUBACK only means the broker has a message, and a broker killed
before it saves its queue loses it, so a row stays until the aggregator's ack
names it (or a seq watermark covers it); unacknowledged rows are sent again
after `resend_after` seconds. Acknowledged rows are pruned after a while; the
bytes of unacknowledged rows count against the configured disk quota.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .store_db import StoreDatabase, utc_now_iso, write_transaction


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
        self.conn = store.conn

    def due(self, resend_after: float, limit: int, now: float | None = None, after_seq: int = 0) -> list[OutboxEntry]:
        """Unacknowledged rows never sent, or sent longer than `resend_after` seconds ago, in seq order.

        `after_seq` lets one drain page through the outbox without meeting again what it has just sent.
        """
        now = time.time() if now is None else now
        rows = self.conn.execute(
            "SELECT seq, alert_id, kind, payload, sent_count FROM outbox WHERE acked_at IS NULL AND seq > ?"
            " AND (last_sent_at IS NULL OR last_sent_at <= ?) ORDER BY seq LIMIT ?",
            (after_seq, now - resend_after, limit),
        ).fetchall()
        return [OutboxEntry(seq, alert_id, kind, payload.encode(), sent) for seq, alert_id, kind, payload, sent in rows]

    def mark_sent(self, seqs: list[int], now: float | None = None) -> None:
        if not seqs:
            return
        stamp = time.time() if now is None else now
        with write_transaction(self.conn):
            self.conn.executemany(
                "UPDATE outbox SET sent_count = sent_count + 1, last_sent_at = ? WHERE seq = ?",
                [(stamp, seq) for seq in seqs],
            )

    def mark_acked(self, alert_ids: list[str], up_to_seq: int | None) -> int:
        """Record the aggregator's ack; return how many rows it newly covers."""
        now = utc_now_iso()
        with write_transaction(self.conn):
            changed = self.conn.executemany(
                "UPDATE outbox SET acked_at = ? WHERE alert_id = ? AND acked_at IS NULL",
                [(now, alert_id) for alert_id in alert_ids],
            ).rowcount
            if up_to_seq is not None:
                changed += self.conn.execute(
                    "UPDATE outbox SET acked_at = ? WHERE seq <= ? AND acked_at IS NULL", (now, up_to_seq)
                ).rowcount
        return max(0, changed)

    def mark_rejected(self, rejected: list[dict[str, str]]) -> int:
        """The aggregator refused these alerts: stop resending them, keep the reason for the alarm."""
        now = utc_now_iso()
        with write_transaction(self.conn):
            return max(0, self.conn.executemany(
                "UPDATE outbox SET acked_at = ?, rejected_reason = ? WHERE alert_id = ? AND acked_at IS NULL",
                [(now, r["reason"], r["alert_id"]) for r in rejected],
            ).rowcount)

    def rejected(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM outbox WHERE rejected_reason IS NOT NULL").fetchone()[0])

    def unacked(self) -> int:
        """Rows still waiting for the aggregator: the index alone answers, however big the payloads."""
        return int(self.conn.execute("SELECT count(*) FROM outbox WHERE acked_at IS NULL").fetchone()[0])

    def stats(self) -> OutboxStats:
        unacked, unsent, size, oldest = self.conn.execute(
            "SELECT count(*), coalesce(sum(last_sent_at IS NULL), 0), coalesce(sum(length(payload)), 0),"
            " min(created_at) FROM outbox WHERE acked_at IS NULL"
        ).fetchone()
        acked = self.conn.execute("SELECT count(*) FROM outbox WHERE acked_at IS NOT NULL").fetchone()[0]
        return OutboxStats(int(unacked), int(unsent), int(size), oldest, int(acked))

    def prune_acked(self, older_than_days: float = 7.0) -> int:
        """Forget acknowledged rows after a while (the alerts table keeps the record)."""
        cutoff = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - older_than_days * 86400))
        with write_transaction(self.conn):
            return int(self.conn.execute(
                "DELETE FROM outbox WHERE acked_at IS NOT NULL AND acked_at < ?", (cutoff,)
            ).rowcount)
