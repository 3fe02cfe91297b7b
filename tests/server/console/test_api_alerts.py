"""The alert queue: filters and order, and the actions on an alert (assign, contacted, outcome)."""

from __future__ import annotations

from sqlalchemy import update

from server.central import open_central_db
from server.central.tables import ALERT_FIELD_COLUMNS, alerts
from server.console.schemas import Alert, AlertDetail

from .chain import alert_document, store_documents
from .conftest import Login


def ids(page: dict) -> list[str]:  # type: ignore[type-arg]
    return [a["alert_id"] for a in page["alerts"]]


def test_the_queue_puts_the_most_severe_level_first_then_the_highest_score(login: Login) -> None:
    page = login("vera").get("/api/alerts", params={"limit": 500}).json()
    order = [(a["level"], a["risk_score"]) for a in page["alerts"]]
    rank = {"purple": 0, "red": 1, "orange": 2, "yellow": 3, "green": 4}
    assert order == sorted(order, key=lambda o: (rank[o[0]], -o[1]))
    assert order[:3] == [("purple", 91), ("purple", 88), ("red", 78)]
    first = page["alerts"][0]
    assert first["reasons"][0]["text"] == "last visit 41 days ago, usually every 12 days"
    assert (first["state"], first["assignee"], first["result"]) == ("open", None, None)


def test_filters_by_store_level_action_group_and_paging(login: Login) -> None:
    client = login("vera")
    get = lambda **params: client.get("/api/alerts", params={"limit": 500, **params}).json()  # noqa: E731
    assert ids(get(chain="acme", store_id="s2", level="purple")) == ["acme-s2-000005"]
    assert get(level=["red", "purple"])["total"] == 10
    assert get(store_id="s1")["total"] == 10  # s1 in both chains
    assert {a["level"] for a in get(action="callback")["alerts"]} == {"orange"}
    control = get(control="true")
    assert control["total"] == 5 and all(a["control"] and a["action"] is None for a in control["alerts"])
    assert get(control="false")["total"] == 12
    first, second = (client.get("/api/alerts", params={"limit": 5, "offset": o}).json() for o in (0, 5))
    assert first["total"] == second["total"] == 17 and not set(ids(first)) & set(ids(second))
    assert client.get("/api/alerts", params={"level": "crimson"}).status_code == 422


def test_the_age_filter_keeps_alerts_received_in_the_last_days(login: Login, central: str) -> None:
    with open_central_db(central) as db, db.write() as connection:
        connection.execute(update(alerts).where(alerts.c.chain == "bravo").values(
            received_at="2020-01-01T00:00:00.000000Z"))
    client = login("vera")
    assert client.get("/api/alerts", params={"max_age_days": 1}).json()["total"] == 15
    assert client.get("/api/alerts").json()["total"] == 17


def test_assigning_to_oneself_and_the_assigned_to_me_filter(login: Login) -> None:
    sam = login("sam")
    done = sam.post("/api/alerts/acme-s1-000002/assign", json={"assignee": "sam"}).json()
    assert (done["state"], done["assignee"]) == ("assigned", "sam")
    assert ids(sam.get("/api/alerts", params={"assignee": "me"}).json()) == ["acme-s1-000002"]
    assert ids(sam.get("/api/alerts", params={"state": "assigned"}).json()) == ["acme-s1-000002"]
    assert sam.get("/api/alerts", params={"state": "open"}).json()["total"] == 7
    back = sam.post("/api/alerts/acme-s1-000002/assign", json={"assignee": None}).json()
    assert (back["state"], back["assignee"]) == ("open", None)


def test_an_alert_goes_only_to_someone_who_may_act_on_its_store(login: Login) -> None:
    ada = login("ada")
    for assignee, status in (("sol", 422), ("vera", 422), ("nobody", 422), ("sam", 200), ("ada", 200)):
        response = ada.post("/api/alerts/acme-s1-000002/assign", json={"assignee": assignee})
        assert response.status_code == status, (assignee, response.text)
    assert ada.post("/api/alerts/acme-s1-000002/assign", json={"assignee": "sol"}).json()["detail"] == \
        "sol cannot act on store acme/s1"


def test_contact_offer_and_result_close_the_alert_and_keep_who_did_what(login: Login) -> None:
    sam = login("sam")
    contacted = sam.post("/api/alerts/acme-s1-000004/contacted", json={"note": "left a voicemail"}).json()
    assert contacted["state"] == "contacted" and contacted["contacted_at"]
    sam.post("/api/alerts/acme-s1-000004/outcome", json={"outcome": "offer_accepted", "cost": 14.5})
    closed = sam.post("/api/alerts/acme-s1-000004/outcome", json={"outcome": "stayed"}).json()
    assert (closed["state"], closed["offer"], closed["result"], closed["cost"]) == (
        "closed", "accepted", "stayed", 14.5)
    assert closed["contacted_at"] == contacted["contacted_at"]
    assert [(o["outcome"], o["cost"], o["note"], o["recorded_by"]) for o in closed["outcomes"]] == [
        ("contacted", None, "left a voicemail", "sam"), ("offer_accepted", 14.5, None, "sam"),
        ("stayed", None, None, "sam")]
    assert all(o["recorded_at"] for o in closed["outcomes"])
    assert login("vera").get("/api/alerts", params={"state": "closed"}).json()["alerts"][0]["result"] == "stayed"
    corrected = login("ada").post("/api/alerts/acme-s1-000004/outcome", json={"outcome": "churned"}).json()
    assert corrected["result"] == "churned" and corrected["outcomes"][-1]["recorded_by"] == "ada"


