"""Migration 3: alerts keyed by (chain, store, alert id) instead of the alert id alone.

Up to schema 2 an alert id was unique across the whole chain, so a store that
published, on its own topic, the id another store would use next made the
centre ack that other store's real alert as "already stored" and lose it. From
schema 3 the key of `alerts`, `alert_overflows`, `alert_work` and
`alert_outcomes` is (chain, store_id, alert_id), the chain and store being the
topic's. SQLite cannot change a primary key in place and PostgreSQL would need
its own statements, so the four tables are rebuilt the same way on both: the
old ones renamed aside, the new ones created from tables.py, the rows copied
(an outcome takes its alert's chain and store), the old ones dropped. All in
the migration's one transaction: a failure leaves schema 2 as it was.
"""

from __future__ import annotations

from sqlalchemy import Connection, Table, inspect

from . import tables

ALERT_TABLES = (tables.alerts, tables.alert_overflows, tables.alert_work, tables.alert_outcomes)
OLD_INDEXES = ("alerts_by_store", "alerts_by_received", "alerts_by_level", "alert_overflows_by_store",
               "alert_work_by_update", "alert_outcomes_by_alert")
ASIDE = "_schema2"


def _quoted(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)


def _columns(table: Table) -> list[str]:
    return [column.name for column in table.columns]


def _copied_columns(connection: Connection, table: Table, old: str, *, joined: bool) -> list[str]:
    """The new table's columns the old rows can fill; columns added by later migrations take their defaults."""
    present = {column["name"] for column in inspect(connection).get_columns(old)}
    if joined:
        present |= {"chain", "store_id"}
    return [name for name in _columns(table) if name in present]


def _copy(connection: Connection, table: Table, old: str, *, joined: bool) -> None:
    names = _copied_columns(connection, table, old, joined=joined)
    target = ", ".join(_quoted(connection, n) for n in names)
    select_from = _select(connection, names, old, joined=joined)
    connection.exec_driver_sql(f"INSERT INTO {_quoted(connection, table.name)} ({target}) {select_from}")


def _select(connection: Connection, names: list[str], old: str, *, joined: bool = False) -> str:
    """SELECT of `names` from the old table; `joined` takes chain and store from the old alerts."""
    q = lambda name: _quoted(connection, name)  # noqa: E731
    if not joined:
        return f"SELECT {', '.join(q(n) for n in names)} FROM {q(old)}"
    picked = [f"a.{q(n)}" if n in ("chain", "store_id") else f"o.{q(n)}" for n in names]
    return (f"SELECT {', '.join(picked)} FROM {q(old)} o "
            f"JOIN {q('alerts' + ASIDE)} a ON a.{q('alert_id')} = o.{q('alert_id')}")


def _old_shape(connection: Connection) -> bool:
    keys = inspect(connection).get_pk_constraint(tables.alerts.name).get("constrained_columns") or []
    return list(keys) == ["alert_id"]


def rekey_alerts(connection: Connection) -> None:
    """The migration step: rebuild the four alert tables on a schema-2 database; create what is missing."""
    present = set(inspect(connection).get_table_names())
    if tables.alerts.name in present and _old_shape(connection):
        moved = [t for t in ALERT_TABLES if t.name in present]
        for name in OLD_INDEXES:
            connection.exec_driver_sql(f"DROP INDEX IF EXISTS {_quoted(connection, name)}")
        for table in reversed(moved):  # children first
            connection.exec_driver_sql(f"ALTER TABLE {_quoted(connection, table.name)} "
                                       f"RENAME TO {_quoted(connection, table.name + ASIDE)}")
        tables.metadata.create_all(connection, tables=list(ALERT_TABLES), checkfirst=True)
        for table in moved:
            joined = table.name in (tables.alert_work.name, tables.alert_outcomes.name)
            _copy(connection, table, table.name + ASIDE, joined=joined)
        for table in reversed(moved):
            connection.exec_driver_sql(f"DROP TABLE {_quoted(connection, table.name + ASIDE)}")
        if connection.dialect.name == "postgresql" and tables.alert_outcomes in moved:
            connection.exec_driver_sql(  # the copied ids were explicit: the new sequence continues after them
                "SELECT setval(pg_get_serial_sequence('alert_outcomes', 'id'), "
                "coalesce((SELECT max(id) FROM alert_outcomes), 0) + 1, false)")
    else:
        tables.metadata.create_all(connection, tables=list(ALERT_TABLES), checkfirst=True)
