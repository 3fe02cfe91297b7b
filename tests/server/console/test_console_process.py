"""The real `churn-server console` process: the offline page, the API over HTTP, live events, SIGTERM."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from server.central import open_central_db
from server.console.app import STATIC
from tests.conftest import run_cli

from .chain import PASSWORD, alert_document, store_documents
from .process import ConsoleProcess


def logged_in(console: ConsoleProcess, username: str) -> httpx.Client:
    client = httpx.Client(base_url=console.url, timeout=10)
    response = client.post("/api/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def test_the_page_and_its_assets_come_from_the_console_itself(running: ConsoleProcess) -> None:
    with httpx.Client(base_url=running.url, timeout=10) as client:
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert {"/static/console.js", "/static/charts.js", "/static/console.css"} <= set(assets)
        for asset in assets:
            assert asset.startswith(("/static/", "data:")), f"{asset} is not served by the console"
            if asset.startswith("/static/"):
                assert client.get(asset).status_code == 200
        assert client.get("/api/alerts").status_code == 401
        paths = client.get("/openapi.json").json()["paths"]
        assert {"/api/login", "/api/alerts", "/api/alerts/{alert_id}/outcome", "/api/stores", "/api/uplift",
                "/api/decay", "/api/rounds", "/api/events", "/api/users"} <= set(paths)
    for shipped in STATIC.iterdir():  # nothing the browser would fetch from elsewhere
        text = shipped.read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), f"{shipped.name} refers to another host"


def test_the_page_files_are_package_data_so_a_plain_install_has_them() -> None:
    import fnmatch
    import tomllib

    root = STATIC.parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["server"]
    for shipped in STATIC.iterdir():
        relative = shipped.relative_to(root / "server").as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), f"{relative} is not package data"


def read_event(lines: Iterator[str], kind: str) -> str:
    """The data of the next event of `kind` (other events and comments are skipped)."""
    current = None
    for line in lines:
        if line.startswith("event: "):
            current = line.removeprefix("event: ")
        elif line.startswith("data: ") and current == kind:
            return line.removeprefix("data: ")
    raise AssertionError(f"the stream ended before a {kind} event")


def test_events_push_new_alerts_and_handling_to_each_account_s_stores(running: ConsoleProcess, central: str) -> None:
    ada, sam = logged_in(running, "ada"), logged_in(running, "sam")
    with ada.stream("GET", "/api/events") as ada_events, sam.stream("GET", "/api/events") as sam_events:
        assert ada_events.headers["content-type"].startswith("text/event-stream")
        ada_lines, sam_lines = ada_events.iter_lines(), sam_events.iter_lines()
        assert next(ada_lines).startswith("retry:") and next(sam_lines).startswith("retry:")
        started = time.monotonic()
        with open_central_db(central) as db, db.write() as connection:  # what the aggregator does on arrival
            store_documents(connection, [alert_document("acme", "s2", 10, "purple", 95, False)])
        with open_central_db(central) as db, db.write() as connection:
            store_documents(connection, [alert_document("acme", "s1", 9, "red", 80, False)])
        assert '"alert_id": "acme-s2-000010"' in read_event(ada_lines, "alert")
        assert time.monotonic() - started < 5
        assert '"alert_id": "acme-s1-000009"' in read_event(sam_lines, "alert")  # s2's alert was never sent to sam
        assert ada.post("/api/alerts/acme-s1-000009/outcome", json={"outcome": "stayed"}).status_code == 200
        work = read_event(sam_lines, "work")
        assert '"alert_id": "acme-s1-000009"' in work and '"result": "stayed"' in work and '"by": "ada"' in work


def test_sigterm_stops_the_console_promptly_even_with_a_stream_open(running: ConsoleProcess) -> None:
    client = logged_in(running, "vera")
    with client.stream("GET", "/api/events") as events:
        next(events.iter_lines())
        started = time.monotonic()
        assert running.stop() == 0
    assert time.monotonic() - started < 8
    assert "Application shutdown complete" in running.log()


def test_a_missing_database_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_cli("churn-server", "console", "--db", str(tmp_path / "missing.db"), "--port", "1")
    assert result.returncode == 1
    assert result.stderr == f"churn-server: error: central database {tmp_path / 'missing.db'} does not exist\n"
    assert not (tmp_path / "missing.db").exists()
