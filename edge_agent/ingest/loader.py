"""Writing validated rows into the store database in all-or-nothing batches.

Each batch (its transactions, its quarantined rows and the run's running totals)
commits in one SQLite transaction, so a crash mid-file leaves whole batches
only, and re-ingesting the file afterwards adds exactly what is missing.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from ..store_db import StoreDatabase, utc_now_iso, write_transaction
from .records import Rejected, iter_batches
from .source import SourceFile, open_source
from .validate import RowValidator

DEFAULT_BATCH_SIZE = 20_000

_INSERT_TRANSACTION = (
    "INSERT OR IGNORE INTO transactions"
    "(transaction_id, customer_key, ts, has_time, amount, items, channel, run_id)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, {run_id:d})"
)
_INSERT_QUARANTINE = (
    "INSERT OR IGNORE INTO quarantine"
    "(run_id, source, line, reason, detail, raw, fingerprint, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass
class IngestCounts:
    """What happened to the rows of one or more files; the four counts always reconcile."""

    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: IngestCounts) -> None:
        self.rows += other.rows
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.reasons.update(other.reasons)

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "reasons": dict(sorted(self.reasons.items())),
        }


def load_customer_keys(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT customer_id, customer_key FROM customers").fetchall())


def _fingerprint(source: str, line: int, raw: bytes) -> str:
    digest = hashlib.blake2b(f"{source}\x1f{line}\x1f".encode() + raw, digest_size=16)
    return digest.hexdigest()


class BatchWriter:
    """Commits batches atomically, each with the run's running totals.

    Rows come from RowValidator: a *list* row names a customer not seen when
    it was validated; the writer keys that customer inside the batch's
    transaction and puts the key into the row.
    """

    def __init__(self, store: StoreDatabase, source: SourceFile, run_id: int, customer_keys: dict[str, int]):
        self.store = store
        self.source = source
        self.run_id = run_id
        self.customer_keys = customer_keys
        self.insert_sql = _INSERT_TRANSACTION.format(run_id=run_id)
        self.counts = IngestCounts()

    def _create_customers(self, conn: sqlite3.Connection, rows: list) -> None:  # type: ignore[type-arg]
        """We hold the write lock, so numbering after the current maximum cannot collide."""
        keys = self.customer_keys
        new_rows = [row for row in rows if row.__class__ is list]
        if not new_rows:
            return
        created = list(dict.fromkeys(row[1] for row in new_rows if row[1] not in keys))
        next_key = conn.execute("SELECT coalesce(max(customer_key), 0) + 1 FROM customers").fetchone()[0]
        conn.executemany(
            "INSERT INTO customers(customer_key, customer_id) VALUES (?, ?)",
            [(next_key + offset, c) for offset, c in enumerate(created)],
        )
        for offset, customer_id in enumerate(created):
            keys[customer_id] = next_key + offset
        for row in new_rows:
            row[1] = keys[row[1]]

    def write(self, rows: list, rejected: list[Rejected]) -> None:  # type: ignore[type-arg]
        if not rows and not rejected:
            return
        conn = self.store.conn
        now = utc_now_iso()
        name = self.source.name
        try:
            with write_transaction(conn):
                self._create_customers(conn, rows)
                accepted = conn.executemany(self.insert_sql, rows).rowcount if rows else 0
                conn.executemany(
                    _INSERT_QUARANTINE,
                    [
                        (self.run_id, name, r.line, r.reason, r.detail, r.raw, _fingerprint(name, r.line, r.raw), now)
                        for r in rejected
                    ],
                )
                batch = IngestCounts(
                    rows=len(rows) + len(rejected),
                    accepted=accepted,
                    duplicates=len(rows) - accepted,
                    quarantined=len(rejected),
                    reasons=Counter(r.reason for r in rejected),
                )
                conn.execute(
                    "UPDATE ingest_runs SET rows = rows + ?, accepted = accepted + ?,"
                    " duplicates = duplicates + ?, quarantined = quarantined + ? WHERE run_id = ?",
                    (batch.rows, batch.accepted, batch.duplicates, batch.quarantined, self.run_id),
                )
        except BaseException:
            # Rolled back: keys handed out in this batch no longer exist.
            fresh = load_customer_keys(conn)
            for customer_id in [c for c in self.customer_keys if c not in fresh]:
                del self.customer_keys[customer_id]
            raise
        self.counts.add(batch)


@contextlib.contextmanager
def _bulk_load_gc() -> Iterator[None]:
    """Fewer, cheaper garbage collections while millions of row tuples come and go.

    The rows hold no reference cycles, so the collector finds nothing in them;
    freezing what already exists and collecting less often saved 10-20% of
    ingest time in benchmarks/ingest.py. Everything is restored afterwards.
    """
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(20_000, previous[1], previous[2])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def _start_run(store: StoreDatabase, source: SourceFile) -> int:
    with write_transaction(store.conn) as conn:
        cursor = conn.execute(
            "INSERT INTO ingest_runs(source, format, header, started_at) VALUES (?, ?, ?, ?)",
            (
                source.name,
                source.format + (".gz" if source.compressed else ""),
                ",".join(source.header) or None,
                utc_now_iso(),
            ),
        )
        return int(cursor.lastrowid or 0)


def _finish_run(store: StoreDatabase, run_id: int, status: str) -> None:
    with write_transaction(store.conn) as conn:
        conn.execute(
            "UPDATE ingest_runs SET status = ?, finished_at = ? WHERE run_id = ?",
            (status, utc_now_iso(), run_id),
        )


def ingest_source(
    store: StoreDatabase,
    source: SourceFile,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    now_utc: datetime | None = None,
) -> IngestCounts:
    """Ingest one checked source file; `progress` receives the bytes read so far.

    Batches are parsed and committed in turn on this thread. (Overlapping them
    on a writer thread was measured slower: binding parameters needs the GIL,
    and the two threads convoy on it.)
    """
    run_id = _start_run(store, source)
    customer_keys = load_customer_keys(store.conn)
    writer = BatchWriter(store, source, run_id, customer_keys)
    validator = RowValidator(store.store_id, store.zone, customer_keys, now_utc)
    handle, raw_file = open_source(source)
    status = "failed"
    try:
        with _bulk_load_gc():
            for rows, rejected in iter_batches(handle, source, validator, batch_size):
                writer.write(rows, rejected)
                if progress is not None:
                    progress(raw_file.tell())
        status = "done"
    finally:
        handle.close()
        raw_file.close()
        _finish_run(store, run_id, status)
    if progress is not None:
        progress(source.size)
    return writer.counts
