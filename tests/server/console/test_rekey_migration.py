"""Migration 3 on a real schema-2 database (SQLite and PostgreSQL): alerts re-keyed by store, nothing lost."""

from __future__ import annotations

import json

from sqlalchemy import (
    BigInteger, Boolean, Column, Float, ForeignKey, Index, Integer, LargeBinary, MetaData, Table, Text,
    UniqueConstraint, create_engine, false, inspect, select,
)

from server.central import migrations, open_central_db, store_alerts, tables, utc_now_iso
from server.central.database import database_url
from server.console.accounts import create_account
from server.console.work import record_outcome
from tests.services import churn_alert


def schema_2() -> MetaData:
    """The alert tables and dead letters exactly as schema 2 declared them (alert id unique chain-wide)."""
    old = MetaData()
    Table("alerts", old, Column("alert_id", Text, primary_key=True), Column("seq", BigInteger, nullable=False),
          Column("chain", Text, nullable=False), Column("store_id", Text, nullable=False),
          Column("customer_ref", Text, nullable=False), Column("as_of", Text, nullable=False),
          Column("risk_score", Integer, nullable=False), Column("level", Text, nullable=False),
          Column("action", Text), Column("action_label", Text), Column("reasons", Text, nullable=False),
          Column("clv_estimate", Float, nullable=False), Column("action_cost_cap", Float, nullable=False),
          Column("model_version", Text, nullable=False),
          Column("control", Boolean, nullable=False, server_default=false()),
          Column("created_at", Text, nullable=False), Column("payload", Text, nullable=False),
          Column("received_at", Text, nullable=False), Index("alerts_by_store", "chain", "store_id", "seq"),
          Index("alerts_by_received", "received_at"), Index("alerts_by_level", "level", "as_of"))
    Table("alert_overflows", old, Column("alert_id", Text, primary_key=True), Column("seq", BigInteger, nullable=False),
          Column("chain", Text, nullable=False), Column("store_id", Text, nullable=False),
          Column("as_of", Text, nullable=False), Column("suppressed", Integer, nullable=False),
          Column("customers", Text, nullable=False), Column("created_at", Text, nullable=False),
          Column("payload", Text, nullable=False), Column("received_at", Text, nullable=False),
          Index("alert_overflows_by_store", "chain", "store_id", "seq"))
    Table("alert_work", old, Column("alert_id", Text, ForeignKey("alerts.alert_id"), primary_key=True),
          Column("state", Text, nullable=False), Column("assignee", Text), Column("assigned_at", Text),
          Column("assigned_by", Text), Column("contacted_at", Text), Column("offer", Text), Column("result", Text),
          Column("result_at", Text), Column("cost", Float), Column("updated_at", Text, nullable=False),
          Column("updated_by", Text, nullable=False), Index("alert_work_by_update", "updated_at"))
    Table("alert_outcomes", old, Column("id", Integer, primary_key=True, autoincrement=True),
          Column("alert_id", Text, ForeignKey("alerts.alert_id"), nullable=False),
          Column("outcome", Text, nullable=False), Column("cost", Float), Column("note", Text),
          Column("recorded_by", Text, nullable=False), Column("recorded_at", Text, nullable=False),
          Index("alert_outcomes_by_alert", "alert_id", "recorded_at"))
    Table("dead_letters", old, Column("id", Integer, primary_key=True, autoincrement=True),
          Column("topic", Text, nullable=False), Column("reason", Text, nullable=False),
          Column("raw", LargeBinary, nullable=False), Column("digest", Text, nullable=False),
          Column("count", Integer, nullable=False, server_default="1"), Column("received_at", Text, nullable=False),
          Column("last_received_at", Text, nullable=False), UniqueConstraint("topic", "digest", name="dead_letters_once"))
    return old


def make_schema_2_database(target: str) -> None:
    old = schema_2()
    engine = create_engine(database_url(target))
    rekeyed = {"alerts", "alert_overflows", "alert_work", "alert_outcomes", "dead_letters"}
    alert = churn_alert(1, "s1")
    with engine.begin() as connection:
        tables.metadata.create_all(connection, tables=[t for t in tables.metadata.sorted_tables
                                                       if t.name not in rekeyed and t is not tables.schema_migrations])
        old.create_all(connection)
        tables.schema_migrations.create(connection)
        for version in (1, 2):
            connection.execute(tables.schema_migrations.insert().values(version=version, description="old",
                                                                        applied_at="2026-01-01T00:00:00Z"))
        row = {k: alert[k] for k in ("alert_id", "seq", "chain", "store_id", "customer_ref", "as_of", "risk_score",
                                     "level", "action", "action_label", "clv_estimate", "action_cost_cap",
                                     "model_version", "created_at", "control")}
        connection.execute(old.tables["alerts"].insert().values(
            **row, reasons=json.dumps(alert["reasons"]), payload=json.dumps(alert), received_at="2026-03-01T06:00:01Z"))
        connection.execute(old.tables["alert_work"].insert().values(
            alert_id=alert["alert_id"], state="contacted", contacted_at="2026-03-02T10:00:00Z",
            updated_at="2026-03-02T10:00:00Z", updated_by="sam"))
        connection.execute(old.tables["alert_outcomes"].insert().values(
            id=7, alert_id=alert["alert_id"], outcome="contacted", recorded_by="sam",
            recorded_at="2026-03-02T10:00:00Z"))
        connection.execute(old.tables["dead_letters"].insert().values(
            topic="retail/v1/acme/s1/alert/churn", reason="not JSON", raw=b"{oops", digest="d",
            received_at="2026-03-01T00:00:00Z", last_received_at="2026-03-01T00:00:00Z"))
    engine.dispose()


def test_a_schema_2_database_is_rekeyed_by_store_with_its_alerts_work_and_outcomes(
        empty_central: str, quick_passwords: None) -> None:
    make_schema_2_database(empty_central)
    with open_central_db(empty_central) as db:
        with db.read() as connection:
            assert migrations.schema_version(connection) == migrations.LATEST >= 3
            assert inspect(connection).get_pk_constraint("alerts")["constrained_columns"] == [
                "chain", "store_id", "alert_id"]
            work = connection.execute(select(tables.alert_work)).mappings().one()
            alert = connection.execute(select(tables.alerts)).mappings().one()
            (outcome,) = connection.execute(select(tables.alert_outcomes)).mappings().all()
            (dead,) = connection.execute(select(tables.dead_letters)).mappings().all()
        assert (work["chain"], work["store_id"], work["alert_id"], work["state"]) == (
            "acme", "s1", "acme-s1-000001", "contacted")
        assert (outcome["id"], outcome["chain"], outcome["store_id"]) == (7, "acme", "s1")
        assert alert["kind"] == "early_warning"  # columns added after schema 3 take their defaults
        assert bytes(dead["raw"]) == b"{oops" and dead["size"] is None

        # The id s1 used, now used by s2 too: a second alert, not a duplicate.
        with db.write() as connection:
            mine = churn_alert(1, "s2", alert_id="acme-s1-000001")
            stored = store_alerts(connection, "acme", "s2", [(mine, json.dumps(mine))], utc_now_iso())
        assert stored.new == ["acme-s1-000001"]
        ada = create_account(db, "ada", "correct horse battery staple", "admin")
        closed = record_outcome(db, ada, ("acme", "s1", "acme-s1-000001"), "stayed")
        assert closed["result"] == "stayed" and len(closed["outcomes"]) == 2
        assert record_outcome(db, ada, ("acme", "s2", "acme-s1-000001"), "churned")["result"] == "churned"
    open_central_db(empty_central).close()  # opening again changes nothing
