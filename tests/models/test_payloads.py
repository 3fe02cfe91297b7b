"""The payload models: what a store box builds is checked before it is queued, and what arrives is refused
with one line naming the field, whatever the input (hostile values included)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.payloads import (
    ACK_SCHEMA, ALERT_SCHEMA, METRICS_SCHEMA, OVERFLOW_SCHEMA, STATUS_SCHEMA, AlertOverflow, ChurnAlert, PayloadError,
    StoreMetrics, StoreStatus, ack, check_ack, check_alert, check_alert_message, check_metrics, check_overflow,
    check_status,
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


def status(**changes: Any) -> dict[str, Any]:
    document = {"schema": STATUS_SCHEMA, "state": "online", "chain": "acme", "store_id": "s1",
                "at": "2026-03-01T07:00:00Z", "outbox_unacked": 0, "last_publish_at": None, "model_version": "m1",
                "alarms": {}, "children": {"camera:door": "running"}, "cameras": {"camera:door": "streaming"}}
    document.update(changes)
    return document


def metrics(**changes: Any) -> dict[str, Any]:
    document = {
        "schema": METRICS_SCHEMA, "chain": "acme", "store_id": "s1", "at": "2026-03-01T07:00:00Z",
        "footfall_hourly": [{"hour": "2026-03-01T10:00", "entries": 52, "exits": 50, "transactions": 14}],
        "data_quality": {"today": "2026-03-01", "days": 14, "camera_gaps": [
            {"day": "2026-03-01", "source": "camera:door", "gaps": 2, "seconds": 330.0}], "inputs": {
            "pos": {"last_export_at": None, "daily": [{"day": "2026-03-01", "runs": 1, "failed": 0, "accepted": 9,
                                                       "quarantined": 1, "reasons": {"bad amount": 1}}]}}}}
    document.update(changes)
    return document


def status_refusal(document: Any) -> str:
    with pytest.raises(PayloadError) as caught:
        check_status(json.dumps(document).encode(), "acme", "s1")
    return str(caught.value)


def metrics_refusal(document: Any) -> str:
    with pytest.raises(PayloadError) as caught:
        check_metrics(json.dumps(document).encode(), "acme", "s1")
    return str(caught.value)


def test_a_status_and_metrics_are_built_by_their_models_and_read_back_as_sent() -> None:
    built = StoreStatus.build(**status())
    assert built == status() and check_status(json.dumps(built).encode(), "acme", "s1") == built
    cameras = [{"source": "camera:door", "state": "streaming"}]  # the other shape a box has sent
    assert StoreStatus.build(**status(cameras=cameras))["cameras"] == cameras
    listed = status(cameras=[{**cameras[0], "frames": 1200}])
    assert check_status(json.dumps(listed).encode(), "acme", "s1") == listed, "read as it came, more included"
    sent = StoreMetrics.build(**metrics())
    assert sent == metrics() and check_metrics(json.dumps(sent).encode(), "acme", "s1") == sent
    assert json.dumps(sent["data_quality"]["camera_gaps"][0]["seconds"]) == "330.0"
    with pytest.raises(PayloadError, match="^field outbox_unacked must be a non-negative integer$"):
        StoreStatus.build(**status(outbox_unacked=-1))
    with pytest.raises(PayloadError, match="^StoreMetrics has no field footfall$"):
        StoreMetrics.build(**metrics(footfall=[]))


def test_a_valid_status_or_metrics_message_is_returned_as_it_came_unknown_fields_included() -> None:
    document = status(added_by_a_newer_box={"x": 1})
    assert check_status(json.dumps(document).encode(), "acme", "s1") == document
    assert check_status(json.dumps({"schema": STATUS_SCHEMA, "state": "offline", "chain": "acme",
                                    "store_id": "s1"}).encode()) is not None, "a bare Last Will is a status"


@pytest.mark.parametrize(("changes", "reason"), [
    ({"state": "asleep"}, "field state must be one of online, offline"),
    ({"store_id": "s2"}, "field store_id is 's2' but the topic is 's1'"),
    ({"outbox_unacked": True}, "field outbox_unacked must be a non-negative integer"),
    ({"outbox_unacked_bytes": -1}, "field outbox_unacked_bytes must be a non-negative integer"),
    ({"at": "soon"}, "field at must be an ISO 8601 time"),
    ({"reason": "r" * 501}, "field reason must be a text of at most 500 characters"),
    ({"alarms": ["disk"]}, "field alarms must map at most 200 names to texts"),
    ({"children": {"c": 1}}, "field children must map at most 200 names to texts"),
    ({"cameras": [{"source": "door"}]},
     "field cameras must map at most 200 sources to states, or list objects with a source and a state"),
    ({"cameras": "door"},
     "field cameras must map at most 200 sources to states, or list objects with a source and a state"),
])
def test_a_broken_status_is_refused_with_one_line_naming_the_field(changes: dict[str, Any], reason: str) -> None:
    assert status_refusal(status(**changes)) == reason


def quality_change(**changes: Any) -> dict[str, Any]:
    document = metrics()
    document["data_quality"].update(changes)
    return document


@pytest.mark.parametrize(("document", "reason"), [
    (metrics(at=None), "field at must be an ISO 8601 time"),
    (metrics(footfall_hourly={}), "field footfall_hourly must be a list"),
    (metrics(footfall_hourly=[{"hour": "2026-03-01T10:30", "entries": 1, "exits": 1, "transactions": 0}]),
     "footfall_hourly[0] needs hour (YYYY-MM-DDTHH:00) and non-negative integer entries, exits and transactions"),
    (quality_change(today=None), "data_quality: field today must be a date (YYYY-MM-DD)"),
    (quality_change(days=61), "data_quality: field days must be in 1..60"),
    (quality_change(inputs={"till": {"daily": []}}),
     "data_quality: field inputs must map inputs to their figures; the inputs are pos, events, identities, footfall"),
    (quality_change(inputs={"pos": {"last_export_at": None}}), "data_quality.inputs.pos: missing field daily"),
    (quality_change(inputs={"pos": None}),
     "data_quality.inputs: field pos must be an object with last_export_at and daily"),
    (quality_change(camera_gaps=[{"day": "2026-03-01", "source": "door", "gaps": 1, "seconds": -5}]),
     "data_quality.camera_gaps[0] needs day (YYYY-MM-DD), source, a count of gaps and their seconds"),
])
def test_broken_metrics_are_refused_with_one_line_naming_the_place(document: dict[str, Any], reason: str) -> None:
    assert metrics_refusal(document) == reason


@pytest.mark.parametrize("value", [
    [[[[[[]]]]]] * 3, {"a": {"b": {"c": {}}}}, 10**30, -(10**30), float("nan"), float("inf"), True, "x" * 100_000,
    {"k" * 300: "v"}, [None] * 500, 1e308,
])
def test_hostile_values_in_any_status_or_metrics_field_are_contract_errors(value: Any) -> None:
    """Whatever a field holds, checking it raises PayloadError and nothing else."""
    for document, model in ((status(), StoreStatus), (metrics(), StoreMetrics)):
        for path in _places(document):
            changed = json.loads(json.dumps(document))
            _put(changed, path, value)
            try:
                model.check(changed, {"chain": "acme", "store_id": "s1"})
            except PayloadError as error:
                assert "\n" not in str(error)


def _places(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(document, dict):
        return [p for k, v in document.items() for p in [prefix + (k,), *_places(v, prefix + (k,))]]
    if isinstance(document, list):
        return [p for i, v in enumerate(document) for p in [prefix + (i,), *_places(v, prefix + (i,))]]
    return []


def _put(document: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        document = document[part]
    document[path[-1]] = value


def test_deeply_nested_status_and_metrics_are_refused_as_contract_errors() -> None:
    deep = b"[" * 5000 + b"]" * 5000
    for raw in (b'{"schema": "retail.store-status/1", "cameras": ' + deep + b"}",
                b'{"schema": "retail.store-metrics/1", "data_quality": {"inputs": ' + deep + b"}}",
                b'{"schema": "retail.store-metrics/1", "at": 1e400}'):
        with pytest.raises(PayloadError):
            check_metrics(raw) if b"metrics" in raw else check_status(raw)
    nested: Any = []
    for _ in range(3000):
        nested = [nested]
    with pytest.raises(PayloadError):
        StoreStatus.check(status(cameras=nested))
