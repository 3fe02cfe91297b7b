"""Console fixtures: a populated central database (copied per test) and logged-in API clients."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.central import open_central_db
from server.console import passwords
from server.console.app import create_app
from server.console.settings import ConsoleSettings

from .chain import PASSWORD, populate
from .process import ConsoleProcess

# Tests log in dozens of times; the production cost (about 0.3 s a hash) is checked in test_accounts.py.
QUICK = passwords.ScryptCost(2**10, 8, 1)

Login = Callable[..., TestClient]


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("console-template") / "central.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "DEFAULT_COST", QUICK)
        populate(str(path))
    return path


@pytest.fixture
def quick_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "DEFAULT_COST", QUICK)


@pytest.fixture
def central(template_db: Path, tmp_path: Path, quick_passwords: None) -> str:
    """A fresh copy of the populated chain's central database."""
    target = tmp_path / "central.db"
    shutil.copy(template_db, target)
    return str(target)


@pytest.fixture
def console(central: str) -> Iterator[Callable[..., TestClient]]:
    """`console(settings)` → a TestClient of an app over the test's database."""
    opened = []

    def make(settings: ConsoleSettings | None = None) -> TestClient:
        db = open_central_db(central)
        opened.append(db)
        return TestClient(create_app(db, settings))

    yield make
    for db in opened:
        db.close()


def log_in(client: TestClient, username: str, password: str = PASSWORD) -> TestClient:
    """Log the client in and send the session's CSRF token with every later request, as the page does."""
    response = client.post("/api/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


@pytest.fixture
def login(console: Callable[..., TestClient]) -> Login:
    """`login("sam")` → a client logged in as sam, on its own cookie jar."""
    return lambda username, settings=None, password=PASSWORD: log_in(console(settings), username, password)


@pytest.fixture
def running(central: str, tmp_path: Path) -> Iterator[ConsoleProcess]:
    """The console as its own process (`churn-server console`) on the populated chain."""
    console = ConsoleProcess(central, tmp_path).start()
    yield console
    console.kill()
