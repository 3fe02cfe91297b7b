"""Data quality end to end: a store box's uplink, a real broker and aggregator, and the console's board and alarms."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from edge_agent.daemon.uplink import Uplink
from edge_agent.ingest import ingest_files
from edge_agent.store_link import LinkSettings
from edge_agent.store_db import StoreDatabase, open_store_db
from server.central import open_central_db, tables
from server.console import passwords
from server.console.accounts import create_account
from server.console.app import create_app
from tests.server.console.conftest import QUICK, log_in
from tests.services import AggregatorProcess, Mosquitto
from transport.mqtt import BrokerConfig

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"


def pos_export(path: Path, first: int, good: int, bad: int) -> Path:
    rows = [f"C{n % 40:03d},2026-02-{1 + n % 27:02d}T10:{n % 60:02d}:00,{5 + n % 30}.50"
            for n in range(first, first + good)]
    rows += [f"C{n:03d},2026-02-10T10:00:00,{'' if n % 2 else 'twelve'}" for n in range(bad)]
    path.write_text("customer_id,timestamp,amount\n" + "\n".join(rows) + "\n")
    return path


def backdate_last_run(store: StoreDatabase, days: int) -> None:
    at = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with store.conn:
        store.conn.execute("UPDATE ingest_runs SET started_at = ?, finished_at = ? WHERE run_id = "
                           "(SELECT max(run_id) FROM ingest_runs)", (at, at))


def nightly_events(store: StoreDatabase, last_days_ago: int, nights: int) -> None:
    """Customer-events runs as their ingest records them, the last one `last_days_ago` days ago."""
    with store.conn:
        for night in range(last_days_ago, last_days_ago + nights):
            at = (datetime.now(UTC) - timedelta(days=night)).strftime("%Y-%m-%dT%H:%M:%SZ")
            store.conn.execute("INSERT INTO ingest_runs(source, format, started_at, finished_at, status, rows,"
                               " accepted, input) VALUES (?, 'csv', ?, ?, 'done', 200, 200, 'events')",
                               (f"events-{night}.csv", at, at))


@pytest.fixture
def uplink(tmp_path: Path) -> Iterator[tuple[StoreDatabase, Mosquitto, AggregatorProcess]]:
    broker = Mosquitto(tmp_path / "broker").start()
    aggregator = AggregatorProcess(tmp_path, broker.url, str(tmp_path / "central.db")).start()
    store = open_store_db(tmp_path / "store.db", chain="acme", store_id="s1")
    try:
        yield store, broker, aggregator
    finally:
        store.close()
        aggregator.kill()
        broker.kill()


def central_days(target: str) -> int:
    with open_central_db(target) as db, db.read() as connection:
        return int(connection.execute(select(func.count()).select_from(tables.input_days)).scalar_one())


def test_a_stores_data_quality_reaches_the_console_and_raises_its_alarms(
        uplink: tuple[StoreDatabase, Mosquitto, AggregatorProcess], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    store, broker, aggregator = uplink
    ingest_files(store, [pos_export(tmp_path / "pos-1.csv", 0, 300, 0)])
    backdate_last_run(store, 2)
    ingest_files(store, [pos_export(tmp_path / "pos-2.csv", 300, 60, 40)])  # today: 40% of the rows are bad
    nightly_events(store, last_days_ago=3, nights=6)  # the events export stopped three nights ago

    stop = threading.Event()
    link = Uplink(store, LinkSettings(BrokerConfig(broker.url), "acme.s1.uplink"), stop=stop,
                  wake=threading.Event(), drain_every=0.2, status_every=60, metrics_every=0.5, status_details=dict,
                  health_details=dict, releases=None, on_beat=lambda **_: None)
    thread = threading.Thread(target=link.run, name="uplink")
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while central_days(aggregator.db) < 8:  # two POS days and six events nights
            assert time.monotonic() < deadline, aggregator.log()[-2000:]
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=20)

    monkeypatch.setattr(passwords, "DEFAULT_COST", QUICK)
    with open_central_db(aggregator.db) as db:
        create_account(db, "ada", PASSWORD, "admin")
        client = log_in(TestClient(create_app(db)), "ada", PASSWORD)
        board: dict[str, Any] = client.get("/api/stores/acme/s1/data-quality").json()
        (health,) = client.get("/api/stores").json()
    pos = {i["input"]: i for i in board["inputs"]}["pos"]
    assert [(d["accepted"], d["quarantined"]) for d in pos["days"]] == [(300, 0), (60, 40)]
    assert pos["days"][-1]["reasons"] == {"bad amount": 20, "missing amount": 20}
    assert (pos["today_rate"], pos["trailing_rate"]) == (0.4, 0.0)
    assert set(board["alarms"]) == {"data_quality.pos.quarantine_jump", "data_quality.events.export_late"}
    assert board["alarms"]["data_quality.events.export_late"].startswith("no customer events export for 72 h")
    assert set(health["alarms"]) == set(board["alarms"]), "the store list raises the same alarms"
