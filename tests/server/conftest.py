"""Fixtures of the central side's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_central(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a new central database lives: a SQLite file, or a fresh PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield str(tmp_path / "central.db")
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture
def central(empty_central: str) -> str:
    """The central database of a test (the console's tests have their own: a populated chain)."""
    return empty_central
