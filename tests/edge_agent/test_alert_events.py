"""An alert shows the customer's own recent events beside its reasons: kind, days ago and a number, nothing else."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_agent import score as score_module
from edge_agent.onnx_model import OnnxChurnModel
from edge_agent.score import ScoreResult, ScoringPolicy, customer_events, record_scoring, score_store
from edge_agent.store_db import open_store_db
from models.alerting import pseudonymise
from models.events import EVENT_KINDS, KIND
from models.payloads import RECENT_EVENTS_MAX, check_alert
from models.store_data import DAY, CustomerEvents, StoreData, load_store_data, make_store_data
from tests.builders import customer, published_schema

AS_OF = "2025-10-01"
AS_OF_DAY = (date.fromisoformat(AS_OF) - date(1970, 1, 1)).days
BOUND_DAY = AS_OF_DAY + 1  # scoring sees everything up to the end of the as-of date


def events(rows: list[tuple[int, int, str, float | None]]) -> CustomerEvents:
    """(customer index, day, kind, value) rows, put in time order as the store database gives them."""
    rows = sorted(rows, key=lambda r: r[1])
    return CustomerEvents(np.array([r[0] for r in rows], np.int64), np.array([r[1] * DAY + 3600 for r in rows], np.int64),
                          np.array([KIND[r[2]] for r in rows], np.int64),
                          np.array([np.nan if r[3] is None else r[3] for r in rows], np.float64))


def store_with(rows: list[tuple[int, int, str, float | None]]) -> StoreData:
    day = AS_OF_DAY - 30
    return make_store_data("s1", ["L0001", "L0002"], np.array([0, 1]), np.array([day * DAY, day * DAY]),
                           np.array([25.0, 40.0]), events=events(rows))


def recorded(db: Path, data: StoreData, policy: ScoringPolicy | None = None) -> dict[str, Any]:
    candidates = [customer("L0001", 72, "red")]
    with open_store_db(db, chain="demo", store_id="s1") as store:
        record_scoring(store, ScoreResult(AS_OF, "m1", scored=1), candidates, policy or ScoringPolicy(),
                       customer_events(data, BOUND_DAY, candidates))
        (payload,) = store.conn.execute("SELECT payload FROM outbox").fetchone()
    return dict(json.loads(payload))


def test_an_alert_lists_the_customers_own_events_of_the_last_90_days_newest_first(store_path: Path) -> None:
    data = store_with([
        (0, AS_OF_DAY - 11, "complaint", None), (0, AS_OF_DAY - 29, "survey", 3.0), (0, AS_OF_DAY, "online_visit", None),
        (0, AS_OF_DAY - 120, "complaint", None),  # older than 90 days
        (0, AS_OF_DAY + 2, "complaint", None),  # after as-of: scoring never sees it
        (1, AS_OF_DAY - 5, "complaint", None),  # another customer's
    ])
    alert = recorded(store_path, data)
    assert alert["recent_events"] == [{"kind": "online_visit", "days_ago": 1, "value": None},
                                      {"kind": "complaint", "days_ago": 12, "value": None},
                                      {"kind": "survey", "days_ago": 30, "value": 3.0}]
    assert check_alert(alert, "demo", "s1") is alert


def test_a_busy_customer_shows_only_the_latest_events(store_path: Path) -> None:
    alert = recorded(store_path, store_with([(0, AS_OF_DAY - d, "online_visit", None) for d in range(40)]))
    assert [e["days_ago"] for e in alert["recent_events"]] == list(range(1, RECENT_EVENTS_MAX + 1))


def test_a_store_without_events_sends_an_empty_list(store_path: Path) -> None:
    assert recorded(store_path, store_with([]))["recent_events"] == []


def test_events_follow_the_customer_when_the_store_pseudonymises_references(store_path: Path) -> None:
    policy = ScoringPolicy(pseudonymise_key=b"k" * 32)
    alert = recorded(store_path, store_with([(0, AS_OF_DAY - 3, "return", 24.9)]), policy)
    assert alert["customer_ref"] == pseudonymise("L0001", b"k" * 32) != "L0001"
    assert alert["recent_events"] == [{"kind": "return", "days_ago": 4, "value": 24.9}]


# --- scoring a real store whose exports carry events, notes and a CRM's identities ---

def loyalty_events(export: Path, data: StoreData) -> CustomerEvents:
    """The rows of a simulated events export filed under a loyalty id of the store (a test's stand-in for
    `edge-agent ingest-events`: rows under an online account or a phone number are left out)."""
    index = {str(c): i for i, c in enumerate(data.customer_ids)}
    rows = []
    with open(export, newline="") as handle:
        for row in csv.DictReader(handle):
            if row["customer_id"] in index and row["kind"] in EVENT_KINDS:
                day = (datetime.fromisoformat(row["timestamp"]).date() - date(1970, 1, 1)).days
                rows.append((index[row["customer_id"]], day, row["kind"], float(row["value"]) if row["value"] else None))
    return events(rows)


def personal_details(folder: Path) -> set[str]:
    """What the store's exports say about people beyond their loyalty id: accounts, phones, e-mails, notes."""
    found = set()
    with open(folder / "identities.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            found |= {row["online_account"], row["phone"], row["email"]}
    with open(folder / "events.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            found.add(row["note"])
            if row["channel"] != "store":
                found.add(row["customer_id"])  # an online account or a phone number
    return {text for text in found if text}


def strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(where, text) of every string value in a JSON document."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [s for item in value for s in strings(item, f"{path}[]")]
    return []


def keys(value: Any) -> set[str]:
    """Every key of a JSON document, at any depth."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys(v)}
    if isinstance(value, list):
        return {k for item in value for k in keys(item)}
    return set()


def test_scored_alerts_carry_events_and_nothing_that_identifies_a_person_beyond_the_loyalty_id(
        small_chain: Path, chain_dbs: list[Path], trained_model_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "store-01.db"
    shutil.copy(chain_dbs[0], db)
    exports = small_chain / "store-01"

    def with_events(path: str | Path) -> StoreData:
        data = load_store_data(path)
        data.events = loyalty_events(exports / "events.csv", data)
        return data

    monkeypatch.setattr(score_module, "load_store_data", with_events)
    with open_store_db(db) as store:
        result = score_store(store, OnnxChurnModel(trained_model_dir), as_of=date(2025, 10, 15))
        alerts = [json.loads(p) for (p,) in store.conn.execute("SELECT payload FROM outbox WHERE kind = 'alert'")]
        loyalty_ids = {c for (c,) in store.conn.execute("SELECT customer_id FROM customers")}
    assert result.alerts == len(alerts) > 0
    assert sum(bool(a["recent_events"]) for a in alerts) > len(alerts) / 4, "the simulated stores log many events"
    details = personal_details(exports)
    assert len(details) > 100
    described = set(published_schema()["properties"]) | {"text", "feature", "value", "usual", "kind", "days_ago"}
    for alert in alerts:
        check_alert(alert, "demo", "store-01")
        assert keys(alert) <= described, "every field is one the contract describes"
        assert all(set(e) == {"kind", "days_ago", "value"} for e in alert["recent_events"])
        for where, text in strings(alert):
            assert text not in details, f"{where} carries {text!r} from the store's exports"
            assert text == alert["customer_ref"] or text not in loyalty_ids, f"{where} names another customer"
