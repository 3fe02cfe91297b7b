"""Who may call the API: 401 without a session, CSRF and cross-origin refusals, roles and store limits."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from server.central import open_central_db
from server.central.tables import console_sessions
from server.console.app import create_app
from server.console.settings import ConsoleSettings

from .chain import PASSWORD
from .conftest import Login, log_in

OUTCOME = ("/api/alerts/acme-s1-000002/outcome", {"outcome": "stayed"})


def api_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) of the API as /openapi.json describes it, with sample path parameters."""
    paths = client.get("/openapi.json").json()["paths"]
    sample = {"{alert_id}": "acme-s1-000002", "{chain}": "acme", "{store_id}": "s1", "{username}": "vera"}
    routes = []
    for path, methods in paths.items():
        for name, value in sample.items():
            path = path.replace(name, value)
        routes.extend((method.upper(), path) for method in methods)
    return routes


def test_every_api_route_but_login_answers_401_json_without_a_session(console: Callable[..., TestClient]) -> None:
    client = console()
    routes = api_routes(client)
    assert len(routes) >= 17 and all(path.startswith("/api/") for _, path in routes)
    for method, path in routes:
        if path == "/api/login":
            continue
        response = client.request(method, path, json={})
        assert response.status_code == 401, (method, path)
        assert response.json() == {"detail": "not logged in (or the session expired)"}


def test_login_sets_an_httponly_samesite_strict_cookie_and_returns_the_csrf_token(
        console: Callable[..., TestClient]) -> None:
    client = console()
    assert client.post("/api/login", json={"username": "sam", "password": "wrong password"}).status_code == 401
    assert client.post("/api/login", json={"username": "nobody", "password": PASSWORD}).status_code == 401
    response = client.post("/api/login", json={"username": "sam", "password": PASSWORD})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie and "secure" not in cookie
    body = response.json()
    assert (body["username"], body["role"], body["stores"]) == ("sam", "staff", ["acme/s1"])
    assert len(body["csrf_token"]) >= 32
    assert client.get("/api/session").json()["csrf_token"] == body["csrf_token"]


def test_changes_need_the_session_csrf_token(login: Login) -> None:
    client = login("ada")
    token = client.headers.pop("X-CSRF-Token")
    path, body = OUTCOME
    assert client.post(path, json=body).status_code == 403
    refused = client.post(path, json=body, headers={"X-CSRF-Token": "x" * 43})
    assert refused.status_code == 403 and refused.json()["detail"] == "missing or wrong X-CSRF-Token header"
    other = login("vera").headers["X-CSRF-Token"]  # another session's token is no good either
    assert client.post(path, json=body, headers={"X-CSRF-Token": other}).status_code == 403
    assert client.get(f"/api/alerts/{path.split('/')[3]}").json()["outcomes"] == []
    assert client.post(path, json=body, headers={"X-CSRF-Token": token}).status_code == 200


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Origin": "null"},
                                     {"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://testserver:8080"}])
def test_cross_origin_changes_are_refused_even_with_the_token(login: Login, headers: dict[str, str]) -> None:
    client = login("ada")
    path, body = OUTCOME
    refused = client.post(path, json=body, headers=headers)
    assert refused.status_code == 403 and "refused" in refused.json()["detail"]
    assert client.post("/api/login", json={"username": "ada", "password": PASSWORD}, headers=headers).status_code == 403
    assert client.post(path, json=body, headers={"Origin": "http://testserver"}).status_code == 200


def test_a_configured_public_origin_is_accepted(login: Login) -> None:
    client = login("ada", ConsoleSettings(public_origins=("https://console.acme.example",)))
    path, body = OUTCOME
    assert client.post(path, json=body, headers={"Origin": "https://console.acme.example"}).status_code == 200


def test_a_form_post_from_elsewhere_cannot_log_in(console: Callable[..., TestClient]) -> None:
    """A cross-site HTML form can only send form or text bodies: the login takes JSON only."""
    client = console()
    response = client.post("/api/login", content=f'{{"username": "ada", "password": "{PASSWORD}"}}',
                           headers={"Content-Type": "text/plain"})
    assert response.status_code == 422 and "set-cookie" not in response.headers


