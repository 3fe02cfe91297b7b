"""Opening the central database: a SQLite file (the default) or PostgreSQL, one schema on both.

SQLite runs in WAL mode with foreign keys on, `synchronous=FULL` (a commit the
aggregator has acknowledged to the broker must survive a power cut) and a busy
timeout; writes start with BEGIN IMMEDIATE so several aggregator processes
sharing one file queue for the write lock instead of failing half-way through
a transaction. PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

BUSY_TIMEOUT_SECONDS = 30.0  # how long a SQLite writer waits for another before the database counts as unavailable
_WRITE = "central_write"


class CentralDbError(Exception):
    """The central database cannot be opened or used (bad address, server down, schema too new)."""


def utc_now_iso() -> str:
    """UTC with microseconds: rows received in the same second still sort in arrival order."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def database_url(target: str) -> str:
    """`central.db` → a SQLite URL; `postgresql://...` → the psycopg 3 driver; any SQLAlchemy URL as is."""
    if target.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + target.split("://", 1)[1]
    if "://" in target:
        return target
    return f"sqlite:///{Path(target).expanduser().resolve()}"


def _sqlite_engine(url: str, busy_timeout_seconds: float) -> Engine:
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": busy_timeout_seconds})
    busy_timeout_ms = int(busy_timeout_seconds * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we send BEGIN ourselves, below
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=FULL", f"busy_timeout={busy_timeout_ms}"):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        writes = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


@dataclass
class CentralDb:
    """The engine plus the two ways in: a write transaction and a read."""

    engine: Engine
    target: str

    @property
    def address(self) -> str:
        """As the operator would write it: no driver name, no password."""
        url = self.engine.url
        return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction holding the write lock from its start (SQLite), committed on success."""
        with self.engine.connect().execution_options(**{_WRITE: True}) as connection, connection.begin():
            yield connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as connection, connection.begin():
            yield connection

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> CentralDb:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def create_central_engine(target: str, busy_timeout_seconds: float = BUSY_TIMEOUT_SECONDS) -> Engine:
    try:
        url = database_url(target)
        if make_url(url).get_backend_name() == "sqlite":
            return _sqlite_engine(url, busy_timeout_seconds)
        return create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise CentralDbError(f"cannot use central database {target!r}: {exc}") from None


def _migrate_when_free(db: CentralDb, migrate: Any, attempts: int = 8) -> None:
    """Migrate, retrying a SQLite "database is locked" a few times.

    Several aggregators starting at once on one SQLite file can be told "locked"
    straight away, without the busy timeout being honoured: while one of them
    recovers the WAL index or switches the journal mode, SQLite answers BUSY
    rather than wait. That is a moment, not a fault, so try again shortly.
    """
    for attempt in range(attempts):
        try:
            migrate(db)
            return
        except OperationalError as exc:
            if not db.is_sqlite or "locked" not in str(exc.orig) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * 2**attempt)


def open_central_db(target: str, create: bool = True, busy_timeout_seconds: float = BUSY_TIMEOUT_SECONDS) -> CentralDb:
    """Open and migrate the central database at `target`; a missing SQLite file is created unless `create` is off.
    `busy_timeout_seconds`: how long a SQLite writer waits for another one (PostgreSQL does not need it)."""
    from .migrations import migrate

    db = CentralDb(create_central_engine(target, busy_timeout_seconds), target)
    path = db.engine.url.database
    if db.is_sqlite and not create and path and not Path(path).exists():
        db.close()
        raise CentralDbError(f"central database {path} does not exist")
    try:
        _migrate_when_free(db, migrate)
    except SQLAlchemyError as exc:
        db.close()
        raise CentralDbError(f"cannot open central database {db.address}: {driver_message(exc)}") from None
    except CentralDbError:
        db.close()
        raise
    return db



def driver_message(exc: BaseException) -> str:
    """The driver's own first line, without SQLAlchemy's statement dump (which may hold a payload)."""
    original = getattr(exc, "orig", None) or exc
    return (str(original).strip().splitlines() or [type(original).__name__])[0]


def upsert(connection: Connection, table: Table, row: dict[str, Any], keys: Sequence[str],
           update: Sequence[str] | None = None) -> int:
    """INSERT ... ON CONFLICT (keys) DO NOTHING, or DO UPDATE of `update`; the number of rows written."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(row)
    if update:
        statement = statement.on_conflict_do_update(
            index_elements=list(keys), set_={name: statement.excluded[name] for name in update})
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT through SQLAlchemy
    return len(connection.execute(statement.returning(*(table.c[k] for k in keys))).all())


def insert_new(connection: Connection, table: Table, rows: list[dict[str, Any]], keys: Sequence[str],
               returned: str) -> set[Any]:
    """INSERT ... ON CONFLICT (keys) DO NOTHING of many rows at once; the `returned` column of the rows written."""
    if not rows:
        return set()
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing(index_elements=list(keys)).returning(table.c[returned])
    return {row[0] for row in connection.execute(statement, rows)}
