"""Schema migrations, run on open: an append-only list, each step in its own transaction.

A central database that was left on an old release upgrades itself the next
time any churn-server command opens it. The version reached is a row in
`schema_migrations`; a database newer than this code is refused rather than
written with the wrong shape.

Adding to the schema: declare the new table (or column) in tables.py, then
append a Migration whose step creates it with `create_tables` / `add_columns`.
Both only create what is missing, so a fresh database (where an earlier step
already created the current declaration) and an old one (where it did not)
end up the same. Anything else (a rename, a backfill) is a step of its own.
Several processes may open the database at once: SQLite serialises them with
BEGIN IMMEDIATE, PostgreSQL with a transaction-scoped advisory lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Table, inspect, select, text
from sqlalchemy.schema import CreateColumn

from . import tables
from .database import CentralDb, CentralDbError, utc_now_iso
from .rekey import rekey_alerts

_LOCK_KEY = 0x6368726E  # "chrn": one advisory lock id for this schema's migrations


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    step: Callable[[Connection], None]


def create_tables(*wanted: Table) -> Callable[[Connection], None]:
    def step(connection: Connection) -> None:
        tables.metadata.create_all(connection, tables=list(wanted), checkfirst=True)
    return step


def add_columns(table: Table, *names: str) -> Callable[[Connection], None]:
    """ALTER TABLE ... ADD COLUMN for the declared columns the table does not have yet."""
    def step(connection: Connection) -> None:
        present = {column["name"] for column in inspect(connection).get_columns(table.name)}
        quoted = connection.dialect.identifier_preparer.format_table(table)
        for name in names:
            if name not in present:
                column = CreateColumn(table.c[name]).compile(dialect=connection.dialect)
                connection.exec_driver_sql(f"ALTER TABLE {quoted} ADD COLUMN {column}")
    return step


def _steps(*steps: Callable[[Connection], None]) -> Callable[[Connection], None]:
    def step(connection: Connection) -> None:
        for part in steps:
            part(connection)
    return step


MIGRATIONS: list[Migration] = [
    Migration(1, "alerts, overflows, dead letters, stores, seq watermarks and gaps, metrics, hourly footfall",
              create_tables(tables.alerts, tables.alert_overflows, tables.dead_letters, tables.stores,
                            tables.store_seq, tables.seq_gaps, tables.store_metrics, tables.footfall_hourly)),
    # Alert work and outcomes came with this step until schema 3 re-keyed them on (chain, store, alert id);
    # migration 3 creates them now, so that their keys always match the alerts table they refer to.
    Migration(2, "console: users and sessions, alert work and outcomes, model releases and rounds",
              create_tables(tables.users, tables.user_stores, tables.console_sessions, tables.login_failures,
                            tables.model_releases, tables.model_rounds)),
    Migration(3, "alerts keyed by (chain, store, alert id); dead letters record their size",
              _steps(rekey_alerts, add_columns(tables.dead_letters, "size"))),
    Migration(4, "alerts say which list they belong to: early warnings or win-backs",
              add_columns(tables.alerts, "kind")),
    Migration(5, "alerts keep the customer's recent events (kind, days ago, value) beside their reasons",
              add_columns(tables.alerts, "recent_events")),
    Migration(6, "data quality: each store's inputs per day (runs, rows accepted and quarantined) and camera gaps",
              create_tables(tables.input_days, tables.camera_gap_days)),
    Migration(7, "model rounds record their wall time, the slowest store's training and the overhead",
              add_columns(tables.model_rounds, "wall_seconds", "train_seconds", "overhead_seconds")),
]
LATEST = MIGRATIONS[-1].version


def schema_version(connection: Connection) -> int:
    if not inspect(connection).has_table(tables.schema_migrations.name):
        return 0
    return int(connection.execute(select(tables.schema_migrations.c.version)
                                  .order_by(tables.schema_migrations.c.version.desc()).limit(1)).scalar() or 0)


def migrate(db: CentralDb) -> int:
    """Apply the missing migrations in order; return the schema version reached."""
    version = 0
    for migration in MIGRATIONS:
        with db.write() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            tables.schema_migrations.create(connection, checkfirst=True)
            version = schema_version(connection)
            if version > LATEST:
                raise CentralDbError(f"central database schema version {version} is newer than this "
                                     f"churn-server knows ({LATEST}); upgrade churn-server")
            if version >= migration.version:
                continue
            migration.step(connection)
            connection.execute(tables.schema_migrations.insert().values(
                version=migration.version, description=migration.description, applied_at=utc_now_iso()))
            version = migration.version
    return version
