"""The payload models: what a store box builds is checked before it is queued, and what arrives is refused
with one line naming the field, whatever the input (hostile values included)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.payloads import (
    ACK_SCHEMA, ALERT_SCHEMA, OVERFLOW_SCHEMA, AlertOverflow, ChurnAlert, PayloadError, ack, check_ack, check_alert,
    check_alert_message, check_overflow,
)


def alert(**changes: Any) -> dict[str, Any]:
    document = {
        "schema": ALERT_SCHEMA, "alert_id": "a-1", "seq": 1, "chain": "acme", "store_id": "s1", "customer_ref": "c1",
        "as_of": "2026-03-01", "risk_score": 72, "level": "red", "action": "call", "action_label": "Call them",
        "reasons": [{"text": "last visit 41 days ago", "feature": "recency_days", "value": 41, "usual": 12.5}],
        "clv_estimate": 820, "action_cost_cap": 25.0, "model_version": "m1", "created_at": "2026-03-01T06:00:00Z",
        "recent_events": [{"kind": "complaint", "days_ago": 12, "value": None}],
    }
    document.update(changes)
    return document


def refusal(document: Any, **topic: str) -> str:
    with pytest.raises(PayloadError) as caught:
        check_alert(document, **topic)
    return str(caught.value)


@pytest.mark.parametrize(("changes", "reason"), [
    ({"risk_score": 101}, "field risk_score must be in 0..100"),
    ({"risk_score": True}, "field risk_score must be in 0..100"),
    ({"seq": "7"}, "field seq must be a positive integer"),
    ({"alert_id": "a" * 65}, "field alert_id must be 1 to 64 characters"),
    ({"as_of": "2026-02-30"}, "field as_of must be a date (YYYY-MM-DD)"),
    ({"created_at": "soon"}, "field created_at must be an ISO 8601 time"),
    ({"level": "blue"}, "field level must be one of green, yellow, orange, red, purple"),
    ({"kind": "lapsed"}, "field kind must be one of early_warning, win_back"),
    ({"control": "yes"}, "field control must be a boolean"),
    ({"days_silent": -1}, "field days_silent must be a non-negative integer"),
    ({"clv_estimate": float("nan")}, "field clv_estimate must be a finite number of at least 0"),
    ({"clv_estimate": 10**400}, "field clv_estimate must be a finite number of at least 0"),
    ({"value_at_risk": float("inf")}, "field value_at_risk must be a finite number of at least 0"),
    ({"reasons": [{"text": "late"}]}, "reasons[0] needs text and feature"),
    ({"reasons": ["late"]}, "reasons[0] needs text and feature"),
    ({"reasons": [{"text": "t", "feature": "f", "value": True}]}, "reasons[0].value must be a finite number or null"),
    ({"recent_events": [{"kind": "complaint", "days_ago": 1, "value": None, "note": "rude"}]},
     "recent_events[0] must have exactly kind, days_ago, value"),
    ({"recent_events": [{"kind": "complaint", "days_ago": 1}]},
     "recent_events[0] must have exactly kind, days_ago, value"),
    ({"recent_events": [{"kind": "complaint", "days_ago": 1.0, "value": None}]},
     "recent_events[0].days_ago must be an integer in 0..3660"),
    ({"recent_events": [{"kind": "complaint", "days_ago": 1, "value": None}] * 11},
     "field recent_events must list at most 10 events"),
    ({"reasons": [[[[[]]]]] * 3}, "reasons[0] needs text and feature"),
])
def test_a_broken_alert_is_refused_with_one_line_naming_the_field(changes: dict[str, Any], reason: str) -> None:
    assert refusal(alert(**changes)) == reason


def test_a_missing_field_a_foreign_store_and_a_wrong_schema_are_named() -> None:
    document = alert()
    del document["customer_ref"]
    assert refusal(document) == "missing field customer_ref"
    assert refusal(alert(), chain="acme", store_id="s2") == "field store_id is 's1' but the topic is 's2'"
    assert refusal(alert(schema="retail.churn-alert/2")).startswith("schema must be 'retail.churn-alert/1'")
    assert refusal(["not", "an", "object"]).startswith("schema must be")


def test_a_valid_alert_is_returned_as_it_came_unknown_fields_included() -> None:
    document = alert(added_by_a_newer_box=1)
    assert check_alert(document, chain="acme", store_id="s1") is document


def test_deeply_nested_or_huge_messages_are_refused_as_contract_errors() -> None:
    deep = b'{"schema": "retail.churn-alert/1", "reasons": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    for raw in (deep, b'{"schema": "retail.churn-alert/1", "seq": 1e400}', b"[1]", b"x" * (300 * 1024)):
        with pytest.raises(PayloadError):
            check_alert_message(raw)


def test_building_an_alert_validates_it_and_keeps_its_numbers_as_given() -> None:
    built = ChurnAlert.build(**alert())
    assert built == alert(), "what the box sends is what it built"
    assert json.dumps(built["reasons"][0]["value"]) == "41" and json.dumps(built["clv_estimate"]) == "820"
    assert "control" not in built, "an optional field not given is not sent"
    with pytest.raises(PayloadError, match="field risk_score must be in 0..100"):
        ChurnAlert.build(**alert(risk_score=140))
    with pytest.raises(PayloadError, match="ChurnAlert has no field risk_scroe"):
        ChurnAlert.build(**alert(risk_scroe=40))


def test_an_overflow_summary_is_built_and_checked_by_its_model() -> None:
    summary = AlertOverflow.build(
        schema=OVERFLOW_SCHEMA, alert_id="o-1", seq=3, chain="acme", store_id="s1", as_of="2026-03-01",
        suppressed=1, customers=[{"customer_ref": "c9", "level": "red", "risk_score": 80}], model_version="m1",
        created_at="2026-03-01T06:00:00Z")
    assert summary["customers"] == [{"customer_ref": "c9", "level": "red", "risk_score": 80}]
    assert check_alert_message(json.dumps(summary).encode(), "acme", "s1") == summary
    with pytest.raises(PayloadError, match="^field suppressed must equal the number of customers$"):
        check_overflow({**summary, "suppressed": 2})
    with pytest.raises(PayloadError, match=r"^customers\[0\] needs customer_ref and level$"):
        check_overflow({**summary, "customers": [{"level": "red"}]})
    with pytest.raises(PayloadError, match=r"^customers\[0\]\.level must be one of green, yellow"):
        check_overflow({**summary, "customers": [{"customer_ref": "c9", "level": "blue"}]})
    with pytest.raises(PayloadError, match="^field chain is 'acme' but the topic is 'other'$"):
        check_overflow(summary, "other", "s1")


def test_an_ack_is_built_by_its_model_and_read_back() -> None:
    raw = ack(["a1", "a2"], 2, "2026-03-01T06:00:01Z", rejected=[{"alert_id": "a3", "reason": "field level"}])
    assert check_ack(raw) == {"schema": ACK_SCHEMA, "alert_ids": ["a1", "a2"], "up_to_seq": 2,
                              "acked_at": "2026-03-01T06:00:01Z",
                              "rejected": [{"alert_id": "a3", "reason": "field level"}]}
    assert "rejected" not in check_ack(ack([], None, "2026-03-01T06:00:01Z"))
    for broken, reason in (({"alert_ids": [1]}, "field alert_ids must be a list of strings"),
                           ({"up_to_seq": "2"}, "field up_to_seq must be an integer or null"),
                           ({"rejected": [{"alert_id": "a3"}]}, "field rejected must be a list of {alert_id, reason}")):
        with pytest.raises(PayloadError) as caught:
            check_ack(json.dumps({**json.loads(raw), **broken}).encode())
        assert str(caught.value) == reason
