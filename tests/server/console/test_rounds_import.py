"""Model rounds into the central database: `record-rounds`, and `federate --central-db`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import server.cli
from server.central import open_central_db, read_summary_file
from server.central.rounds import summary_rows
from server.central.tables import model_releases, model_rounds
from server.errors import SummaryError
from server.federation.strategy import RoundRecord
from tests.conftest import run_cli, run_json

from .chain import FEDERATION_SUMMARY


def federation_summary() -> dict[str, Any]:
    """A summary as the ServerApp writes it: RoundRecord.as_dict() plus the privacy spent, one round unevaluated."""
    rounds = [{**RoundRecord(n, ["s1", "s2"], ["s1", "s2"], 0, 0.4, {"auc": auc, "loss": 0.3},
                             {"s1": 0.79, "s2": 0.81}).as_dict(), "privacy": None} for n, auc in ((1, 0.81), (2, 0.82))]
    rounds.append({**RoundRecord(3, [], [], 2, None, {"auc": math.nan}, {}, "1 store(s) connected, 2 needed").as_dict(),
                   "privacy": None})
    return {**FEDERATION_SUMMARY, "privacy": None, "rounds": rounds,
            "manifest": {**FEDERATION_SUMMARY["manifest"], "version": "fed-2026-03-31-r3-0badc0de"}}


def table_rows(target: str) -> tuple[list[Any], list[Any]]:
    with open_central_db(target) as db, db.read() as connection:
        return (connection.execute(select(model_releases)).all(),
                connection.execute(select(model_rounds).order_by(model_rounds.c.round)).all())


def test_record_rounds_imports_a_summary_once(tmp_path: Path) -> None:
    target, summary = str(tmp_path / "central.db"), tmp_path / "federation.json"
    summary.write_text(json.dumps(federation_summary(), indent=2))  # NaN is written as the federation writes it
    first = run_json("churn-server", "record-rounds", "--db", target, "--summary", str(summary))
    assert first == {"version": "fed-2026-03-31-r3-0badc0de", "chain": "acme", "release_new": True, "rounds_new": 3,
                     "rounds_total": 3}
    before = table_rows(target)
    again = run_json("churn-server", "record-rounds", "--db", target, "--summary", str(summary))
    assert (again["release_new"], again["rounds_new"], again["rounds_total"]) == (False, 0, 3)
    assert table_rows(target) == before
    (release,), rounds = before
    assert (release.chain, release.rounds, release.auc, json.loads(release.stores)) == ("acme", 3, 0.87, ["s1", "s2"])
    assert [(r.round, r.auc, r.failures, r.skipped, r.epsilon) for r in rounds] == [
        (1, 0.81, 0, "", None), (2, 0.82, 0, "", None), (3, None, 2, "1 store(s) connected, 2 needed", None)]
    text = run_cli("churn-server", "record-rounds", "--db", target, "--summary", str(summary), check=True)
    assert text.stdout.strip() == "fed-2026-03-31-r3-0badc0de (acme): 0 of 3 round(s) new, release already recorded."


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read {path}: No such file or directory"),
    ("not json", "{path} is not JSON: Expecting value: line 1 column 1 (char 0)"),
    ('{"rounds": []}', "the summary has no manifest with a version (is it a federation.json?)"),
    ('{"manifest": {"version": "v"}, "rounds": [{"trained": []}]}',
     "the summary's rounds must be a list of objects with a round number"),
])
def test_a_bad_summary_is_refused_by_name(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "federation.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SummaryError) as refused:
        summary_rows(read_summary_file(path), "now")
    assert str(refused.value) == message.format(path=path)


def test_a_bad_summary_is_a_one_line_error_and_records_nothing(tmp_path: Path) -> None:
    path, target = tmp_path / "federation.json", str(tmp_path / "c.db")
    path.write_text('{"rounds": []}')
    result = run_cli("churn-server", "record-rounds", "--db", target, "--summary", str(path))
    assert result.returncode == 1
    assert result.stderr == ("churn-server: error: the summary has no manifest with a version "
                             "(is it a federation.json?)\n")
    assert table_rows(target) == ([], [])


def test_federate_with_central_db_records_the_rounds_when_the_run_ends(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    target = str(tmp_path / "central.db")
    submitted = []

    def fake_federate(settings: Any, connection: Any, **_kwargs: Any) -> dict[str, Any]:
        submitted.append(settings.chain)
        return {**federation_summary(), "release_dir": str(tmp_path / "release")}

    monkeypatch.setattr(server.cli, "federate", fake_federate)
    args = ["federate", "--superlink", "127.0.0.1:9093", "--insecure", "--as-of", "2026-03-31", "--chain", "acme",
            "--state-dir", str(tmp_path / "state"), "--rounds", "3", "--central-db", target, "--json"]
    result = CliRunner().invoke(server.cli.app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["recorded"]["rounds_new"] == 3 and submitted == ["acme"]
    assert len(table_rows(target)[1]) == 3


def test_federate_checks_the_central_db_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server.cli, "federate", lambda *a, **k: pytest.fail("federated despite a bad --central-db"))
    result = CliRunner().invoke(server.cli.app, [
        "federate", "--superlink", "127.0.0.1:9093", "--insecure", "--as-of", "2026-03-31",
        "--state-dir", str(tmp_path / "state"), "--central-db", "postgresql://postgres@127.0.0.1:1/none"])
    assert result.exit_code == 1 and "cannot open central database postgresql://" in result.output
