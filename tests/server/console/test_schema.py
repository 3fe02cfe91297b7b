"""A central database from before the console upgrades itself on open, its alerts kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from server.central import list_alerts, migrations, open_central_db
from server.console.accounts import create_account
from server.console.work import record_outcome

from .chain import PASSWORD, alert_document, store_documents

CONSOLE_TABLES = {"users", "user_stores", "console_sessions", "login_failures", "alert_work", "alert_outcomes",
                  "model_releases", "model_rounds"}


def test_an_aggregator_only_database_gains_the_console_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               quick_passwords: None) -> None:
    target = str(tmp_path / "central.db")
    with monkeypatch.context() as old_release:
        old_release.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
        old_release.setattr(migrations, "LATEST", 1)
        with open_central_db(target) as db, db.write() as connection:
            store_documents(connection, [alert_document("acme", "s1", 1, "red", 70, False)])
            assert not CONSOLE_TABLES & set(inspect(connection).get_table_names())
    with open_central_db(target) as db:
        with db.read() as connection:
            assert CONSOLE_TABLES <= set(inspect(connection).get_table_names())
            assert migrations.schema_version(connection) == migrations.LATEST
        ada = create_account(db, "ada", PASSWORD, "admin")
        assert record_outcome(db, ada, ("acme", "s1", "acme-s1-000001"), "stayed")["result"] == "stayed"
        assert [a["alert_id"] for a in list_alerts(db)] == ["acme-s1-000001"]
