"""The POS input contract: every row ends up accepted, duplicate or quarantined, never lost."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from edge_agent.ingest import IngestError, ingest_files
from edge_agent.ingest import loader as loader_module
from edge_agent.quarantine import list_quarantine
from edge_agent.store_db import open_store_db

HEADER = "customer_id,timestamp,amount,transaction_id,items,channel\n"
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def ingest(store_path: Path, *files: Path, **kwargs: object) -> dict:
    with open_store_db(store_path, **kwargs) as store:  # type: ignore[arg-type]
        report = ingest_files(store, files, now_utc=NOW).as_dict()
    assert report["accepted"] + report["duplicates"] + report["quarantined"] == report["rows"]
    return report


def stored(store_path: Path) -> list[tuple]:
    with open_store_db(store_path) as store:
        return store.conn.execute(
            "SELECT c.customer_id, t.ts, t.has_time, t.amount, t.items, t.channel"
            " FROM transactions t LEFT JOIN customers c USING (customer_key) ORDER BY t.transaction_id"
        ).fetchall()


def local_seconds(text: str) -> int:
    return int((datetime.fromisoformat(text) - datetime(1970, 1, 1)).total_seconds())


def test_clean_csv_is_accepted(tmp_path: Path, store_path: Path) -> None:
    path = write(tmp_path, "pos.csv", HEADER + "c1,2025-03-01T10:15:00,12.50,t1,3,store\n"
                 "c2,2025-03-02T18:00:00,7.25,t2,1,online\n")
    report = ingest(store_path, path)
    assert (report["rows"], report["accepted"], report["quarantined"]) == (2, 2, 0)
    assert stored(store_path) == [
        ("c1", local_seconds("2025-03-01T10:15:00"), 1, 12.5, 3, "store"),
        ("c2", local_seconds("2025-03-02T18:00:00"), 1, 7.25, 1, "online"),
    ]


def test_bom_crlf_quoted_commas_extra_and_missing_columns(tmp_path: Path, store_path: Path) -> None:
    content = (
        "\ufeffCustomer_ID,Timestamp,Amount,note\r\n"
        'c1,2025-03-01 10:15:00,12.50,"big, happy basket"\r\n'
        '"c,2",2025-03-01,3.00,\r\n'
    )
    report = ingest(store_path, write(tmp_path, "till.csv", content))
    assert report["accepted"] == 2
    rows = sorted(stored(store_path), key=lambda r: r[1])
    assert [r[0] for r in rows] == ["c,2", "c1"]  # midnight of a date-only sale comes first
    assert (rows[0][2], rows[1][2]) == (0, 1)  # date-only: no time of day
    assert rows[1][4] is None and rows[1][5] is None  # items and channel absent


def test_anonymous_sales_and_refunds_are_kept(tmp_path: Path, store_path: Path) -> None:
    path = write(tmp_path, "pos.csv", HEADER + ",2025-03-01T10:00:00,4.20,t1,,\n"
                 "c1,2025-03-02T10:00:00,-19.99,t2,1,store\n")
    assert ingest(store_path, path)["accepted"] == 2
    rows = stored(store_path)
    assert rows[0][0] is None  # anonymous: no customer
    assert rows[1][3] == -19.99


def test_time_zones_are_converted_to_store_local_time(tmp_path: Path, store_path: Path) -> None:
    path = write(tmp_path, "pos.csv", HEADER + "c1,2025-03-01T09:00:00Z,1,t1,,\n"
                 "c1,2025-07-01T09:00:00+00:00,1,t2,,\n"
                 "c1,2025-07-01T09:00:00,1,t3,,\n")
    ingest(store_path, path, timezone="Europe/Paris")
    assert [r[1] for r in stored(store_path)] == [
        local_seconds("2025-03-01T10:00:00"),  # winter: UTC+1
        local_seconds("2025-07-01T11:00:00"),  # summer: UTC+2
        local_seconds("2025-07-01T09:00:00"),  # naive = already store-local
    ]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("c1,01/03/2025,1.00,t1,,", "bad timestamp"),
        ("c1,2025-02-30,1.00,t1,,", "bad timestamp"),
        ("c1,,1.00,t1,,", "missing timestamp"),
        ("c1,1969-12-31,1.00,t1,,", "bad timestamp"),
        ("c1,2031-01-01,1.00,t1,,", "timestamp in the future"),
        ("c1,2025-03-01,twelve,t1,,", "bad amount"),
        ('c1,2025-03-01,"12,50",t1,,', "bad amount"),
        ("c1,2025-03-01,NaN,t1,,", "bad amount"),
        ("c1,2025-03-01,,t1,,", "missing amount"),
        ("c1,2025-03-01,1.00,t1,two,", "bad items"),
        ("c1,2025-03-01,1.00,t1,1.5,", "bad items"),
        ("c1,2025-03-01,1.00", "wrong field count"),
        ("c1,2025-03-01,1.00,t1,,,surplus", "wrong field count"),
    ],
)
def test_bad_rows_are_quarantined_not_fatal(tmp_path: Path, store_path: Path, row: str, reason: str) -> None:
    path = write(tmp_path, "pos.csv", HEADER + "ok,2025-03-01,5.00,t0,,\n" + row + "\nok2,2025-03-02,6.00,t9,,\n")
    report = ingest(store_path, path)
    assert (report["rows"], report["accepted"], report["quarantined"]) == (3, 2, 1)
    assert report["reasons"] == {reason: 1}
    with open_store_db(store_path) as store:
        [entry] = list_quarantine(store)
    assert (entry.source, entry.line, entry.reason) == ("pos.csv", 3, reason)
    assert entry.raw == row


def test_row_for_another_store_is_quarantined(tmp_path: Path, store_path: Path) -> None:
    path = write(tmp_path, "pos.csv", "customer_id,timestamp,amount,store_id\n"
                 "c1,2025-03-01,1,store-01\nc1,2025-03-01,2,store-99\n")
    report = ingest(store_path, path)
    assert report["reasons"] == {"other store": 1}


def test_bytes_that_are_not_utf8_quarantine_only_their_row(tmp_path: Path, store_path: Path) -> None:
    content = HEADER.encode() + b"c1,2025-03-01,1.00,t1,,\nc\xe9\xff,2025-03-01,2.00,t2,,\nc3,2025-03-01,3.00,t3,,\n"
    report = ingest(store_path, write(tmp_path, "latin.csv", content))
    assert (report["accepted"], report["reasons"]) == (2, {"not UTF-8": 1})
    with open_store_db(store_path) as store:
        raw = store.conn.execute("SELECT raw FROM quarantine").fetchone()[0]
    assert raw == b"c\xe9\xff,2025-03-01,2.00,t2,,"  # the bytes as they came, for the operator


def test_truncated_last_line_is_quarantined(tmp_path: Path, store_path: Path) -> None:
    path = write(tmp_path, "cut.csv", HEADER + 'c1,2025-03-01,1.00,t1,,\nc2,"2025-03-0')
    report = ingest(store_path, path)
    assert (report["rows"], report["accepted"], report["quarantined"]) == (2, 1, 1)
    assert report["reasons"] == {"malformed CSV": 1}


def test_truncated_last_line_without_quotes(tmp_path: Path, store_path: Path) -> None:
    path = write(tmp_path, "cut.csv", HEADER + "c1,2025-03-01,1.00,t1,,\nc2,2025-03-0")
    report = ingest(store_path, path)
    assert (report["accepted"], report["quarantined"]) == (1, 1)


def test_missing_file_is_an_error_and_writes_nothing(tmp_path: Path, store_path: Path) -> None:
    with open_store_db(store_path) as store, pytest.raises(IngestError, match="no such file"):
        ingest_files(store, [tmp_path / "nope.csv"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary content"),
        (b"name,age\nbob,4\n", "header lacks customer_id, timestamp, amount"),
        (b"", "empty"),
        (b'[{"customer_id": "c1"}]', "JSON array"),
    ],
)
def test_not_a_pos_file_is_an_error_and_nothing_is_written(
    tmp_path: Path, store_path: Path, content: bytes, message: str
) -> None:
    good = write(tmp_path, "good.csv", HEADER + "c1,2025-03-01,1,t1,,\n")
    bad = write(tmp_path, "bad.csv", content)
    with open_store_db(store_path) as store:
        with pytest.raises(IngestError, match=message):
            ingest_files(store, [good, bad])  # the good file is not ingested either
        assert store.conn.execute("SELECT count(*) FROM transactions").fetchone()[0] == 0
        assert store.conn.execute("SELECT count(*) FROM ingest_runs").fetchone()[0] == 0


def test_json_lines_have_the_same_contract(tmp_path: Path, store_path: Path) -> None:
    lines = [
        {"customer_id": "c1", "timestamp": "2025-03-01T10:00:00", "amount": 12.5, "items": 2},
        {"customer_id": None, "timestamp": "2025-03-01", "amount": "3.10"},
        {"customer_id": "c2", "timestamp": "yesterday", "amount": 1},
        {"timestamp": "2025-03-01", "amount": 1},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n[1, 2]\n{broken\n"
    report = ingest(store_path, write(tmp_path, "pos.jsonl", text))
    assert (report["rows"], report["accepted"], report["quarantined"]) == (6, 2, 4)
    assert report["reasons"] == {"bad timestamp": 1, "missing customer_id": 1, "not a JSON object": 2}


def test_gzip_csv_and_jsonl(tmp_path: Path, store_path: Path) -> None:
    csv_gz = write(tmp_path, "a.csv.gz", gzip.compress((HEADER + "c1,2025-03-01,1,t1,,\n").encode()))
    jsonl_gz = write(tmp_path, "b.jsonl.gz", gzip.compress(
        b'{"customer_id": "c2", "timestamp": "2025-03-02", "amount": 2, "transaction_id": "t2"}\n'))
    assert ingest(store_path, csv_gz, jsonl_gz)["accepted"] == 2


def test_truncated_gzip_keeps_what_was_readable(tmp_path: Path, store_path: Path) -> None:
    body = HEADER + "".join(f"c{i},2025-03-01,1,t{i},,\n" for i in range(5000))
    data = gzip.compress(body.encode())
    path = write(tmp_path, "cut.csv.gz", data[: len(data) // 2])
    report = ingest(store_path, path)
    assert 0 < report["accepted"] < 5000
    assert report["reasons"] == {"unreadable data": 1}


def test_reingesting_the_same_file_adds_nothing(tmp_path: Path, store_path: Path) -> None:
    path = write(tmp_path, "pos.csv", HEADER + "c1,2025-03-01,1,t1,,\nbad,xx,1,t2,,\n")
    first = ingest(store_path, path)
    second = ingest(store_path, path)
    assert (first["accepted"], second["accepted"], second["duplicates"]) == (1, 0, 1)
    with open_store_db(store_path) as store:
        assert store.conn.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 1


def test_derived_ids_are_stable_across_formats_and_keep_identical_sales(tmp_path: Path, store_path: Path) -> None:
    """Without transaction ids, the same sale gets the same id; two identical sales stay two."""
    csv_file = write(tmp_path, "day.csv", "customer_id,timestamp,amount\nc1,2025-03-01,4.50\nc1,2025-03-01,4.50\n")
    jsonl_file = write(tmp_path, "day.jsonl",
                       '{"customer_id": "c1", "timestamp": "2025-03-01", "amount": 4.5}\n' * 2)
    assert ingest(store_path, csv_file)["accepted"] == 2
    again = ingest(store_path, jsonl_file)
    assert (again["accepted"], again["duplicates"]) == (0, 2)


def test_a_crash_mid_batch_leaves_whole_batches_and_reingest_completes(
    tmp_path: Path, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fourth batch dies inside its database transaction, after its rows were inserted."""
    lines = [f"c{i % 50},2025-03-01,1,t{i},,\n" for i in range(1000)]
    lines[350] = "c1,not-a-date,1,t350,,\n"
    path = write(tmp_path, "big.csv", HEADER + "".join(lines))

    def power_cut(*args: object) -> str:
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(loader_module, "_fingerprint", power_cut)
    with open_store_db(store_path) as store, pytest.raises(KeyboardInterrupt):
        ingest_files(store, [path], batch_size=100)
    monkeypatch.undo()
    assert len(stored(store_path)) == 300  # three whole batches, nothing of the fourth
    report = ingest(store_path, path)
    assert (report["accepted"], report["duplicates"], report["quarantined"]) == (699, 300, 1)
