"""`edge-agent score`: alerts recorded once, in the contract's shape, without torch."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli, run_json

ALERT_KEYS = {
    "schema", "alert_id", "seq", "chain", "store_id", "customer_ref", "as_of", "risk_score", "level",
    "action", "reasons", "clv_estimate", "action_cost_cap", "model_version", "created_at",
}


@pytest.fixture
def store_copy(chain_dbs: list[Path], tmp_path: Path) -> Path:
    target = tmp_path / "store-01.db"
    shutil.copy(chain_dbs[0], target)
    return target


def payloads(db: Path) -> list[dict]:  # type: ignore[type-arg]
    rows = sqlite3.connect(db).execute("SELECT payload FROM alerts ORDER BY seq").fetchall()
    return [json.loads(p) for (p,) in rows]


def test_score_records_contract_alerts_once(store_copy: Path, trained_model_dir: Path) -> None:
    args = ("edge-agent", "score", "--db", str(store_copy), "--model", str(trained_model_dir), "--as-of", "2025-10-15")
    first = run_json(*args)
    assert first["scored"] > 100 and first["alerts"] > 0
    assert sum(first["levels"].values()) + first["lapsed"] == first["scored"]
    alerts = payloads(store_copy)
    assert len(alerts) == first["alerts"]
    for alert in alerts:
        assert ALERT_KEYS <= set(alert)
        assert alert["schema"] == "retail.churn-alert/1" and alert["chain"] == "demo"
        assert alert["level"] in {"orange", "red", "purple"} and 0 <= alert["risk_score"] <= 100
        assert alert["kind"] in {"early_warning", "win_back"} and alert["value_at_risk"] >= 0
        assert alert["reasons"] and all({"text", "feature", "value"} <= set(r) for r in alert["reasons"])
        assert alert["action"] is None or alert["action_cost_cap"] > 0
    assert [a["seq"] for a in alerts] == list(range(1, len(alerts) + 1))
    again = run_json(*args)
    assert again["alerts"] == 0, "scoring the same day again raises nothing new"
    later = run_json("edge-agent", "score", "--db", str(store_copy), "--model", str(trained_model_dir), "--as-of", "2025-10-16")
    summaries = bool(first["overflow"]) + bool(later["overflow"])  # what budgets hold back goes out as one summary
    outbox = [seq for (seq,) in sqlite3.connect(store_copy).execute("SELECT seq FROM outbox ORDER BY seq")]
    assert outbox == list(range(1, len(alerts) + later["alerts"] + summaries + 1))


def test_alert_level_is_configuration(store_copy: Path, trained_model_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "risk.toml"
    config.write_text('[risk]\nalert_min_level = "purple"\n')
    result = run_json("edge-agent", "score", "--db", str(store_copy), "--model", str(trained_model_dir),
                      "--as-of", "2025-10-15", "--policy", str(config))
    assert {a["level"] for a in payloads(store_copy)} <= {"purple"}
    assert result["alerts"] == len(payloads(store_copy))
    config.write_text('[risk]\nalert_min_level = "blue"\n')
    bad = run_cli("edge-agent", "score", "--db", str(store_copy), "--model", str(trained_model_dir), "--policy", str(config))
    assert bad.returncode == 1 and "risk.alert_min_level" in bad.stderr


def test_scoring_never_imports_torch(store_copy: Path, trained_model_dir: Path) -> None:
    code = (
        "import sys\n"
        "from edge_agent.cli import main\n"
        f"sys.argv = ['edge-agent', 'score', '--db', {str(store_copy)!r}, '--model', {str(trained_model_dir)!r}, '--json']\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print('TORCH LOADED' if 'torch' in sys.modules else 'NO TORCH', file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().endswith("NO TORCH")


def test_missing_or_corrupt_model_is_a_one_line_error(store_copy: Path, trained_model_dir: Path, tmp_path: Path) -> None:
    missing = run_cli("edge-agent", "score", "--db", str(store_copy), "--model", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "no such model directory" in missing.stderr
    broken = tmp_path / "broken"
    shutil.copytree(trained_model_dir, broken)
    (broken / "model.onnx").write_bytes(b"not a graph")
    result = run_cli("edge-agent", "score", "--db", str(store_copy), "--model", str(broken))
    assert result.returncode == 1 and "sha256 does not match" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
