"""Customers and transactions: what POS ingest writes, what the uplink and retention read and delete."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ..store_db import StoreDatabase

_INSERT_TRANSACTION = (
    "INSERT OR IGNORE INTO transactions"
    "(transaction_id, customer_key, ts, has_time, amount, items, channel, run_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, {run_id:d})"
)


def load_customer_keys(conn: sqlite3.Connection) -> dict[str, int]:
    """customer id → customer key: validation keys rows without a query per row."""
    return dict(conn.execute("SELECT customer_id, customer_key FROM customers").fetchall())


def next_customer_key(conn: sqlite3.Connection) -> int:
    """The first unused key; only safe under the write lock, where nobody else can number customers."""
    return int(conn.execute("SELECT coalesce(max(customer_key), 0) + 1 FROM customers").fetchone()[0])


def insert_customers(conn: sqlite3.Connection, keyed: list[tuple[int, str]]) -> None:
    """(customer key, customer id) rows, inside the batch's transaction."""
    conn.executemany("INSERT INTO customers(customer_key, customer_id) VALUES (?, ?)", keyed)


def transaction_inserter(run_id: int) -> Callable[[sqlite3.Connection, list], int]:  # type: ignore[type-arg]
    """Stores validated sale rows of one run; returns how many were new (the key is the dedupe).

    Prepared SQL, not sqlite-utils: this is the bulk-ingest hot path (benchmarks/ingest.py), and the run id
    is written into the statement once so each row binds one parameter fewer."""
    sql = _INSERT_TRANSACTION.format(run_id=run_id)

    def insert(conn: sqlite3.Connection, rows: list) -> int:  # type: ignore[type-arg]
        return int(conn.executemany(sql, rows).rowcount)

    return insert


def in_store_sales_per_hour(store: StoreDatabase, since: int) -> dict[int, int]:
    """Store-local hour start → timed in-store sales (refunds and online orders are no footfall)."""
    return dict(store.conn.execute(
        "SELECT ts - ts % 3600, count(*) FROM transactions WHERE ts >= ? AND amount > 0 AND has_time = 1"
        " AND (channel IS NULL OR channel != 'online') GROUP BY 1", (since,)))


def delete_transactions_before(conn: sqlite3.Connection, cutoff: int) -> int:
    """Retention: raw sales older than the horizon (store-local seconds) go; returns how many."""
    return int(conn.execute("DELETE FROM transactions WHERE ts < ?", (cutoff,)).rowcount)
