"""`edge-agent ingest-events` and `ingest-identities` as an operator runs them, on the simulator's files too."""

from __future__ import annotations

import json
from pathlib import Path

from edge_agent.daemon.dropbox import Dropbox
from edge_agent.store_db import open_store_db
from models.store_data import load_store_data
from tests.conftest import run_cli, run_json

EVENTS_HEADER = "event_id,customer_id,timestamp,kind,value,channel,note\n"


def test_json_output_reconciles_and_names_the_reasons(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text(EVENTS_HEADER + "e1,c1,2025-03-01,complaint,,store,\ne2,c1,2025-03-01,praise,,store,\n"
                                      "e1,c1,2025-03-01,complaint,,store,\n")
    report = run_json("edge-agent", "ingest-events", "--db", str(tmp_path / "s.db"), str(events))
    assert {k: report[k] for k in ("rows", "accepted", "duplicates", "quarantined", "reasons")} == {
        "rows": 3, "accepted": 1, "duplicates": 1, "quarantined": 1, "reasons": {"unknown kind": 1}}
    listed = run_json("edge-agent", "quarantine", "--db", str(tmp_path / "s.db"))
    assert [(r["source"], r["line"], r["reason"]) for r in listed] == [("events.csv", 3, "unknown kind")]


def test_bad_files_exit_with_one_line_and_create_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    sales = tmp_path / "pos.csv"
    sales.write_text("customer_id,timestamp,amount\nc1,2025-03-01,1.00\n")
    for command, path, message in (("ingest-events", tmp_path / "none.csv", "none.csv: no such file"),
                                   ("ingest-events", empty, "empty.csv: file is empty"),
                                   ("ingest-identities", sales, "header lacks online_account or phone or email"),
                                   ("ingest-identities", tmp_path, "not a regular file")):
        result = run_cli("edge-agent", command, "--db", str(db), str(path))
        assert result.returncode == 1 and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert not db.exists()


def test_a_key_file_open_to_others_is_a_one_line_error(tmp_path: Path) -> None:
    ids = tmp_path / "ids.csv"
    ids.write_text("customer_id,phone\nC1,+33612345678\n")
    key = tmp_path / "box.key"
    key.write_text("00" * 32 + "\n")
    key.chmod(0o640)
    result = run_cli("edge-agent", "ingest-identities", "--db", str(tmp_path / "s.db"), "--key-file", str(key),
                     str(ids))
    assert result.returncode == 1
    assert result.stderr.strip() == (f"edge-agent: error: identity key {key} is open to other users (mode 0640); "
                                     "chmod 600 it")


def test_progress_bar_on_large_files_but_not_with_json(tmp_path: Path) -> None:
    events = tmp_path / "large.csv"
    with open(events, "w") as handle:
        handle.write(EVENTS_HEADER)
        for i in range(30_000):
            handle.write(f"event-{i:08d},customer-{i % 997:06d},2025-0{1 + i % 9}-1{i % 10}T10:00:00,online_visit,,"
                         f"online,\n")
    db = str(tmp_path / "s.db")
    shown = run_cli("edge-agent", "ingest-events", "--db", db, str(events), check=True)
    assert "large.csv" in shown.stderr and "2.2/2.2 MB" in shown.stderr
    quiet = run_cli("edge-agent", "ingest-events", "--db", db, str(events), "--json", check=True)
    assert quiet.stderr == "" and json.loads(quiet.stdout)["duplicates"] == 30_000


def test_the_simulators_files_ingest_cleanly_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "chain"
    run_cli("churn-server", "simulate", "--stores", "1", "--customers-per-store", "150",
            "--days", "60", "--seed", "4", "--out", str(out), "--gzip", check=True)
    store = out / "store-01"
    db = str(tmp_path / "store-01.db")
    sales = run_json("edge-agent", "ingest", "--db", db, str(store / "pos.csv.gz"))
    events = run_json("edge-agent", "ingest-events", "--db", db, str(store / "events.csv.gz"))
    links = run_json("edge-agent", "ingest-identities", "--db", db, str(store / "identities.csv"))
    for report in (sales, events, links):
        assert report["rows"] > 0 and report["accepted"] == report["rows"] and report["quarantined"] == 0
    with open_store_db(db) as opened:
        inputs = dict(opened.conn.execute("SELECT input, sum(rows) FROM ingest_runs GROUP BY input"))
        notes = {n for (n,) in opened.conn.execute("SELECT DISTINCT note FROM customer_events")}
    assert inputs == {"pos": sales["rows"], "events": events["rows"], "identities": links["rows"]}
    assert notes - {None} and notes - {None} <= {"delivery", "staff", "product", "price", "queue", "question",
                                                 "exchange", "loyalty", "opening_hours"}
    data = load_store_data(db)
    assert len(data.events.ts) == events["rows"]
    assert all(c.startswith("C") for c in data.customer_ids), "every online account and phone found its customer"


def test_the_drop_folder_tells_the_three_inputs_apart_by_their_header(tmp_path: Path) -> None:
    box = Dropbox(tmp_path / "dropbox", settle_seconds=0.0)
    files = {
        "till.csv": "customer_id,timestamp,amount,transaction_id\nC1,2025-03-01,1.00,t1\n",
        "desk.jsonl": json.dumps({"customer_id": "W1", "timestamp": "2025-03-01", "kind": "online_visit"}) + "\n",
        "crm.csv": "customer_id,online_account\nC1,W1\n",
        "other.csv": "name,kind\nx,y\n",
    }
    with open_store_db(tmp_path / "s.db") as store:
        for name, content in files.items():
            (box.folder / name).write_text(content)
            box.ingest(store, box.folder / name)
        runs = store.conn.execute("SELECT source, input, accepted FROM ingest_runs ORDER BY run_id").fetchall()
    assert runs == [("till.csv", "pos", 1), ("desk.jsonl", "events", 1), ("crm.csv", "identities", 1)]
    assert {k: v.accepted for k, v in box.totals.by_input.items()} == {"pos": 1, "events": 1, "identities": 1}
    assert "not a customer-events CSV: header lacks timestamp, customer_id or phone or email" in (
        box.failed / "other.csv.reason").read_text()
    assert load_store_data(tmp_path / "s.db").events.customer.tolist() == [0], "W1's visit is C1's"


def test_retention_removes_events_past_the_horizon_with_the_sales(tmp_path: Path) -> None:
    from datetime import date, timedelta

    from edge_agent.config import load_config
    from edge_agent.daemon.jobs import RetentionJob

    config_file = tmp_path / "edge-agent.toml"
    config_file.write_text('profile = "x86-minipc"\n'
                           f'[store]\nchain = "acme"\nstore_id = "paris-01"\ndata_dir = "{tmp_path / "data"}"\n'
                           "[retention]\ntransactions_days = 700\n")
    config = load_config(config_file)
    old, recent = (date.today() - timedelta(days=800)).isoformat(), (date.today() - timedelta(days=10)).isoformat()
    events = tmp_path / "events.csv"
    events.write_text(EVENTS_HEADER + f"e1,c1,{old},complaint,,store,\ne2,c1,{recent},complaint,,store,\n")
    run_json("edge-agent", "ingest-events", "--db", str(config.store.db_path), "--store-id", "paris-01",
             "--chain", "acme", str(events))
    with open_store_db(config.store.db_path) as store:
        RetentionJob(config, tmp_path / "run").step(store)
        assert store.conn.execute("SELECT event_id FROM customer_events").fetchall() == [("e2",)]
