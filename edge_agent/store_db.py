"""The store database: one SQLite file per store box, upgraded in place on open.

Everything the box knows lives here (transactions, customers, footfall, the
quarantine of rejected rows, and later the outbox), so that a power cut or a
SIGKILL can never leave the box with half of a state in memory and half on disk.
WAL mode lets the daemon's writers and the CLI's readers work at the same time.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlite_utils

DEFAULT_CHAIN = "default"
DEFAULT_TIMEZONE = "UTC"
BUSY_TIMEOUT_SECONDS = 30.0


class StoreDbError(Exception):
    """A store database that cannot be used as asked (wrong store, unknown zone...)."""


def run_statements(conn: sqlite3.Connection, script: str) -> None:
    """Run a DDL script inside the caller's transaction.

    `executescript` would commit first, breaking the all-or-nothing migration.
    Comments are dropped first, so they may hold any punctuation.
    """
    code = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    for statement in code.split(";"):
        if statement.strip():
            conn.execute(statement)


def _migration_1(conn: sqlite3.Connection) -> None:
    """Initial schema: metadata, customers, transactions, footfall, quarantine."""
    run_statements(
        conn,
        """
        CREATE TABLE IF NOT EXISTS customers (
            customer_key INTEGER PRIMARY KEY,
            customer_id TEXT NOT NULL UNIQUE
        );
        CREATE TABLE IF NOT EXISTS ingest_runs (
            run_id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            format TEXT NOT NULL,
            header TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL DEFAULT 'running',
            rows INTEGER NOT NULL DEFAULT 0,
            accepted INTEGER NOT NULL DEFAULT 0,
            duplicates INTEGER NOT NULL DEFAULT 0,
            quarantined INTEGER NOT NULL DEFAULT 0
        );
        -- ts: store-local wall-clock time as seconds since 1970-01-01T00:00
        -- (the store's own calendar, which is what shopping rhythms follow).
        -- Keyed by transaction_id (WITHOUT ROWID): the key is the dedupe, so
        -- there is one B-tree to write per row instead of a table plus an index.
        -- run_id is an audit pointer, left unenforced on this hot path.
        CREATE TABLE IF NOT EXISTS transactions (
            transaction_id TEXT PRIMARY KEY,
            customer_key INTEGER REFERENCES customers(customer_key),
            ts INTEGER NOT NULL,
            has_time INTEGER NOT NULL,
            amount REAL NOT NULL,
            items INTEGER,
            channel TEXT,
            run_id INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS footfall (
            source TEXT NOT NULL,
            bucket_start INTEGER NOT NULL,
            bucket_seconds INTEGER NOT NULL,
            entries INTEGER NOT NULL,
            exits INTEGER NOT NULL,
            PRIMARY KEY (source, bucket_start)
        );
        CREATE TABLE IF NOT EXISTS quarantine (
            quarantine_id INTEGER PRIMARY KEY,
            run_id INTEGER REFERENCES ingest_runs(run_id),
            source TEXT NOT NULL,
            line INTEGER NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            raw BLOB NOT NULL,
            fingerprint TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        );
        """
    )


def _migration_2(conn: sqlite3.Connection) -> None:
    """Scoring runs and the alerts they raise."""
    run_statements(
        conn,
        """
        CREATE TABLE IF NOT EXISTS score_runs (
            run_id INTEGER PRIMARY KEY,
            as_of TEXT NOT NULL,
            model_version TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            scored INTEGER NOT NULL DEFAULT 0,
            alerts INTEGER NOT NULL DEFAULT 0,
            levels TEXT
        );
        -- One alert per customer and as-of date: alert_id is derived from them,
        -- so scoring the same day twice (or after a crash) raises nothing new.
        -- seq is this store's monotonic alert counter; it survives restarts.
        CREATE TABLE IF NOT EXISTS alerts (
            alert_id TEXT PRIMARY KEY,
            seq INTEGER NOT NULL UNIQUE,
            run_id INTEGER NOT NULL REFERENCES score_runs(run_id),
            customer_key INTEGER REFERENCES customers(customer_key),
            customer_ref TEXT NOT NULL,
            as_of TEXT NOT NULL,
            risk_score INTEGER NOT NULL,
            level TEXT NOT NULL,
            action TEXT,
            payload TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS alerts_customer ON alerts(customer_key, as_of)
        """,
    )


def _migration_3(conn: sqlite3.Connection) -> None:
    """Footfall from the camera: occupancy, dwell, queue and camera gaps beside the counts."""
    run_statements(
        conn,
        """
        -- Camera buckets add up what each write brings (frames, person-seconds,
        -- histogram counts) so a restart mid-bucket loses and doubles nothing.
        -- Imported counter rows leave the camera-only columns at their defaults.
        ALTER TABLE footfall ADD COLUMN frames INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE footfall ADD COLUMN observed_seconds REAL NOT NULL DEFAULT 0;
        ALTER TABLE footfall ADD COLUMN gap_seconds REAL NOT NULL DEFAULT 0;
        ALTER TABLE footfall ADD COLUMN occupancy INTEGER;
        ALTER TABLE footfall ADD COLUMN occupancy_max INTEGER;
        ALTER TABLE footfall ADD COLUMN queue_person_seconds REAL;
        ALTER TABLE footfall ADD COLUMN queue_max INTEGER;
        ALTER TABLE footfall ADD COLUMN dwell_tracks INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE footfall ADD COLUMN dwell_seconds REAL NOT NULL DEFAULT 0;
        ALTER TABLE footfall ADD COLUMN updated_at TEXT;
        -- Dwell-time histogram: tracks that ended in the bucket, by the lower
        -- edge of their dwell bin in seconds (the last bin is open-ended).
        CREATE TABLE IF NOT EXISTS footfall_dwell (
            source TEXT NOT NULL,
            bucket_start INTEGER NOT NULL,
            dwell_from_seconds INTEGER NOT NULL,
            tracks INTEGER NOT NULL,
            PRIMARY KEY (source, bucket_start, dwell_from_seconds)
        ) WITHOUT ROWID;
        -- Times the camera gave no frames, in store-local seconds like bucket_start.
        CREATE TABLE IF NOT EXISTS camera_gaps (
            source TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            ended_at INTEGER NOT NULL,
            seconds REAL NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (source, started_at)
        );
        -- The latest state of each camera, for status reports.
        CREATE TABLE IF NOT EXISTS camera_status (
            source TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            detail TEXT NOT NULL,
            frames INTEGER NOT NULL,
            gaps INTEGER NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
    )


def _migration_4(conn: sqlite3.Connection) -> None:
    """The outbox: every message for the central side, kept until the aggregator acknowledges it."""
    run_statements(
        conn,
        """
        -- seq is the store's alert counter of the contract; alert_id is stable
        -- across resends. last_sent_at is unix time (resends compare to it).
        CREATE TABLE IF NOT EXISTS outbox (
            seq INTEGER PRIMARY KEY,
            alert_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at TEXT NOT NULL,
            sent_count INTEGER NOT NULL DEFAULT 0,
            last_sent_at REAL,
            acked_at TEXT
        );
        CREATE INDEX IF NOT EXISTS outbox_unacked ON outbox(acked_at, seq);
        ALTER TABLE alerts ADD COLUMN control INTEGER NOT NULL DEFAULT 0;
        -- Alerts recorded before the outbox existed still have to be delivered.
        INSERT OR IGNORE INTO outbox(seq, alert_id, kind, payload, created_at)
            SELECT seq, alert_id, 'alert', payload, created_at FROM alerts
        """,
    )


def _migration_5(conn: sqlite3.Connection) -> None:
    """Alerts the aggregator refused (dead-lettered) stop being resent and are counted for the alarm."""
    conn.execute("ALTER TABLE outbox ADD COLUMN rejected_reason TEXT")


def _migration_6(conn: sqlite3.Connection) -> None:
    """Scoring looks up each candidate's last alert by `customer_ref` and counts today's alerts inside its
    write transaction: without these indexes both scan the whole alerts table, which grows for years."""
    conn.execute("CREATE INDEX IF NOT EXISTS alerts_ref ON alerts(customer_ref, as_of, seq)")
    conn.execute("CREATE INDEX IF NOT EXISTS alerts_as_of ON alerts(as_of)")


def _migration_7(conn: sqlite3.Connection) -> None:
    """Alerts come in two lists with their own budgets: early warnings, and win-backs for lapsed customers."""
    conn.execute("ALTER TABLE alerts ADD COLUMN kind TEXT NOT NULL DEFAULT 'early_warning'")
    conn.execute("CREATE INDEX IF NOT EXISTS alerts_kind_as_of ON alerts(kind, as_of)")


def _migration_8(conn: sqlite3.Connection) -> None:
    """Each ingest run says which input it read (pos, events, identities, footfall), for data quality per input.

    Runs recorded before this step were POS exports, except footfall counter imports (format 'footfall')."""
    conn.execute("ALTER TABLE ingest_runs ADD COLUMN input TEXT NOT NULL DEFAULT 'pos'")
    conn.execute("UPDATE ingest_runs SET input = 'footfall' WHERE format LIKE 'footfall%'")
    conn.execute("CREATE INDEX IF NOT EXISTS ingest_runs_by_input ON ingest_runs(input, started_at)")


def _migration_9(conn: sqlite3.Connection) -> None:
    """Every metrics message counts each recent run's quarantined rows by reason (edge_agent/data_quality.py):
    without this index that is a scan of the whole quarantine, which only grows."""
    conn.execute("CREATE INDEX IF NOT EXISTS quarantine_by_run ON quarantine(run_id, reason)")


def _migration_10(conn: sqlite3.Connection) -> None:
    """Customer events and identity links (docs/ingest.md): one customer across the store, online and phone."""
    run_statements(
        conn,
        """
        -- Keyed by event id (given, or derived from the row's content) like
        -- transactions: the key is the dedupe. customer_ref is the id the event
        -- arrived under (a loyalty id, an online account) or the keyed hash of
        -- a phone or e-mail (phone:..., email:...); customer_aliases maps it to
        -- the loyalty customer when the store is read, so arrival order does not
        -- matter. kind is a name of models/events.py's EVENT_KINDS; note is a
        -- category of edge_agent/ingest/notes.py, never the text. No index by
        -- customer: everything on the box reads the whole table, and events
        -- arrive in time order, not customer order, so such an index took a
        -- write all over it per batch (ingest fell from 78k to 15k rows/s).
        CREATE TABLE IF NOT EXISTS customer_events (
            event_id TEXT PRIMARY KEY,
            customer_ref TEXT NOT NULL,
            ts INTEGER NOT NULL,
            has_time INTEGER NOT NULL,
            kind TEXT NOT NULL,
            value REAL,
            channel TEXT,
            note TEXT,
            run_id INTEGER NOT NULL
        ) WITHOUT ROWID;
        -- One owner per alias (an online account id as it is, a phone or e-mail
        -- as its keyed hash); aliases never chain (edge_agent/ingest/identities.py).
        CREATE TABLE IF NOT EXISTS customer_aliases (
            alias TEXT PRIMARY KEY,
            customer_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            run_id INTEGER NOT NULL,
            created_at TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS customer_aliases_by_customer ON customer_aliases(customer_id)
        """,
    )


# Append only: a box that was switched off for a year upgrades by running every
# migration after its recorded version, in order, each in its own transaction.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _migration_1, _migration_2, _migration_3, _migration_4, _migration_5, _migration_6, _migration_7,
    _migration_8, _migration_9, _migration_10,
]
SCHEMA_VERSION = len(MIGRATIONS)


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception.

    IMMEDIATE takes the write lock up front, so two writers wait on the busy
    timeout instead of failing on a lock upgrade half-way through.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def utc_now_iso() -> str:
    """Wall-clock time for audit columns, in UTC so boxes in any zone compare."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class StoreIdentity:
    """Who this database belongs to; written once when it is created."""

    chain: str
    store_id: str
    timezone: str


class StoreDatabase:
    """An open store database with its identity and an up-to-date schema."""

    def __init__(self, conn: sqlite3.Connection, identity: StoreIdentity, path: Path | None):
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self.identity = identity
        self.path = path

    @property
    def chain(self) -> str:
        return self.identity.chain

    @property
    def store_id(self) -> str:
        return self.identity.store_id

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.identity.timezone)

    def schema_version(self) -> int:
        return _read_schema_version(self.conn)

    def metadata(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM metadata").fetchall())

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> StoreDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _connect(target: str, uri: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(
        target,
        isolation_level=None,  # we issue BEGIN/COMMIT ourselves
        timeout=BUSY_TIMEOUT_SECONDS,
        check_same_thread=False,
        uri=uri,
    )
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _read_schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM metadata WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS metadata (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for version, migration in enumerate(MIGRATIONS, start=1):
        with write_transaction(conn):
            # Re-read inside the lock: another process may have migrated meanwhile.
            if _read_schema_version(conn) >= version:
                continue
            migration(conn)
            conn.execute(
                "INSERT OR REPLACE INTO metadata(key, value) VALUES ('schema_version', ?)",
                (str(version),),
            )


def _check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise StoreDbError(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)")


def _settle_identity(
    conn: sqlite3.Connection,
    path: Path | None,
    chain: str | None,
    store_id: str | None,
    timezone: str | None,
) -> StoreIdentity:
    """Record the identity on first open; refuse a different one afterwards."""
    wanted = {"chain": chain, "store_id": store_id, "timezone": timezone}
    defaults = {
        "chain": DEFAULT_CHAIN,
        "store_id": path.stem if path else "store",
        "timezone": DEFAULT_TIMEZONE,
    }
    with write_transaction(conn):
        stored = dict(
            conn.execute(
                "SELECT key, value FROM metadata WHERE key IN ('chain', 'store_id', 'timezone')"
            ).fetchall()
        )
        for key, value in wanted.items():
            if key in stored:
                if value is not None and value != stored[key]:
                    raise StoreDbError(
                        f"database {path or ':memory:'} belongs to {key} {stored[key]!r}, "
                        f"not {value!r}"
                    )
                continue
            chosen = value if value is not None else defaults[key]
            if key == "timezone":
                _check_zone(chosen)
            if not chosen:
                raise StoreDbError(f"{key} must not be empty")
            conn.execute("INSERT INTO metadata(key, value) VALUES (?, ?)", (key, chosen))
            stored[key] = chosen
        conn.execute(
            "INSERT OR IGNORE INTO metadata(key, value) VALUES ('created_at', ?)", (utc_now_iso(),)
        )
    return StoreIdentity(stored["chain"], stored["store_id"], stored["timezone"])


def open_store_db(
    path: str | Path,
    *,
    chain: str | None = None,
    store_id: str | None = None,
    timezone: str | None = None,
    create: bool = True,
) -> StoreDatabase:
    """Open (or create) a store database, migrate it, and check whose it is.

    `chain`, `store_id` and `timezone` are recorded when the database is created
    (defaults: chain ``default``, the file's stem, UTC); on a later open they must
    match what is recorded, so a box never mixes two stores' data by accident.
    """
    memory = str(path) == ":memory:"
    file_path = None if memory else Path(path)
    if file_path is not None and not create and not file_path.exists():
        raise StoreDbError(f"store database {file_path} does not exist")
    if file_path is not None and file_path.exists() and file_path.is_dir():
        raise StoreDbError(f"{file_path} is a directory, not a store database")
    if file_path is not None and create:
        file_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = _connect(":memory:" if memory else str(file_path))
    except sqlite3.Error as exc:
        raise StoreDbError(f"cannot open store database {path}: {exc}") from exc
    try:
        if not memory:
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a power cut must not undo a committed alert or batch.
            conn.execute("PRAGMA synchronous = FULL")
        _migrate(conn)
        identity = _settle_identity(conn, file_path, chain, store_id, timezone)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreDbError(f"{path} is not a usable store database: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return StoreDatabase(conn, identity, file_path)


def open_store_db_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection for processes that must never write (training, reports)."""
    file_path = Path(path)
    if not file_path.exists():
        raise StoreDbError(f"store database {file_path} does not exist")
    return _connect(f"{file_path.resolve().as_uri()}?mode=ro", uri=True)
