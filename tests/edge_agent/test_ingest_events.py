"""The customer-events contract: every row ends up accepted, duplicate or quarantined, and nothing private is kept."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from edge_agent.ingest import EVENTS, IngestError, ingest_files
from edge_agent.quarantine import export_quarantine, list_quarantine
from edge_agent.store_db import open_store_db
from models.events import EVENT_KINDS

HEADER = "event_id,customer_id,timestamp,kind,value,channel,note\n"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def ingest(store_path: Path, *files: Path) -> dict:
    with open_store_db(store_path, store_id="store-01") as store:
        report = ingest_files(store, files, contract=EVENTS, now_utc=NOW).as_dict()
    assert report["accepted"] + report["duplicates"] + report["quarantined"] == report["rows"]
    return report


def stored(store_path: Path) -> list[tuple]:
    with open_store_db(store_path) as store:
        return store.conn.execute(
            "SELECT event_id, customer_ref, ts, has_time, kind, value, channel, note FROM customer_events"
            " ORDER BY ts, event_id").fetchall()


def local_seconds(text: str) -> int:
    return int((datetime.fromisoformat(text) - datetime(1970, 1, 1)).total_seconds())


def test_every_kind_of_the_contract_is_stored_with_its_value(tmp_path: Path, store_path: Path) -> None:
    lines = [f"e{i},c1,2025-03-0{1 + i % 9}T10:00:00,{kind},{i if kind in ('review', 'survey') else ''},store,\n"
             for i, kind in enumerate(EVENT_KINDS)]
    report = ingest(store_path, write(tmp_path, "events.csv", HEADER + "".join(lines)))
    assert (report["rows"], report["accepted"], report["quarantined"]) == (len(EVENT_KINDS), len(EVENT_KINDS), 0)
    rows = {row[0]: row for row in stored(store_path)}
    assert rows["e6"][4:7] == ("review", 6.0, "store")
    assert rows["e7"][4:6] == ("survey", 7.0)
    assert rows["e0"][1:6] == ("c1", local_seconds("2025-03-01T10:00:00"), 1, "complaint", None)


def test_kinds_and_channels_are_read_case_insensitively(tmp_path: Path, store_path: Path) -> None:
    path = write(tmp_path, "e.csv", HEADER + "e1,c1,2025-03-01,Complaint,,Phone,\n")
    assert ingest(store_path, path)["accepted"] == 1
    assert stored(store_path)[0][2:7] == (local_seconds("2025-03-01T00:00:00"), 0, "complaint", None, "phone")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("e1,c1,2025-03-01T10:00:00,compliment,,store,", "unknown kind"),
        ("e1,c1,2025-03-01T10:00:00,,,store,", "missing kind"),
        ("e1,c1,01/03/2025,complaint,,store,", "bad timestamp"),
        ("e1,c1,,complaint,,store,", "missing timestamp"),
        ("e1,c1,2030-01-01T00:00:00,complaint,,store,", "timestamp in the future"),
        ("e1,c1,2025-03-01T10:00:00,review,four,store,", "bad value"),
        ("e1,c1,2025-03-01T10:00:00,review,nan,store,", "bad value"),
        ("e1,,2025-03-01T10:00:00,complaint,,store,", "missing customer"),
        ("e1,c1,2025-03-01T10:00:00,complaint,,store,,extra", "wrong field count"),
        ("e1,c1,2025-03-01T10:00:00,complaint,," + "x" * 40 + ",", "bad channel"),
    ],
)
def test_bad_rows_are_quarantined_with_their_reason(tmp_path: Path, store_path: Path, row: str, reason: str) -> None:
    path = write(tmp_path, "events.csv", HEADER + "e0,c1,2025-03-01T09:00:00,complaint,,store,\n" + row + "\n")
    report = ingest(store_path, path)
    assert (report["accepted"], report["quarantined"], report["reasons"]) == (1, 1, {reason: 1})
    with open_store_db(store_path) as store:
        [entry] = list_quarantine(store)
    assert (entry.source, entry.line, entry.reason) == ("events.csv", 3, reason)


def test_an_unknown_kind_is_never_guessed(tmp_path: Path, store_path: Path) -> None:
    path = write(tmp_path, "e.csv", HEADER + "e1,c1,2025-03-01,complaints,,store,\ne2,c1,2025-03-01,return ,,,\n")
    report = ingest(store_path, path)
    assert report["reasons"] == {"unknown kind": 1}
    assert [row[4] for row in stored(store_path)] == ["return"]
    with open_store_db(store_path) as store:
        assert "'complaints' is not a customer-events kind" in list_quarantine(store)[0].detail


def test_duplicate_ids_within_and_across_files_are_stored_once(tmp_path: Path, store_path: Path) -> None:
    first = write(tmp_path, "a.csv", HEADER + "e1,c1,2025-03-01,complaint,,store,\ne1,c1,2025-03-01,complaint,,store,\n"
                  "e2,c2,2025-03-02,review,5,online,\n")
    second = write(tmp_path, "b.csv", HEADER + "e2,c2,2025-03-02,review,5,online,\ne3,c3,2025-03-03,survey,9,,\n")
    report = ingest(store_path, first, second)
    assert (report["rows"], report["accepted"], report["duplicates"]) == (5, 3, 2)
    assert [row[0] for row in stored(store_path)] == ["e1", "e2", "e3"]


def test_reingesting_adds_nothing_and_quarantines_nothing_new(tmp_path: Path, store_path: Path) -> None:
    path = write(tmp_path, "e.csv", HEADER + "e1,c1,2025-03-01,complaint,,store,\ne2,c1,2025-03-01,nope,,store,\n")
    ingest(store_path, path)
    again = ingest(store_path, path)
    assert (again["accepted"], again["duplicates"], again["quarantined"]) == (0, 1, 1)
    with open_store_db(store_path) as store:
        assert len(list_quarantine(store)) == 1
        assert store.conn.execute("SELECT input, count(*) FROM ingest_runs GROUP BY input").fetchall() == [("events", 2)]


def test_rows_without_an_event_id_get_the_same_id_from_csv_and_json_lines(tmp_path: Path, store_path: Path) -> None:
    csv_file = write(tmp_path, "e.csv", "customer_id,timestamp,kind,value\nc1,2025-03-01T10:00:00,review,4\n"
                     "c1,2025-03-01T10:00:00,review,4\n")
    jsonl = write(tmp_path, "e.jsonl", json.dumps({"customer_id": "c1", "timestamp": "2025-03-01T10:00:00",
                                                   "kind": "review", "value": 4}) + "\n")
    first = ingest(store_path, csv_file)
    assert first["accepted"] == 2, "two identical events in one file are both kept"
    second = ingest(store_path, jsonl, csv_file)
    assert (second["accepted"], second["duplicates"]) == (0, 3)


def test_json_lines_gzip_and_gzip_csv(tmp_path: Path, store_path: Path) -> None:
    rows = [{"event_id": "j1", "customer_id": "c1", "timestamp": "2025-03-01T10:00:00", "kind": "survey", "value": 8},
            {"event_id": "j2", "customer_id": "c1", "timestamp": "2025-03-01T10:00:00", "kind": "review", "value": True},
            {"event_id": "j3", "customer_id": "c1", "timestamp": "2025-03-01T10:00:00", "kind": ["survey"]}]
    jsonl = write(tmp_path, "e.jsonl.gz", gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    plain = write(tmp_path, "e.csv.gz", gzip.compress((HEADER + "c1e,c1,2025-03-01,return,12.5,store,\n").encode()))
    report = ingest(store_path, jsonl, plain)
    assert (report["accepted"], report["reasons"]) == (2, {"bad value": 2})
    assert [(row[0], row[5]) for row in stored(store_path)] == [("c1e", 12.5), ("j1", 8.0)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "file is empty"),
        ("customer_id,timestamp,value\nc1,2025-03-01,1\n", "not a customer-events CSV: header lacks kind"),
        ("timestamp,kind,value\n2025-03-01,complaint,1\n",
         "header lacks customer_id or phone or email"),
        ("customer_id,timestamp,amount,kind\nc1,2025-03-01,1,sale\n", "its columns are those of a POS export"),
    ],
)
def test_a_file_that_is_no_events_export_is_refused_whole(tmp_path: Path, store_path: Path, content: str,
                                                        message: str) -> None:
    good = write(tmp_path, "good.csv", HEADER + "e1,c1,2025-03-01,complaint,,store,\n")
    path = write(tmp_path, "events.csv", content)
    with pytest.raises(IngestError, match=message):
        ingest(store_path, good, path)
    with open_store_db(store_path) as store:
        assert store.conn.execute("SELECT count(*) FROM ingest_runs").fetchone() == (0,), "every file is checked first"


def test_notes_are_kept_only_as_a_category(tmp_path: Path, store_path: Path) -> None:
    path = write(tmp_path, "e.csv", HEADER +
                 'e1,c1,2025-03-01,complaint,,store,"Mrs Dupont, rude staff at till 3, call her back on 0612345678"\n'
                 "e2,c1,2025-03-01,service_contact,,store,late delivery again\n"
                 "e3,c1,2025-03-01,service_contact,,store,Jean-Pierre\n"
                 'e4,c1,2025-03-01,nonsense,,store,"Mrs Dupont, please call 0612345678"\n')
    ingest(store_path, path)
    assert [row[7] for row in stored(store_path)] == ["staff", "delivery", "other"]
    content = b"".join(p.read_bytes() for p in store_path.parent.glob(store_path.name + "*"))
    for secret in (b"Dupont", b"0612345678", b"Jean-Pierre"):
        assert secret not in content, "a note's text reached the database, quarantine included"
    with open_store_db(store_path) as store:
        [entry] = list_quarantine(store)
    assert entry.raw == "e4,c1,2025-03-01,nonsense,,store,other"


def test_a_quarantined_row_exported_fixed_and_reingested(tmp_path: Path, store_path: Path) -> None:
    path = write(tmp_path, "desk.csv", "event_id,phone,timestamp,kind,note\n"
                 "e1,+33 6 12 34 56 78,2025-03-01,complain,queue too long\n")
    assert ingest(store_path, path)["reasons"] == {"unknown kind": 1}
    fixed = tmp_path / "fixed.csv"
    with open_store_db(store_path) as store:
        assert export_quarantine(store, "desk.csv", fixed) == 1
    text = fixed.read_text()
    assert "12 34 56 78" not in text and "too long" not in text
    fixed.write_text(text.replace("complain", "complaint"))
    assert ingest(store_path, fixed)["accepted"] == 1
    direct = write(tmp_path, "again.csv", "phone,timestamp,kind\n0033612345678,2025-03-02,complaint\n")
    ingest(store_path, direct)
    refs = {row[1] for row in stored(store_path)}
    assert len(refs) == 1 and refs.pop().startswith("phone:"), "the exported hash is the phone's own hash"


def test_a_quarantined_row_keeps_no_column_outside_the_contract(tmp_path: Path, store_path: Path) -> None:
    path = write(tmp_path, "e.csv", "customer_id,customer_name,timestamp,kind\nc1,Jane Dupont,2025-03-01,praise\n")
    jsonl = write(tmp_path, "e.jsonl", json.dumps({"customer_id": "c2", "Name": "Jean Martin", "timestamp": "x",
                                                   "kind": "review", "Phone": "+33 6 12 34 56 78"}) + "\n")
    ingest(store_path, path, jsonl)
    with open_store_db(store_path) as store:
        kept = [e.raw for e in list_quarantine(store)]
    assert kept[0] == "c1,,2025-03-01,praise"
    assert json.loads(kept[1]) == {"customer_id": "c2", "timestamp": "x", "kind": "review"}


def test_an_unsplittable_line_of_a_file_with_private_columns_is_not_kept(tmp_path: Path, store_path: Path) -> None:
    path = write(tmp_path, "e.csv", "customer_id,timestamp,kind,email\n"
                 "c1,2025-03-01,complaint,jane@mail.example,oops\n".encode() + b"c2,2025-03-01,\xe9,x@y.example\n")
    report = ingest(store_path, path)
    assert report["reasons"] == {"not UTF-8": 1, "wrong field count": 1}
    with open_store_db(store_path) as store:
        entries = list_quarantine(store)
    assert [e.raw for e in entries] == ["", ""]
    assert all("the row is not kept" in e.detail for e in entries)
    with open_store_db(store_path) as store:
        assert export_quarantine(store, "e.csv", tmp_path / "fix.csv") == 0
    assert (tmp_path / "fix.csv").read_text() == "customer_id,timestamp,kind,email\n", "no blank rows to fix"
