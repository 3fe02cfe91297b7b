"""POS sales: the transactions table, and the customers it keys on the fly."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from ..store_db import StoreDatabase
from ..store_queries import sales
from ..store_queries.sales import load_customer_keys
from .contract import POS, Contract
from .validate import RowValidator


class TransactionsTable:
    """Stores sales; rows come from RowValidator.

    A *list* row names a customer not seen when it was validated; the table
    keys that customer inside the batch's transaction and puts the key into
    the row.
    """

    def __init__(self, run_id: int, customer_keys: dict[str, int]):
        self.customer_keys = customer_keys
        self.insert_rows = sales.transaction_inserter(run_id)

    def _create_customers(self, conn: sqlite3.Connection, rows: list) -> None:  # type: ignore[type-arg]
        """We hold the write lock, so numbering after the current maximum cannot collide."""
        keys = self.customer_keys
        new_rows = [row for row in rows if row.__class__ is list]
        if not new_rows:
            return
        created = list(dict.fromkeys(row[1] for row in new_rows if row[1] not in keys))
        next_key = sales.next_customer_key(conn)
        sales.insert_customers(conn, [(next_key + offset, c) for offset, c in enumerate(created)])
        for offset, customer_id in enumerate(created):
            keys[customer_id] = next_key + offset
        for row in new_rows:
            row[1] = keys[row[1]]

    def insert(self, conn: sqlite3.Connection, rows: list) -> int:  # type: ignore[type-arg]
        self._create_customers(conn, rows)
        return self.insert_rows(conn, rows)

    def rolled_back(self, conn: sqlite3.Connection) -> None:
        """Keys handed out in the batch no longer exist."""
        fresh = load_customer_keys(conn)
        for customer_id in [c for c in self.customer_keys if c not in fresh]:
            del self.customer_keys[customer_id]


class PosInput:
    """`edge-agent ingest`: till exports."""

    contract: Contract = POS

    def begin(self, store: StoreDatabase, run_id: int, now_utc: datetime | None
              ) -> tuple[RowValidator, TransactionsTable]:
        customer_keys = load_customer_keys(store.conn)
        return (RowValidator(store.store_id, store.zone, customer_keys, now_utc),
                TransactionsTable(run_id, customer_keys))
