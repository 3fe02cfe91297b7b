"""Customer events and identity links: what events and identities ingest write, and retention deletes."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

_INSERT_EVENT = (
    "INSERT OR IGNORE INTO customer_events"
    "(event_id, customer_ref, ts, has_time, kind, value, channel, note, run_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, {run_id:d})"
)


def event_inserter(run_id: int) -> Callable[[sqlite3.Connection, list], int]:  # type: ignore[type-arg]
    """Stores validated event rows of one run; returns how many were new (the event id is the dedupe).

    Prepared SQL, not sqlite-utils: events are bulk-ingested like sales (benchmarks/ingest_events.py)."""
    sql = _INSERT_EVENT.format(run_id=run_id)

    def insert(conn: sqlite3.Connection, rows: list) -> int:  # type: ignore[type-arg]
        return int(conn.executemany(sql, rows).rowcount)

    return insert


def load_aliases(conn: sqlite3.Connection) -> dict[str, str]:
    """alias → customer id, as stored: identities ingest judges each new link against all of them."""
    return dict(conn.execute("SELECT alias, customer_id FROM customer_aliases").fetchall())


def insert_aliases(conn: sqlite3.Connection, links: list[tuple[str, str, str, int, str]]) -> None:
    """(alias, customer id, kind, run id, created at) rows; a plain INSERT, so an alias linked meanwhile by
    another ingest raises sqlite3.IntegrityError instead of being overwritten."""
    conn.executemany(
        "INSERT INTO customer_aliases(alias, customer_id, kind, run_id, created_at) VALUES (?, ?, ?, ?, ?)", links)


def delete_events_before(conn: sqlite3.Connection, cutoff: int) -> int:
    """Retention: customer events older than the horizon (store-local seconds) go; returns how many."""
    return int(conn.execute("DELETE FROM customer_events WHERE ts < ?", (cutoff,)).rowcount)
