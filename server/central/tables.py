"""The central database's tables, declared once with SQLAlchemy Core for SQLite and PostgreSQL alike.

Times are ISO 8601 text (`received_at` and the other times this side sets are
UTC, `...Z`), JSON values are text: both read the same on either engine and
sort as text. A later feature declares its tables on the same `metadata` and
creates them in a new migration (see migrations.py), as the console's accounts,
alert outcomes and model rounds did in migration 2.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger, Boolean, Column, Float, ForeignKey, ForeignKeyConstraint, Index, Integer, LargeBinary, MetaData,
    Table, Text, UniqueConstraint, false,
)

from models.payloads import ChurnAlert

metadata = MetaData()


def _store_key() -> list[Column[str]]:
    return [Column("chain", Text, primary_key=True), Column("store_id", Text, primary_key=True)]


schema_migrations = Table(
    "schema_migrations", metadata,
    Column("version", Integer, primary_key=True),
    Column("description", Text, nullable=False),
    Column("applied_at", Text, nullable=False),
)

ALERT_KEY = ("chain", "store_id", "alert_id")  # an alert id is unique within its store only (migration 3)


def _alert_key() -> list[Column[str]]:
    return [Column(name, Text, primary_key=True) for name in ALERT_KEY]


def _alert_topic_message(name: str, *fields: Column[Any], indexes: tuple[Index, ...] = ()) -> Table:
    """Both kinds of message on an alert topic: keyed by (chain, store, alert_id), numbered in the store's seq.

    The chain and the store are the topic's, never the payload's: one store can never
    reuse, overwrite or pre-empt another store's alert ids.
    """
    return Table(
        name, metadata,
        *_alert_key(),
        Column("seq", BigInteger, nullable=False),
        *fields,
        Column("created_at", Text, nullable=False),
        Column("payload", Text, nullable=False),  # the JSON exactly as received
        Column("received_at", Text, nullable=False),
        Index(f"{name}_by_store", "chain", "store_id", "seq"),
        *indexes,
    )


alerts = _alert_topic_message(
    "alerts",
    Column("customer_ref", Text, nullable=False),
    Column("as_of", Text, nullable=False),
    Column("risk_score", Integer, nullable=False),
    Column("level", Text, nullable=False),
    Column("action", Text),
    Column("action_label", Text),
    Column("reasons", Text, nullable=False),  # JSON list of {text, feature, value, usual}
    Column("clv_estimate", Float, nullable=False),
    Column("action_cost_cap", Float, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("control", Boolean, nullable=False, server_default=false()),
    # early_warning (still buying, drifting away) or win_back (lapsed by their own rhythm): two lists
    Column("kind", Text, nullable=False, server_default="early_warning"),
    # JSON list of {kind, days_ago, value}: the customer's latest events, shown beside the reasons (migration 5)
    Column("recent_events", Text, nullable=False, server_default="[]"),
    indexes=(Index("alerts_by_received", "received_at"), Index("alerts_by_level", "level", "as_of")),
)

# The alert's fields that have a column of their own (a list as JSON text); the others stay in `payload`.
ALERT_FIELD_COLUMNS = tuple(name for name in ChurnAlert.field_names() if name in alerts.c)

alert_overflows = _alert_topic_message(
    "alert_overflows",
    Column("as_of", Text, nullable=False),
    Column("suppressed", Integer, nullable=False),
    Column("customers", Text, nullable=False),  # JSON list of {customer_ref, level, ...}
)

dead_letters = Table(
    "dead_letters", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("topic", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("digest", Text, nullable=False),  # sha256 of raw: a resent bad message counts, not repeats
    Column("size", BigInteger),  # bytes received; `raw` is empty when they were too many to keep (migration 3)
    Column("count", Integer, nullable=False, server_default="1"),
    Column("received_at", Text, nullable=False),
    Column("last_received_at", Text, nullable=False),
    UniqueConstraint("topic", "digest", name="dead_letters_once"),
)

stores = Table(
    "stores", metadata,
    *_store_key(),
    Column("state", Text),  # online / offline, from the retained status (the Last Will says offline)
    Column("last_seen", Text),
    Column("status", Text),  # the last status payload, JSON
    Column("updated_at", Text, nullable=False),
)

store_seq = Table(
    "store_seq", metadata,
    *_store_key(),
    Column("contiguous_seq", BigInteger, nullable=False, server_default="0"),  # all of 1..this are stored
    Column("max_seq", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", Text, nullable=False),
)

seq_gaps = Table(
    "seq_gaps", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("chain", Text, nullable=False),
    Column("store_id", Text, nullable=False),
    Column("first_missing", BigInteger, nullable=False),
    Column("last_missing", BigInteger, nullable=False),
    Column("detected_at", Text, nullable=False),
    Column("closed_at", Text),  # set when the last missing seq of the range arrives
    Index("seq_gaps_open", "chain", "store_id", "closed_at"),
)

store_metrics = Table(
    "store_metrics", metadata,
    *_store_key(),
    Column("at", Text, nullable=False),
    Column("metrics", Text, nullable=False),  # the latest metrics payload, JSON
    Column("received_at", Text, nullable=False),
)

footfall_hourly = Table(
    "footfall_hourly", metadata,
    *_store_key(),
    Column("hour", Text, primary_key=True),  # YYYY-MM-DDTHH:00, store local time
    Column("entries", Integer, nullable=False),
    Column("exits", Integer, nullable=False),
    Column("transactions", Integer, nullable=False),
    Column("updated_at", Text, nullable=False),
)

# --- data quality: what each store's inputs brought in, per store-local day (migration 6) ---

input_days = Table(  # upserted from the metrics' data_quality: a later message's figures for a day replace it
    "input_days", metadata,
    *_store_key(),
    Column("input", Text, primary_key=True),  # pos / events / identities / footfall
    Column("day", Text, primary_key=True),  # YYYY-MM-DD, store local
    Column("runs", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("accepted", BigInteger, nullable=False),
    Column("quarantined", BigInteger, nullable=False),
    Column("reasons", Text, nullable=False),  # JSON {reason: rows}
    Column("updated_at", Text, nullable=False),
)

camera_gap_days = Table(
    "camera_gap_days", metadata,
    *_store_key(),
    Column("source", Text, primary_key=True),
    Column("day", Text, primary_key=True),  # YYYY-MM-DD, store local
    Column("gaps", Integer, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("updated_at", Text, nullable=False),
)


# --- the console: operator accounts and their sessions (migration 2) ---

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", Text, nullable=False, unique=True),
    Column("role", Text, nullable=False),  # viewer / staff / admin
    Column("password_hash", Text, nullable=False),  # scrypt$N$r$p$salt$hash (server/console/passwords.py)
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_at", Text, nullable=False),
    Column("created_by", Text),  # null: created on the command line
    Column("password_changed_at", Text, nullable=False),
)

user_stores = Table(  # the stores a `staff` account may see and act on
    "user_stores", metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("chain", Text, primary_key=True),
    Column("store_id", Text, primary_key=True),
)

console_sessions = Table(
    "console_sessions", metadata,
    Column("token_hash", Text, primary_key=True),  # sha256 of the cookie's token: a copy of this table opens nothing
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
    Column("client", Text),
    Index("console_sessions_by_expiry", "expires_at"),
)

login_failures = Table(  # recent failed logins, shared by every console process (rate limit)
    "login_failures", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", Text, nullable=False),
    Column("client", Text),
    Column("at", Text, nullable=False),
    Index("login_failures_by_user", "username", "at"),
)

# --- the console: what was done about each alert, and what came of it (migration 2) ---

def _alert_reference() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(list(ALERT_KEY), [f"alerts.{name}" for name in ALERT_KEY])


alert_work = Table(  # the current state of one alert's handling; alert_outcomes keeps every step
    "alert_work", metadata,
    *_alert_key(),
    Column("state", Text, nullable=False),  # open / assigned / contacted / closed
    Column("assignee", Text),
    Column("assigned_at", Text),
    Column("assigned_by", Text),
    Column("contacted_at", Text),
    Column("offer", Text),  # accepted / declined
    Column("result", Text),  # stayed / churned: what uplift and decay count
    Column("result_at", Text),
    Column("cost", Float),  # the action's actual cost when recorded; otherwise the alert's cost cap counts
    Column("updated_at", Text, nullable=False),
    Column("updated_by", Text, nullable=False),
    _alert_reference(),
    Index("alert_work_by_update", "updated_at"),
)

alert_outcomes = Table(
    "alert_outcomes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    *(Column(name, Text, nullable=False) for name in ALERT_KEY),
    Column("outcome", Text, nullable=False),  # contacted / offer_accepted / offer_declined / stayed / churned
    Column("cost", Float),
    Column("note", Text),
    Column("recorded_by", Text, nullable=False),
    Column("recorded_at", Text, nullable=False),
    _alert_reference(),
    Index("alert_outcomes_by_alert", *ALERT_KEY, "recorded_at"),
)

# --- federated model releases and their rounds, from the federation's summary (migration 2) ---

model_releases = Table(
    "model_releases", metadata,
    Column("version", Text, primary_key=True),
    Column("chain", Text, nullable=False),
    Column("as_of", Text),
    Column("finished_at", Text),
    Column("strategy", Text),
    Column("rounds", Integer, nullable=False),
    Column("auc", Float),  # pooled held-out AUC after calibration
    Column("stores", Text, nullable=False),  # JSON list of the stores that trained
    Column("privacy", Text),  # JSON {epsilon, delta, ...} with differential privacy, else null
    Column("manifest", Text, nullable=False),  # JSON, as written next to model.onnx
    Column("recorded_at", Text, nullable=False),
)

model_rounds = Table(
    "model_rounds", metadata,
    Column("version", Text, ForeignKey("model_releases.version"), primary_key=True),
    Column("round", Integer, primary_key=True),
    Column("trained", Text, nullable=False),  # JSON list of store ids
    Column("evaluated", Text, nullable=False),  # JSON list of store ids
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("train_loss", Float),
    Column("auc", Float),
    Column("loss", Float),
    Column("metrics", Text, nullable=False),  # JSON, every metric of the round
    Column("per_store_auc", Text, nullable=False),  # JSON {store: auc}
    Column("skipped", Text, nullable=False, server_default=""),
    Column("epsilon", Float),  # privacy budget spent up to this round (differential privacy only)
    Column("delta", Float),
    Column("recorded_at", Text, nullable=False),
    # migration 5: what the round cost, as the ServerApp measured it (null in summaries from before)
    Column("wall_seconds", Float),  # the round from its training messages to its aggregate
    Column("train_seconds", Float),  # the slowest store's local epochs, as that store measured them
    Column("overhead_seconds", Float),  # the rest: delivery, process start-up, reading data, evaluation
    Index("model_rounds_by_recorded", "recorded_at"),
)