def test_a_control_alert_takes_only_its_result(login: Login) -> None:
    sam = login("sam")
    for path, body in [("contacted", {}), ("assign", {"assignee": "sam"}), ("outcome", {"outcome": "offer_accepted"}),
                       ("outcome", {"outcome": "stayed", "cost": 5})]:
        refused = sam.post(f"/api/alerts/acme-s1-000003/{path}", json=body)
        assert refused.status_code == 409 and "control" in refused.json()["detail"], (path, body)
    result = sam.post("/api/alerts/acme-s1-000003/outcome", json={"outcome": "churned"}).json()
    assert (result["state"], result["result"], result["contacted_at"]) == ("closed", "churned", None)


def test_bad_outcomes_and_unknown_alerts_are_refused(login: Login) -> None:
    ada = login("ada")
    assert ada.post("/api/alerts/acme-s1-000002/outcome", json={"outcome": "moved away"}).status_code == 422
    assert ada.post("/api/alerts/acme-s1-000002/outcome", json={"outcome": "stayed", "cost": -1}).status_code == 422
    assert ada.post("/api/alerts/nope/outcome", json={"outcome": "stayed"}).status_code == 404
    assert ada.get("/api/alerts/nope").status_code == 404
    assert ada.get("/api/alerts/acme-s1-000002").json()["outcomes"] == []


def test_the_win_back_list_is_kept_apart_from_early_warnings(login: Login, central: str) -> None:
    with open_central_db(central) as db, db.write() as connection:
        connection.execute(update(alerts).where(alerts.c.chain == "bravo").values(kind="win_back"))
    client = login("vera")
    get = lambda **params: client.get("/api/alerts", params={"limit": 500, **params}).json()  # noqa: E731
    winbacks, warnings = get(kind="win_back"), get(kind="early_warning")
    assert winbacks["total"] > 0 and {a["chain"] for a in winbacks["alerts"]} == {"bravo"}
    assert {a["kind"] for a in winbacks["alerts"]} == {"win_back"}
    assert "bravo" not in {a["chain"] for a in warnings["alerts"]}
    assert winbacks["total"] + warnings["total"] == get()["total"]
    assert client.get("/api/alerts", params={"kind": "lapsed"}).status_code == 422


def test_the_alert_detail_shows_the_customers_recent_events_in_staff_words(login: Login, central: str) -> None:
    events = [{"kind": "complaint", "days_ago": 12, "value": None}, {"kind": "survey", "days_ago": 30, "value": 3},
              {"kind": "return", "days_ago": 41, "value": 24.9}, {"kind": "online_visit", "days_ago": 1, "value": None}]
    with open_central_db(central) as db, db.write() as connection:
        store_documents(connection, [alert_document("acme", "s1", 9, "red", 71, False, recent_events=events)])
    sam = login("sam")
    detail = sam.get("/api/alerts/acme/s1/acme-s1-000009").json()
    assert [e["text"] for e in detail["recent_events"]] == [
        "complaint 12 days ago", "survey score 3, 30 days ago", "return of 24.90, 41 days ago", "online visit 1 day ago"]
    assert detail["recent_events"][1] == {"kind": "survey", "days_ago": 30, "value": 3, "text": "survey score 3, 30 days ago"}
    assert detail["reasons"][0]["text"] == "last visit 41 days ago, usually every 12 days"
    assert sam.get("/api/alerts/acme/s1/acme-s1-000001").json()["recent_events"] == [], "an alert sent without any"


def test_the_api_lists_every_alert_field_the_central_database_keeps() -> None:
    """The console's alert is the payload's fields that have a column (named by the alert model), so a
    field added to the contract and stored cannot silently go missing from the API."""
    kept = set(ALERT_FIELD_COLUMNS)
    assert kept <= set(AlertDetail.model_fields) and kept - {"recent_events"} <= set(Alert.model_fields)
    assert kept == {"alert_id", "seq", "chain", "store_id", "customer_ref", "as_of", "risk_score", "level", "action",
                    "action_label", "reasons", "clv_estimate", "action_cost_cap", "model_version", "created_at",
                    "control", "kind", "recent_events"}, "the alerts table's columns are the model's fields"
