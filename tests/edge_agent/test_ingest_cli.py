"""`edge-agent ingest` and `edge-agent quarantine` as an operator runs them."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.conftest import VENV_BIN, run_cli, run_json

HEADER = "customer_id,timestamp,amount,transaction_id\n"


def big_csv(path: Path, rows: int) -> Path:
    with open(path, "w") as handle:
        handle.write(HEADER)
        for i in range(rows):
            handle.write(f"c{i % 997},2025-0{1 + i % 9}-1{i % 10}T10:{i % 60:02d}:00,{i % 50}.25,t{i}\n")
    return path


def test_json_output_reconciles(tmp_path: Path) -> None:
    pos = tmp_path / "pos.csv"
    pos.write_text(HEADER + "c1,2025-03-01,1.00,t1\nc2,not-a-date,2.00,t2\nc1,2025-03-01,1.00,t1\n")
    report = run_json("edge-agent", "ingest", "--db", str(tmp_path / "s.db"), str(pos))
    assert {k: report[k] for k in ("rows", "accepted", "duplicates", "quarantined")} == {
        "rows": 3, "accepted": 1, "duplicates": 1, "quarantined": 1}
    assert report["reasons"] == {"bad timestamp": 1}


def test_missing_file_exits_nonzero_with_one_line_and_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    result = run_cli("edge-agent", "ingest", "--db", str(db), str(tmp_path / "missing.csv"), "--json")
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "missing.csv: no such file" in result.stderr
    assert not db.exists()


def test_not_a_csv_exits_nonzero(tmp_path: Path) -> None:
    picture = tmp_path / "photo.csv"
    picture.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" * 10)
    result = run_cli("edge-agent", "ingest", "--db", str(tmp_path / "s.db"), str(picture))
    assert result.returncode == 1
    assert result.stderr.strip() == f"edge-agent: error: {picture}: binary content, not a CSV or JSON Lines file"


def test_store_identity_options_are_recorded(tmp_path: Path) -> None:
    pos = tmp_path / "pos.csv"
    pos.write_text(HEADER + "c1,2025-03-01,1.00,t1\n")
    db = tmp_path / "box.db"
    run_json("edge-agent", "ingest", "--db", str(db), "--chain", "acme", "--store-id", "paris-01", str(pos))
    meta = dict(sqlite3.connect(db).execute("SELECT key, value FROM metadata"))
    assert (meta["chain"], meta["store_id"]) == ("acme", "paris-01")
    clash = run_cli("edge-agent", "ingest", "--db", str(db), "--store-id", "lyon-02", str(pos))
    assert clash.returncode == 1 and "belongs to store_id 'paris-01'" in clash.stderr


def test_progress_bar_on_large_files_but_not_with_json(tmp_path: Path) -> None:
    pos = big_csv(tmp_path / "large.csv", 40_000)  # > 1 MB
    db = str(tmp_path / "s.db")
    shown = run_cli("edge-agent", "ingest", "--db", db, str(pos), check=True)
    assert "large.csv" in shown.stderr and "1.5/1.5 MB" in shown.stderr
    quiet = run_cli("edge-agent", "ingest", "--db", db, str(pos), "--json", check=True)
    assert quiet.stderr == ""
    assert json.loads(quiet.stdout)["duplicates"] == 40_000


def test_quarantine_lists_and_exports_for_fix_and_reingest(tmp_path: Path) -> None:
    pos = tmp_path / "pos-2025-03-01.csv"
    pos.write_text(HEADER + "c1,2025-03-01,1.00,t1\nc2,2025-03-01,1;50,t2\nc3,01/03/2025,3.00,t3\n")
    db = str(tmp_path / "s.db")
    run_json("edge-agent", "ingest", "--db", db, str(pos))
    listed = run_json("edge-agent", "quarantine", "--db", db)
    assert [(r["source"], r["line"], r["reason"], r["raw"]) for r in listed] == [
        ("pos-2025-03-01.csv", 3, "bad amount", "c2,2025-03-01,1;50,t2"),
        ("pos-2025-03-01.csv", 4, "bad timestamp", "c3,01/03/2025,3.00,t3"),
    ]
    table = run_cli("edge-agent", "quarantine", "--db", db, check=True)
    assert "bad amount" in table.stdout

    fixed = tmp_path / "fixed.csv"
    run_json("edge-agent", "quarantine", "--db", db, "--source", pos.name, "--export", str(fixed))
    text = fixed.read_text().replace("1;50", "1.50").replace("01/03/2025", "2025-03-01")
    fixed.write_text(text)
    report = run_json("edge-agent", "ingest", "--db", db, str(fixed))
    assert (report["accepted"], report["quarantined"]) == (2, 0)


def test_quarantine_on_missing_database_is_an_error(tmp_path: Path) -> None:
    result = run_cli("edge-agent", "quarantine", "--db", str(tmp_path / "none.db"))
    assert result.returncode == 1 and "does not exist" in result.stderr
    assert not (tmp_path / "none.db").exists()


def test_sigkill_mid_ingest_loses_nothing_and_reingest_completes(tmp_path: Path) -> None:
    """A real kill -9 of the ingest process: whole batches only, then a re-run fills the rest."""
    rows, batch = 200_000, 5_000
    pos = big_csv(tmp_path / "big.csv", rows)
    db = tmp_path / "s.db"
    process = subprocess.Popen(
        [str(VENV_BIN / "edge-agent"), "ingest", "--db", str(db), "--batch-size", str(batch), "--json", str(pos)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    count = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            count = sqlite3.connect(db, timeout=1).execute("SELECT count(*) FROM transactions").fetchone()[0]
        except sqlite3.OperationalError:
            count = 0
        if count >= 2 * batch:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "ingest finished before it could be killed"
    survivors = sqlite3.connect(db).execute("SELECT count(*) FROM transactions").fetchone()[0]
    assert survivors % batch == 0 and 0 < survivors < rows
    report = run_json("edge-agent", "ingest", "--db", str(db), str(pos), timeout=300)
    assert (report["accepted"], report["duplicates"]) == (rows - survivors, survivors)
    assert sqlite3.connect(db).execute("SELECT count(*) FROM transactions").fetchone()[0] == rows