def test_staff_see_and_act_on_their_own_stores_only(login: Login) -> None:
    sam = login("sam")
    alerts = sam.get("/api/alerts", params={"limit": 500}).json()
    assert alerts["total"] == 8 and {(a["chain"], a["store_id"]) for a in alerts["alerts"]} == {("acme", "s1")}
    assert sam.get("/api/alerts", params={"chain": "acme", "store_id": "s2"}).status_code == 403
    assert sam.get("/api/alerts", params={"store_id": "s2"}).status_code == 403
    assert sam.get("/api/alerts/acme-s2-000001").status_code == 404
    assert sam.post("/api/alerts/acme-s2-000001/outcome", json={"outcome": "stayed"}).status_code == 404
    assert sam.post("/api/alerts/acme-s2-000001/contacted", json={}).status_code == 404
    assert sam.get("/api/stores/acme/s2/footfall").status_code == 403
    assert sam.get("/api/uplift", params={"chain": "acme", "store_id": "s2"}).status_code == 403
    assert [s["store_id"] for s in sam.get("/api/stores").json()] == ["s1"]
    assert sam.get("/api/actions").json() == ["callback", "manager_contact", "service_plan"]
    assert sam.post("/api/alerts/acme-s1-000002/contacted", json={}).status_code == 200
    assert login("ada").get("/api/alerts/acme-s2-000001").json()["outcomes"] == []


def test_a_viewer_reads_every_store_and_changes_nothing(login: Login) -> None:
    vera = login("vera")
    assert vera.get("/api/alerts", params={"limit": 500}).json()["total"] == 17
    assert len(vera.get("/api/stores").json()) == 3
    for path, body in [OUTCOME, ("/api/alerts/acme-s1-000002/contacted", {}),
                       ("/api/alerts/acme-s1-000002/assign", {"assignee": "vera"})]:
        refused = vera.post(path, json=body)
        assert refused.status_code == 403 and refused.json()["detail"] == "a viewer account cannot change anything"
    assert vera.get("/api/users").status_code == 403


def test_an_admin_creates_and_disables_accounts_and_others_cannot(login: Login) -> None:
    ada = login("ada")
    created = ada.post("/api/users", json={"username": "lyon", "password": "a long enough password", "role": "staff",
                                           "stores": ["acme/s2"]})
    assert created.status_code == 201 and created.json() == {"username": "lyon", "role": "staff",
                                                             "stores": ["acme/s2"], "disabled": False}
    assert ada.post("/api/users", json={"username": "lyon", "password": "a long enough password",
                                        "role": "viewer"}).status_code == 409
    assert ada.post("/api/users", json={"username": "x", "password": "short", "role": "viewer"}).status_code == 422
    lyon = login("lyon", password="a long enough password")
    assert {a["store_id"] for a in lyon.get("/api/alerts").json()["alerts"]} == {"s2"}
    assert lyon.post("/api/users", json={"username": "y", "password": "a long enough password",
                                         "role": "admin"}).status_code == 403
    assert ada.post("/api/users/lyon/disable").json()["disabled"] is True
    assert lyon.get("/api/alerts").status_code == 401  # the disabled account's session ended
    assert ada.post("/api/users/ada/disable").status_code == 409


def test_logout_and_expiry_end_the_session(login: Login, central: str) -> None:
    client = login("sam")
    cookie = client.cookies.get("churn_session")
    assert client.post("/api/logout").status_code == 204
    client.cookies.set("churn_session", cookie)  # replaying the old cookie does not help
    assert client.get("/api/session").status_code == 401
    other = login("sam")
    with open_central_db(central) as db, db.write() as connection:
        connection.execute(update(console_sessions).values(expires_at="2000-01-01T00:00:00.000000Z"))
    assert other.get("/api/session").status_code == 401


def test_sessions_live_in_the_database_so_another_console_process_accepts_them(login: Login, central: str) -> None:
    client = login("sam")
    with open_central_db(central) as db:
        second = TestClient(create_app(db))
        second.cookies.set("churn_session", client.cookies["churn_session"])
        assert second.get("/api/session").json()["username"] == "sam"


def test_too_many_failed_logins_answer_429_with_retry_after(console: Callable[..., TestClient]) -> None:
    client = console()
    for _ in range(3):
        assert client.post("/api/login", json={"username": "sam", "password": "guess guess guess"}).status_code == 401
    refused = client.post("/api/login", json={"username": "sam", "password": PASSWORD})
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 2
    log_in(console(), "ada")  # another account is not locked out


def test_changing_ones_password_keeps_this_session_and_ends_the_others(login: Login) -> None:
    first, second = login("sam"), login("sam")
    assert first.post("/api/password", json={"current_password": "wrong one here",
                                             "new_password": "new long password 1"}).status_code == 403
    assert first.post("/api/password", json={"current_password": PASSWORD,
                                             "new_password": "short"}).status_code == 422
    assert first.post("/api/password", json={"current_password": PASSWORD,
                                             "new_password": "new long password 1"}).status_code == 204
    assert first.get("/api/session").status_code == 200 and second.get("/api/session").status_code == 401
