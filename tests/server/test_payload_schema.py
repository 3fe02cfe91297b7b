"""The published JSON Schema of the churn alert (docs/alert-payload.schema.json) and the code's validator.

Integrators validate alerts with the JSON Schema; the store box and the
aggregator validate them with the alert model (`models.payloads.check_alert`).
The schema is generated from that model, the file in docs must equal it, and
both must accept and refuse the same payloads (checked here with a validator
of our own), so neither can drift.

Regenerate the file after a deliberate change of the contract:
    .venv/bin/python -m models.payloads
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge_agent.score import ScoreResult, ScoringPolicy, record_scoring
from edge_agent.store_db import open_store_db
from models.payloads import RECENT_EVENTS_MAX, ChurnAlert, PayloadError, check_alert
from models.payloads.json_schema import alert_schema_text, json_schema
from tests.builders import SCHEMA_PATH, customer, published_schema
from tests.schema_check import schema_errors



# --- tests --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return recorded_alert(tmp_path_factory.mktemp("store"))


def recorded_alert(folder: Path) -> dict[str, Any]:
    """An alert exactly as a store box records it for publishing (its outbox row)."""
    db = folder / "s1.db"
    with open_store_db(db, chain="demo", store_id="s1") as store:
        record_scoring(store, ScoreResult("2025-10-01", "m1", scored=1), [customer("c001", 72, "red")], ScoringPolicy())
        (payload,) = store.conn.execute("SELECT payload FROM outbox").fetchone()
    return dict(json.loads(payload))


def test_the_schema_published_in_docs_is_the_one_the_code_generates() -> None:
    assert SCHEMA_PATH.read_text() == alert_schema_text(), (
        "docs/alert-payload.schema.json is stale: run .venv/bin/python -m models.payloads")
    assert published_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_an_alert_recorded_by_scoring_is_valid_for_the_schema_and_for_the_aggregator(recorded: dict[str, Any]) -> None:
    alert = dict(recorded)
    assert check_alert(alert, "demo", "s1") is alert
    assert schema_errors(published_schema(), alert) == []
    assert set(alert) == set(published_schema()["properties"]), "every field a store sends is described"


def _broken(alert: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    changed = dict(alert)
    if value is _MISSING:
        del changed[field]
    else:
        changed[field] = value
    return changed


_MISSING = object()
REFUSED = [("schema", "retail.churn-alert/0"), ("alert_id", ""), ("alert_id", "a" * 65), ("seq", 0), ("seq", "7"),
           ("seq", True), ("chain", ""), ("store_id", 5), ("customer_ref", "c" * 129), ("as_of", "2025-02-30"),
           ("as_of", "yesterday"), ("risk_score", 101), ("risk_score", -1), ("risk_score", 72.5),
           ("risk_score", False), ("level", "blue"), ("action", 3), ("reasons", "late"),
           ("reasons", [{"text": "late"}]), ("reasons", [{"feature": "recency_days"}]), ("clv_estimate", -0.01),
           ("clv_estimate", "820"), ("action_cost_cap", -1), ("model_version", ""), ("created_at", "not a time"),
           ("created_at", ""), ("control", "yes"), ("recent_events", "complaint"),
           ("recent_events", [{"kind": "complaint", "days_ago": 12, "value": None, "note": "rude on the phone"}]),
           ("recent_events", [{"kind": "chat", "days_ago": 12, "value": None}]),
           ("recent_events", [{"kind": "complaint", "days_ago": -1, "value": None}]),
           ("recent_events", [{"kind": "complaint", "days_ago": 1.5, "value": None}]),
           ("recent_events", [{"kind": "survey", "days_ago": 3, "value": "3"}]),
           ("recent_events", [{"kind": "survey", "days_ago": 3}]),
           ("recent_events", [{"kind": "complaint", "days_ago": 1, "value": None}] * (RECENT_EVENTS_MAX + 1))]
ACCEPTED = [("alert_id", "a" * 64), ("customer_ref", "c" * 128), ("risk_score", 0), ("risk_score", 100),
            ("action", None), ("control", _MISSING), ("reasons", []), ("clv_estimate", 0), ("seq", 1),
            ("created_at", "2025-10-01T06:00:00+02:00"), ("store_id", "s" * 200), ("chain", "c" * 200),
            ("recent_events", _MISSING), ("recent_events", None), ("recent_events", []),
            ("recent_events", [{"kind": "survey", "days_ago": 0, "value": 3}] * RECENT_EVENTS_MAX)]


@pytest.mark.parametrize(("field", "value"), REFUSED + [(name, _MISSING) for name in json_schema(ChurnAlert)["required"]],
                         ids=lambda v: "missing" if v is _MISSING else repr(v)[:24])
def test_the_schema_and_the_aggregator_refuse_the_same_broken_alert(recorded: dict[str, Any], field: str,
                                                                 value: Any) -> None:
    broken = _broken(recorded, field, value)
    with pytest.raises(PayloadError):
        check_alert(broken)
    assert schema_errors(published_schema(), broken), f"the schema accepts {field}={value!r}"


@pytest.mark.parametrize(("field", "value"), ACCEPTED, ids=lambda v: "missing" if v is _MISSING else repr(v)[:24])
def test_the_schema_and_the_aggregator_accept_the_same_edge_cases(recorded: dict[str, Any], field: str,
                                                              value: Any) -> None:
    edge = _broken(recorded, field, value)
    check_alert(edge)
    assert schema_errors(published_schema(), edge) == []


def test_the_schema_uses_only_keywords_the_checker_understands() -> None:
    """So a keyword added to the schema can never be silently skipped by these tests."""
    schema = published_schema()
    assert schema_errors(schema, {}) == [f"$: missing {name}" for name in schema["required"]]
    with pytest.raises(ValueError, match="pattern"):
        schema_errors({"type": "string", "pattern": "^a"}, "b")
