"""`churn-server alerts`, `dead-letters` and `aggregator` as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.aggregator import Incoming, handle_batch
from server.central import open_central_db
from tests.conftest import run_cli, run_json
from tests.services import churn_alert


@pytest.fixture
def central(tmp_path: Path) -> str:
    """A central database holding five alerts of two stores and one dead letter."""
    target = str(tmp_path / "central.db")
    messages = [Incoming(f"retail/v1/acme/{store}/alert/churn", json.dumps(churn_alert(seq, store, **extra)).encode())
                for store, seq, extra in [("s1", 1, {}), ("s1", 2, {"level": "purple", "risk_score": 90}),
                                          ("s1", 3, {}), ("s2", 1, {"control": True}), ("s2", 2, {})]]
    messages.append(Incoming("retail/v1/acme/s2/alert/churn", b"garbage"))
    with open_central_db(target) as db:
        handle_batch(db, messages)
    return target


def test_alerts_json_lists_the_payload_fields_of_each_stored_alert(central: str) -> None:
    rows = run_json("churn-server", "alerts", "--db", central)
    assert isinstance(rows, list) and len(rows) == 5
    by_id = {r["alert_id"]: r for r in rows}
    expected = churn_alert(1, "s2", control=True)
    assert {k: by_id["acme-s2-000001"][k] for k in expected if k != "schema"} == {
        k: v for k, v in expected.items() if k != "schema"}
    assert by_id["acme-s2-000001"]["received_at"]


def test_alerts_filters_by_store_level_and_limit(central: str) -> None:
    newest = run_json("churn-server", "alerts", "--db", central, "--store-id", "s1", "--limit", "2")
    assert [(r["store_id"], r["seq"]) for r in newest] == [("s1", 3), ("s1", 2)]
    purple = run_json("churn-server", "alerts", "--db", central, "--level", "purple")
    assert [(r["store_id"], r["seq"]) for r in purple] == [("s1", 2)]


def test_alerts_without_json_prints_a_table(central: str) -> None:
    result = run_cli("churn-server", "alerts", "--db", central, "--store-id", "s2", check=True, env={"COLUMNS": "160"})
    assert "2 alerts" in result.stdout and "one-to-one service plan" in result.stdout and "C00002" in result.stdout


def test_dead_letters_show_the_topic_reason_and_bytes(central: str) -> None:
    (dead,) = run_json("churn-server", "dead-letters", "--db", central)
    assert dead["topic"] == "retail/v1/acme/s2/alert/churn" and dead["raw"] == "garbage"
    assert dead["reason"].startswith("not JSON") and dead["count"] == 1


@pytest.mark.parametrize(("args", "message"), [
    (["alerts", "--db", "{tmp}/missing.db"], "central database {tmp}/missing.db does not exist"),
    (["dead-letters", "--db", "postgresql://postgres@127.0.0.1:1/none"], "cannot open central database postgresql://"),
    (["aggregator", "--mqtt", "mqtt://127.0.0.1:1", "--db", "{tmp}/c.db", "--group", "a+b"], "--group 'a+b'"),
])
def test_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli("churn-server", *[a.format(tmp=tmp_path) for a in args], timeout=30)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"churn-server: error: {message.format(tmp=tmp_path)}")
