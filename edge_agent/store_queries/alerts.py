"""The outbox, the alerts and the scoring runs: what scoring records and the uplink delivers.

Scoring writes a run, its alerts and their outbox rows in one transaction
(edge_agent/score.py); the functions taking a connection run inside it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..store_db import StoreDatabase

# --- the outbox ---------------------------------------------------------------------


def append_outbox(store: StoreDatabase, row: dict[str, Any]) -> None:
    """One message (seq, alert_id, kind, payload, created_at). A plain insert: an alert id already in the
    outbox raises sqlite3.IntegrityError (scoring looks before it writes, so that is a bug, never a resend)."""
    store.db.table("outbox").insert(row)


def last_outbox_seq(conn: sqlite3.Connection) -> int:
    """The store's alert counter so far: the next message takes the seq after it."""
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()[0])


def in_outbox(conn: sqlite3.Connection, alert_id: str) -> bool:
    """Whether a message with this id was ever written (an overflow summary is written once per day and set)."""
    return conn.execute("SELECT 1 FROM outbox WHERE alert_id = ?", (alert_id,)).fetchone() is not None


def due_messages(conn: sqlite3.Connection, after_seq: int, sent_before: float, limit: int
                 ) -> list[tuple[int, str, str, str, int]]:
    """(seq, alert_id, kind, payload, sent_count) of unacknowledged rows after `after_seq` never sent or last
    sent before `sent_before` (unix time), in seq order: the index on (acked_at, seq) answers."""
    return conn.execute(
        "SELECT seq, alert_id, kind, payload, sent_count FROM outbox WHERE acked_at IS NULL AND seq > ?"
        " AND (last_sent_at IS NULL OR last_sent_at <= ?) ORDER BY seq LIMIT ?",
        (after_seq, sent_before, limit),
    ).fetchall()


def mark_sent(conn: sqlite3.Connection, seqs: list[int], at: float) -> None:
    """Count one more send of each row, at unix time `at` (resends are timed from it)."""
    conn.executemany("UPDATE outbox SET sent_count = sent_count + 1, last_sent_at = ? WHERE seq = ?",
                     [(at, seq) for seq in seqs])


def mark_acked(conn: sqlite3.Connection, alert_ids: list[str], up_to_seq: int | None, at: str) -> int:
    """Acknowledge rows by id and up to a seq watermark; returns how many were newly acknowledged."""
    changed = conn.executemany("UPDATE outbox SET acked_at = ? WHERE alert_id = ? AND acked_at IS NULL",
                               [(at, alert_id) for alert_id in alert_ids]).rowcount
    if up_to_seq is not None:
        changed += conn.execute("UPDATE outbox SET acked_at = ? WHERE seq <= ? AND acked_at IS NULL",
                                (at, up_to_seq)).rowcount
    return max(0, changed)


def mark_rejected(conn: sqlite3.Connection, rejected: list[tuple[str, str]], at: str) -> int:
    """(alert_id, reason) refused by the aggregator: closed like an ack, with the reason kept for the alarm."""
    return max(0, conn.executemany(
        "UPDATE outbox SET acked_at = ?, rejected_reason = ? WHERE alert_id = ? AND acked_at IS NULL",
        [(at, reason, alert_id) for alert_id, reason in rejected]).rowcount)


def rejected_count(conn: sqlite3.Connection) -> int:
    """Messages the aggregator refused, ever (they stay until pruned)."""
    return int(conn.execute("SELECT count(*) FROM outbox WHERE rejected_reason IS NOT NULL").fetchone()[0])


def unacked_count(conn: sqlite3.Connection) -> int:
    """Rows still waiting for the aggregator: the index alone answers, however big the payloads."""
    return int(conn.execute("SELECT count(*) FROM outbox WHERE acked_at IS NULL").fetchone()[0])


def unacked_bytes(conn: sqlite3.Connection) -> int:
    """Payload bytes of the unacknowledged rows: what counts against the outbox's disk quota."""
    return int(conn.execute(
        "SELECT coalesce(sum(length(payload)), 0) FROM outbox WHERE acked_at IS NULL").fetchone()[0])


def outbox_figures(conn: sqlite3.Connection) -> tuple[int, int, int, str | None, int]:
    """(unacked, never sent, unacked bytes, oldest unacked created_at, acked) for the status and metrics."""
    unacked, unsent, size, oldest = conn.execute(
        "SELECT count(*), coalesce(sum(last_sent_at IS NULL), 0), coalesce(sum(length(payload)), 0),"
        " min(created_at) FROM outbox WHERE acked_at IS NULL"
    ).fetchone()
    acked = conn.execute("SELECT count(*) FROM outbox WHERE acked_at IS NOT NULL").fetchone()[0]
    return int(unacked), int(unsent), int(size), oldest, int(acked)


def delete_acked_before(conn: sqlite3.Connection, cutoff: str) -> int:
    """Forget rows acknowledged before `cutoff` (UTC text); the alerts table keeps the record."""
    return int(conn.execute("DELETE FROM outbox WHERE acked_at IS NOT NULL AND acked_at < ?", (cutoff,)).rowcount)


# --- alerts -------------------------------------------------------------------------


def alerts_per_kind_between(conn: sqlite3.Connection, first_day: str, last_day: str) -> dict[str, int]:
    """Alert kind → alerts recorded for as-of days first_day..last_day (the weekly budgets)."""
    return dict(conn.execute(
        "SELECT kind, count(*) FROM alerts WHERE as_of BETWEEN ? AND ? GROUP BY kind", (first_day, last_day)
    ).fetchall())


def alerts_on(conn: sqlite3.Connection, as_of: str) -> int:
    """Alerts recorded for one as-of day (the daily cap)."""
    return int(conn.execute("SELECT count(*) FROM alerts WHERE as_of = ?", (as_of,)).fetchone()[0])


def last_alert_for(conn: sqlite3.Connection, customer_ref: str) -> tuple[str, str] | None:
    """(level, as_of) of the customer's latest alert, or None: cool-downs and escalations compare to it."""
    row = conn.execute(
        "SELECT level, as_of FROM alerts WHERE customer_ref = ? ORDER BY as_of DESC, seq DESC LIMIT 1", (customer_ref,)
    ).fetchone()
    return (row[0], row[1]) if row else None


def alert_exists(conn: sqlite3.Connection, alert_id: str) -> bool:
    """Whether this alert (a customer and as-of day) is recorded already: a re-run raises nothing new."""
    return conn.execute("SELECT 1 FROM alerts WHERE alert_id = ?", (alert_id,)).fetchone() is not None


def insert_alert(store: StoreDatabase, row: dict[str, Any]) -> None:
    """Record one alert (the columns of the alerts table), in scoring's transaction."""
    store.db.table("alerts").insert(row)


# --- scoring runs -------------------------------------------------------------------


def start_score_run(store: StoreDatabase, row: dict[str, Any]) -> int:
    """Record a scoring run (as_of, model_version, started_at, finished_at, scored, levels); returns its id."""
    return int(store.db.table("score_runs").insert(row).last_pk)  # type: ignore[arg-type]


def set_run_alerts(conn: sqlite3.Connection, run_id: int, alerts: int) -> None:
    """How many alerts the run raised, once they are known."""
    conn.execute("UPDATE score_runs SET alerts = ? WHERE run_id = ?", (alerts, run_id))


def last_score_run_started(conn: sqlite3.Connection) -> str | None:
    """When the latest scoring run started (UTC text), or None: the daemon schedules the next from it."""
    row = conn.execute("SELECT max(started_at) FROM score_runs").fetchone()
    return row[0] if row else None
