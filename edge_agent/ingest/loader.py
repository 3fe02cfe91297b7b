"""Writing validated rows into the store database in all-or-nothing batches, for any contract.

Each batch (its rows, its quarantined rows and the run's running totals)
commits in one SQLite transaction, so a crash mid-file leaves whole batches
only, and re-ingesting the file afterwards adds exactly what is missing. What
differs between POS sales, customer events and identity links is only the
validator that makes rows and the table that stores them (an `Input`).
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
from typing import Protocol

from ..store_db import StoreDatabase, utc_now_iso, write_transaction
from ..store_queries import runs
from .contract import Contract
from .records import Rejected, Validator, iter_batches
from .source import SourceFile, open_source

DEFAULT_BATCH_SIZE = 20_000


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


class Table(Protocol):
    """Where one contract's rows go."""

    def insert(self, conn: sqlite3.Connection, rows: list) -> int:  # type: ignore[type-arg]
        """Store the rows inside the caller's transaction; return how many were new (the rest are duplicates)."""
        ...

    def rolled_back(self, conn: sqlite3.Connection) -> None:
        """The batch did not commit: forget whatever `insert` remembered of it."""
        ...


class Input(Protocol):
    """One contract, with the validator that reads its rows and the table that stores them."""

    contract: Contract

    def begin(self, store: StoreDatabase, run_id: int, now_utc: datetime | None) -> tuple[Validator, Table]:
        """A validator and a table for one run (they may share what they know of the database)."""
        ...


def _fingerprint(source: str, line: int, raw: bytes) -> str:
    digest = hashlib.blake2b(f"{source}\x1f{line}\x1f".encode() + raw, digest_size=16)
    return digest.hexdigest()


class BatchWriter:
    """Commits batches atomically, each with its quarantined rows and the run's running totals."""

    def __init__(self, store: StoreDatabase, source: SourceFile, run_id: int, table: Table):
        self.store = store
        self.source = source
        self.run_id = run_id
        self.table = table
        self.counts = IngestCounts()

    def write(self, rows: list, rejected: list[Rejected]) -> None:  # type: ignore[type-arg]
        if not rows and not rejected:
            return
        conn = self.store.conn
        now = utc_now_iso()
        name = self.source.name
        try:
            with write_transaction(conn):
                accepted = self.table.insert(conn, rows) if rows else 0
                runs.quarantine_rows(
                    conn,
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
                runs.add_to_run(conn, self.run_id, batch.rows, batch.accepted, batch.duplicates, batch.quarantined)
        except BaseException:
            self.table.rolled_back(conn)
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
    with write_transaction(store.conn):
        return runs.start_run(store, source=source.name, format=source.format + (".gz" if source.compressed else ""),
                              header=",".join(source.header) or None, input=source.contract.input)


def _finish_run(store: StoreDatabase, run_id: int, status: str) -> None:
    with write_transaction(store.conn):
        runs.finish_run(store, run_id, status)


def ingest_source(
    store: StoreDatabase,
    source: SourceFile,
    kind: Input,
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
    status = "failed"
    try:
        validator, table = kind.begin(store, run_id, now_utc)
        writer = BatchWriter(store, source, run_id, table)
        handle, raw_file = open_source(source)
        try:
            with _bulk_load_gc():
                for rows, rejected in iter_batches(handle, source, validator, batch_size):
                    writer.write(rows, rejected)
                    if progress is not None:
                        progress(raw_file.tell())
        finally:
            handle.close()
            raw_file.close()
        status = "done"
    finally:
        _finish_run(store, run_id, status)
    if progress is not None:
        progress(source.size)
    return writer.counts
