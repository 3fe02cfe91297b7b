"""The store database: identity, WAL, foreign keys, and migrations that upgrade old boxes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge_agent import store_db
from edge_agent.store_db import SCHEMA_VERSION, StoreDbError, open_store_db


def test_new_database_records_identity_and_schema(store_path: Path) -> None:
    with open_store_db(store_path, chain="acme", timezone="Europe/Paris") as store:
        assert store.store_id == "store-01"  # the file's stem
        assert store.chain == "acme"
        meta = store.metadata()
    assert meta["schema_version"] == str(SCHEMA_VERSION)
    assert meta["timezone"] == "Europe/Paris"
    tables = set(sqlite3.connect(store_path).execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'").fetchall())
    for name in ("metadata", "transactions", "customers", "footfall", "quarantine", "ingest_runs"):
        assert (name,) in tables


def test_defaults_are_chain_default_and_file_stem(tmp_path: Path) -> None:
    with open_store_db(tmp_path / "lyon-centre.db") as store:
        assert (store.chain, store.store_id, store.identity.timezone) == ("default", "lyon-centre", "UTC")


def test_wal_and_foreign_keys_are_on(store_path: Path) -> None:
    with open_store_db(store_path) as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        store.conn.execute("INSERT INTO customers(customer_key, customer_id) VALUES (1, 'C1')")
        insert = "INSERT INTO transactions(transaction_id, customer_key, ts, has_time, amount, run_id) VALUES (?, ?, 0, 0, 1.0, 1)"
        store.conn.execute(insert, ("t1", 1))  # a complete row of a known customer is stored...
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY constraint failed"):
            store.conn.execute(insert, ("t2", 999))  # ...the same row of an unknown one is refused
        assert [r[0] for r in store.conn.execute("SELECT transaction_id FROM transactions")] == ["t1"]


def test_reopening_with_another_store_id_is_refused(store_path: Path) -> None:
    open_store_db(store_path, store_id="paris-01").close()
    with pytest.raises(StoreDbError, match="belongs to store_id 'paris-01'"):
        open_store_db(store_path, store_id="lyon-02")
    with open_store_db(store_path) as store:  # no claim: the recorded identity is used
        assert store.store_id == "paris-01"


def test_unknown_time_zone_is_a_clear_error(store_path: Path) -> None:
    with pytest.raises(StoreDbError, match="unknown time zone 'Mars/Olympus'"):
        open_store_db(store_path, timezone="Mars/Olympus")


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreDbError, match="not a usable store database"):
        open_store_db(junk)


def test_old_database_upgrades_itself_on_open(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A box that ran an older release gets every later migration, once, in order."""
    with open_store_db(store_path) as store:
        store.conn.execute("INSERT INTO customers(customer_id) VALUES ('kept')")
    applied: list[int] = []

    def add_loyalty_tier(conn: sqlite3.Connection) -> None:
        applied.append(1)
        conn.execute("ALTER TABLE customers ADD COLUMN tier TEXT")

    monkeypatch.setattr(store_db, "MIGRATIONS", [*store_db.MIGRATIONS, add_loyalty_tier])
    with open_store_db(store_path) as store:
        assert store.schema_version() == SCHEMA_VERSION + 1
        assert store.conn.execute("SELECT customer_id, tier FROM customers").fetchall() == [("kept", None)]
    with open_store_db(store_path) as store:  # already at the new version: nothing runs again
        assert store.schema_version() == SCHEMA_VERSION + 1
    assert applied == [1]


def test_failed_migration_leaves_the_old_version_intact(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    open_store_db(store_path).close()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE customers ADD COLUMN half_done TEXT")
        raise RuntimeError("power cut")

    monkeypatch.setattr(store_db, "MIGRATIONS", [*store_db.MIGRATIONS, broken])
    with pytest.raises(RuntimeError):
        open_store_db(store_path)
    monkeypatch.undo()
    with open_store_db(store_path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        columns = [r[1] for r in store.conn.execute("PRAGMA table_info(customers)")]
        assert "half_done" not in columns


def test_missing_folders_are_created(tmp_path: Path) -> None:
    with open_store_db(tmp_path / "var" / "lib" / "store-07.db") as store:
        assert store.store_id == "store-07"


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    with pytest.raises((StoreDbError, OSError)):
        open_store_db(blocker / "store.db")


def test_scorings_alert_lookups_use_an_index_not_a_scan_of_every_alert(store_path: Path) -> None:
    """Each scoring run asks these inside its write transaction; the alerts table grows for years."""
    with open_store_db(store_path, chain="acme"):
        pass
    conn = sqlite3.connect(store_path)
    plans = [" ".join(str(row[-1]) for row in conn.execute(f"EXPLAIN QUERY PLAN {query}", args))
             for query, args in (
                 ("SELECT level, as_of FROM alerts WHERE customer_ref = ? ORDER BY as_of DESC, seq DESC LIMIT 1",
                  ("C1",)),
                 ("SELECT count(*) FROM alerts WHERE as_of = ?", ("2026-03-01",)),
             )]
    assert all("USING" in plan and "INDEX" in plan for plan in plans), plans
