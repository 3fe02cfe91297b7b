"""Shared fixtures: a fresh store database, a way to run the real console scripts, and the end of the
session's private services."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.processes import VENV_BIN
from tests.postgres import stop_session_postgres


def run_cli(*args: str, check: bool = False, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run an installed console script (edge-agent, churn-server) as an operator would."""
    command = [str(VENV_BIN / args[0]), *args[1:]]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def run_json(*args: str, timeout: float = 120) -> object:
    """Run a command with --json and return its parsed stdout."""
    result = run_cli(*args, "--json", check=True, timeout=timeout)
    return json.loads(result.stdout)


@pytest.fixture(scope="session", autouse=True)
def private_postgres_stops_with_the_session() -> Iterator[None]:
    """The session's private PostgreSQL (tests/postgres.py), started by the first test that needs a database,
    is stopped when the session ends: no server left running."""
    yield
    stop_session_postgres()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store-01.db"


# --- a small simulated chain, ingested and trained once per test session ---

CHAIN_END = "2025-12-31"
CHAIN_AS_OF = "2025-09-30"  # leaves 92 days after as-of to measure against


@pytest.fixture(scope="session")
def small_chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datetime import date

    from server.simulate import ChainSpec, simulate_chain

    out = tmp_path_factory.mktemp("small-chain")
    simulate_chain(ChainSpec(stores=3, customers_per_store=500, days=450, seed=5, end=date.fromisoformat(CHAIN_END)), out)
    return out


@pytest.fixture(scope="session")
def chain_dbs(small_chain: Path) -> list[Path]:
    from edge_agent.ingest import ingest_files
    from edge_agent.store_db import open_store_db

    paths = []
    for folder in sorted(small_chain.glob("store-*")):
        db = small_chain / "db" / f"{folder.name}.db"
        with open_store_db(db, chain="demo") as store:
            ingest_files(store, [folder / "pos.csv"])
        paths.append(db)
    return paths


@pytest.fixture(scope="session")
def trained_model_dir(chain_dbs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datetime import date

    from server.train import train_command

    out = tmp_path_factory.mktemp("model") / "central"
    train_command(chain_dbs, date.fromisoformat(CHAIN_AS_OF), out, 90)
    return out
