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
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from edge_agent.score import ScoreResult, ScoringPolicy, record_scoring
from edge_agent.store_db import open_store_db
from models.payloads import RECENT_EVENTS_MAX, ChurnAlert, PayloadError, check_alert
from models.payloads.json_schema import alert_schema_text, json_schema
from tests.edge_agent.test_alert_outbox import customer

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "alert-payload.schema.json"


def published_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


# --- a validator for the keywords the schema uses (jsonschema is not a dependency) -----------------

TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
                                      "null": (type(None),), "object": (dict,), "array": (list,)}
ANNOTATIONS = {"$schema", "$id", "title", "description"}


def _is(value: Any, kind: str) -> bool:
    if isinstance(value, bool) and kind != "boolean":
        return False
    return isinstance(value, TYPES[kind])


def _format_ok(value: str, kind: str) -> bool:
    try:
        if kind == "date":
            return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)) and bool(date.fromisoformat(value))
        if kind == "date-time":
            return "T" in value and bool(datetime.fromisoformat(value))
    except ValueError:
        return False
    raise ValueError(f"format {kind} is not supported by this checker")


def schema_errors(schema: dict[str, Any], value: Any, path: str = "$") -> list[str]:
    """Where `value` breaks `schema`. An unknown keyword is an error in the schema, not silently ignored."""
    unknown = set(schema) - ANNOTATIONS - {"type", "const", "enum", "required", "properties", "items", "minLength",
                                           "maxLength", "minimum", "maximum", "format", "maxItems",
                                           "additionalProperties"}
    if unknown:
        raise ValueError(f"{path}: keywords {sorted(unknown)} are not supported by this checker")
    kinds = schema.get("type")
    if kinds is not None and not any(_is(value, k) for k in ([kinds] if isinstance(kinds, str) else kinds)):
        return [f"{path}: not {kinds}"]
    errors = []
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: not one of {schema['enum']}")
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            errors.append(f"{path}: length {len(value)} out of bounds")
        if "format" in schema and not _format_ok(value, schema["format"]):
            errors.append(f"{path}: not a {schema['format']}")
    if _is(value, "number") and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        errors.append(f"{path}: {value} out of bounds")
    if isinstance(value, dict):
        errors += [f"{path}: missing {name}" for name in schema.get("required", []) if name not in value]
        if schema.get("additionalProperties") is False:
            errors += [f"{path}: unexpected {name}" for name in value if name not in schema.get("properties", {})]
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                errors += schema_errors(sub, value[name], f"{path}.{name}")
    if isinstance(value, list) and len(value) > schema.get("maxItems", len(value)):
        errors.append(f"{path}: more than {schema['maxItems']} items")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += schema_errors(schema["items"], item, f"{path}[{index}]")
    return errors


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
