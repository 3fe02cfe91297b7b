"""The real console process against someone who guesses, floods and sends numbers no store would.

- Guessing at the admin's password from one address never locks the admin out
  at another, and a forged X-Forwarded-For buys the guesser nothing.
- A huge request body is refused with 413 before it is read.
- A status with a text where a count belongs, an alert worth Infinity, an
  action that cost 1e309 or `max_age_days=1e309` end as dead letters or 422s:
  /api/stores keeps answering and the chain's ROI stays a number.
"""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from server.central import open_central_db, record_status, tables, utc_now_iso
from tests.services import AggregatorProcess, Mosquitto, StoreClient

from .chain import PASSWORD, alert_document
from .process import ConsoleProcess

pytestmark = pytest.mark.integration


def client_from(console: ConsoleProcess, address: str) -> httpx.Client:
    """An HTTP client whose connections come from `address` (any 127.x.y.z reaches the loopback console)."""
    return httpx.Client(base_url=console.url, timeout=10, transport=httpx.HTTPTransport(local_address=address))


def logged_in(console: ConsoleProcess, username: str) -> httpx.Client:
    client = client_from(console, "127.0.0.1")
    response = client.post("/api/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def test_guessing_at_the_admins_password_never_locks_the_admin_out(running: ConsoleProcess) -> None:
    with client_from(running, "127.0.0.2") as attacker:
        answers = []
        for guess in range(12):
            response = attacker.post("/api/login", json={"username": "ada", "password": f"guess number {guess}"},
                                     headers={"X-Forwarded-For": f"10.66.{guess}.1"})  # a new "client" each time
            answers.append(response.status_code)
        assert set(answers) == {401, 429}, answers
        assert answers[:3] == [401, 401, 401] and answers[-1] == 429, "the guesser waits, whatever it forwards"
        waits = [int(attacker.post("/api/login", json={"username": "ada", "password": "again and again"},
                                   headers={"X-Forwarded-For": "10.66.99.1"}).headers["Retry-After"])
                 for _ in range(2)]
        assert waits[0] >= 1
    # The admin, at the admin's own address, with the right password: in at once.
    with client_from(running, "127.0.0.1") as admin:
        response = admin.post("/api/login", json={"username": "ada", "password": PASSWORD})
        assert response.status_code == 200, response.text


def _raw_request(port: int, head: bytes, body_parts: list[bytes]) -> bytes:
    """Send a request by hand (a client that lies about or streams its body); return the response's start."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head)
        try:
            for part in body_parts:
                connection.sendall(part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the console stopped reading: that is the point
        return connection.recv(200)


def test_a_huge_request_body_is_refused_before_it_is_read(running: ConsoleProcess) -> None:
    declared = _raw_request(running.port, b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Content-Type: application/json\r\nContent-Length: 31457280\r\n\r\n", [b"{"])
    assert declared.startswith(b"HTTP/1.1 413"), declared
    chunk = b"x" * 65536
    streamed = _raw_request(running.port, b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                            [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 8)
    assert streamed.startswith(b"HTTP/1.1 413"), streamed
    assert logged_in(running, "vera").get("/api/alerts").status_code == 200


@pytest.fixture
def aggregator(central: str, tmp_path: Path) -> Iterator[tuple[Mosquitto, AggregatorProcess]]:
    broker = Mosquitto(tmp_path / "broker").start()
    process = AggregatorProcess(tmp_path, broker.url, central).start()
    yield broker, process
    process.kill()
    broker.kill()


def _roi(client: httpx.Client) -> float:
    total = client.get("/api/uplift").json()["total"]
    assert total["roi"] is not None and math.isfinite(total["roi"]), total
    return float(total["roi"])


def test_numbers_and_types_no_store_would_send_never_break_the_api(
        running: ConsoleProcess, central: str, aggregator: tuple[Mosquitto, AggregatorProcess]) -> None:
    broker, process = aggregator
    ada = logged_in(running, "ada")
    for alert_id, outcome in (("acme-s1-000002", "stayed"), ("acme-s1-000003", "churned")):
        assert ada.post(f"/api/alerts/{alert_id}/outcome", json={"outcome": outcome}).status_code == 200
    before = _roi(ada)

    store = StoreClient(broker.url, "acme", "s1")
    try:
        store.publish("status", {"schema": "retail.store-status/1", "state": "online", "chain": "acme",
                                 "store_id": "s1", "at": utc_now_iso(), "outbox_unacked": "a lot"}, retain=True)
        infinite = json.dumps(alert_document("acme", "s1", 20, "red", 70, False)).replace("800.0", "1e309")
        store.publish("alert/churn", infinite.encode())
        (good,) = store.publish_alerts([21])
        store.wait_for_acks([good], by_seq=False)
    finally:
        store.close()
    deadline = time.monotonic() + 10
    while "dead letter" not in process.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    with open_central_db(central) as db, db.read() as connection:
        assert connection.execute(select(tables.alerts.c.seq).where(tables.alerts.c.seq == 20)).first() is None
        assert len(connection.execute(select(tables.dead_letters)).all()) == 2
    assert ada.get("/api/stores").status_code == 200

    # A status an older aggregator stored before it checked types: the API still answers.
    with open_central_db(central) as db, db.write() as connection:
        record_status(connection, "acme", "s1", {"schema": "retail.store-status/1", "state": "online",
                                                 "outbox_unacked": "a lot", "alarms": ["disk"], "cameras": 7},
                      utc_now_iso(), retained=False)
    stores = ada.get("/api/stores")
    assert stores.status_code == 200, stores.text
    assert {s["store_id"]: s["outbox_unacked"] for s in stores.json()}["s1"] is None

    over = ada.post("/api/alerts/acme-s1-000004/outcome", content=b'{"outcome": "stayed", "cost": 1e309}',
                    headers={"Content-Type": "application/json"})
    assert over.status_code == 422, over.text
    assert ada.get("/api/alerts", params={"max_age_days": "1e309"}).status_code == 422
    assert ada.get("/api/alerts", params={"max_age_days": "NaN"}).status_code == 422
    assert ada.get("/api/alerts", params={"offset": str(10**30)}).status_code == 422
    assert _roi(ada) == before
