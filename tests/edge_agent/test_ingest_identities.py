"""One customer across channels: identity links, their conflicts, the box's key, and what the model sees."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from edge_agent.ingest import EVENTS, IDENTITIES, POS, IdentityKeyError, ingest_files
from edge_agent.ingest.identity_key import load_identity_key, normalise_email, normalise_phone
from edge_agent.quarantine import list_quarantine
from edge_agent.store_db import open_store_db
from models.events import EVENT_KINDS, recent_events
from models.store_data import load_store_data

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
IDS = "customer_id,online_account,phone,email\n"
EVENTS_HEADER = "event_id,customer_id,phone,email,timestamp,kind,value\n"
SALES = "transaction_id,customer_id,timestamp,amount\n"


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content)
    return path


def ingest(store_path: Path, contract: object, *files: Path, **options: object) -> dict:
    with open_store_db(store_path) as store:
        report = ingest_files(store, files, contract=contract, now_utc=NOW, **options).as_dict()  # type: ignore[arg-type]
    assert report["accepted"] + report["duplicates"] + report["quarantined"] == report["rows"]
    return report


def aliases(store_path: Path) -> dict[str, str]:
    with open_store_db(store_path) as store:
        return dict(store.conn.execute("SELECT alias, customer_id FROM customer_aliases"))


def test_phones_and_emails_are_normalised_before_hashing(tmp_path: Path, store_path: Path) -> None:
    assert normalise_phone("+33 6 12.34-56 78") == normalise_phone("0033612345678") == "+33612345678"
    assert normalise_phone("12") is None and normalise_phone("+33 six") is None
    assert normalise_email("  Jane.Doe@Mail.Example ") == "jane.doe@mail.example"
    assert normalise_email("jane@localhost") is None and normalise_email("jane doe@mail.example") is None
    path = write(tmp_path, "ids.csv", IDS + "C1,,+33 6 12 34 56 78,Jane.Doe@Mail.Example\n"
                                            "C1,,0033612345678,jane.doe@mail.example\n")
    report = ingest(store_path, IDENTITIES, path)
    assert (report["accepted"], report["duplicates"]) == (1, 1), "the same phone and e-mail written differently"
    stored = aliases(store_path)
    assert sorted(a.split(":")[0] for a in stored) == ["email", "phone"] and set(stored.values()) == {"C1"}


def test_no_raw_phone_or_email_anywhere_in_the_database_file(tmp_path: Path, store_path: Path) -> None:
    phones = ["+33 6 12 34 56 78", "+33 7 98 76 54 32", "06 11 22 33 44"]
    emails = ["jane.doe@mail.example", "john@shop.example", "bad@"]
    ids = write(tmp_path, "ids.csv", IDS + f"C1,W1,{phones[0]},{emails[0]}\nC2,,{phones[1]},{emails[1]}\n"
                                           f"C3,W1,{phones[2]},\nC4,,{phones[0]},\nC5,,,{emails[2]}\n")
    events = write(tmp_path, "ev.csv", EVENTS_HEADER + f"e1,,{phones[1]},,2025-03-01,complaint,\n"
                                                       f"e2,,,{emails[0].upper()},2025-03-01,survey,3\n"
                                                       f"e3,,{phones[2]},,2025-03-01,nonsense,\n"
                                                       f"e4,,12,,2025-03-01,complaint,\n")
    ids_report = ingest(store_path, IDENTITIES, ids)
    assert ids_report["reasons"] == {"alias conflict": 2, "bad email": 1}
    events_report = ingest(store_path, EVENTS, events)
    assert events_report["reasons"] == {"unknown kind": 1, "bad phone": 1}
    with open_store_db(store_path) as store:
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        quarantined = list_quarantine(store)
    assert not any(e.detail.count("@") or "56 78" in e.detail for e in quarantined), "a reason quoted a contact"
    content = b"".join(p.read_bytes() for p in tmp_path.glob(store_path.name + "*") if "identity-key" not in p.name)
    for value in phones + emails:
        for form in {value, value.replace(" ", ""), normalise_phone(value) or "", value.upper(), value.lower()} - {""}:
            assert form.encode() not in content, f"{form} is stored as it is"


def test_an_alias_claimed_by_two_customers_is_quarantined_not_merged(tmp_path: Path, store_path: Path) -> None:
    first = write(tmp_path, "crm-1.csv", IDS + "C1,W1,,\nC2,W1,,\nC3,W3,,\n")
    second = write(tmp_path, "crm-2.csv", IDS + "C4,W3,,\nC3,W3,,\n")
    report = ingest(store_path, IDENTITIES, first, second)
    assert (report["accepted"], report["duplicates"], report["reasons"]) == (2, 1, {"alias conflict": 2})
    assert aliases(store_path) == {"W1": "C1", "W3": "C3"}
    with open_store_db(store_path) as store:
        found = [(e.source, e.line, e.detail) for e in list_quarantine(store)]
    assert found == [("crm-1.csv", 3, "online_account 'W1' is linked to customer 'C1'"),
                     ("crm-2.csv", 2, "online_account 'W3' is linked to customer 'C3'")]


def test_links_never_chain(tmp_path: Path, store_path: Path) -> None:
    path = write(tmp_path, "ids.csv", IDS + "C1,W1,,\nW1,W9,,\nC2,C1,,\nC3,C3,,\n")
    report = ingest(store_path, IDENTITIES, path)
    assert report["reasons"] == {"alias conflict": 2, "no alias": 1}
    assert aliases(store_path) == {"W1": "C1"}


@pytest.mark.parametrize(("row", "reason"), [(",W1,,", "missing customer_id"), ("C1,,,", "no alias"),
                                             ("C1,,not a phone,", "bad phone"), ("C1,,,jane", "bad email")])
def test_bad_identity_rows_are_quarantined(tmp_path: Path, store_path: Path, row: str, reason: str) -> None:
    report = ingest(store_path, IDENTITIES, write(tmp_path, "ids.csv", IDS + row + "\nC9,W9,,\n"))
    assert (report["accepted"], report["reasons"]) == (1, {reason: 1})


def test_an_identity_file_needs_a_link_column(tmp_path: Path, store_path: Path) -> None:
    from edge_agent.ingest import IngestError

    with pytest.raises(IngestError, match="header lacks online_account or phone or email"):
        ingest(store_path, IDENTITIES, write(tmp_path, "ids.csv", "customer_id,name\nC1,Jane\n"))


def test_sales_and_events_under_any_alias_land_on_the_loyalty_customer_whatever_the_order(
        tmp_path: Path) -> None:
    sales = write(tmp_path, "pos.csv", SALES + "t1,C1,2025-03-01T10:00:00,20.00\nt2,W1,2025-03-05T10:00:00,30.00\n"
                                               "t3,C2,2025-03-06T10:00:00,5.00\n")
    events = write(tmp_path, "ev.csv", EVENTS_HEADER + "e1,W1,,,2025-03-02T10:00:00,online_visit,\n"
                                                       "e2,,+33 6 12 34 56 78,,2025-03-03T10:00:00,complaint,\n"
                                                       "e3,,,Jane@Mail.Example,2025-03-04T10:00:00,survey,4\n"
                                                       "e4,C2,,,2025-03-04T11:00:00,review,5\n")
    ids = write(tmp_path, "ids.csv", IDS + "C1,W1,+33612345678,jane@mail.example\n")
    loaded = []
    for order in ((sales, events, ids), (ids, events, sales), (events, ids, sales)):
        db = tmp_path / f"{order[0].stem}-first.db"
        key = load_identity_key(tmp_path / "shared.key")  # one box's key across the three databases
        for path in order:
            contract = {"pos": POS, "ev": EVENTS, "ids": IDENTITIES}[path.stem]
            ingest(db, contract, path, key=key)
        loaded.append(load_store_data(db))
    for data in loaded:
        assert sorted(data.customer_ids) == ["C1", "C2"]
        c1 = list(data.customer_ids).index("C1")
        assert sorted(data.amount[data.customer == c1]) == [20.0, 30.0]
        assert [EVENT_KINDS[k] for k in data.events.kind[data.events.customer == c1]] == [
            "online_visit", "complaint", "survey"]
        assert np.array_equal(data.events.ts, np.sort(data.events.ts))
        day = int(data.events.ts.max() // 86400) + 1
        assert [e["kind"] for e in recent_events(data, day, c1)] == ["survey", "complaint", "online_visit"]
        assert recent_events(data, day, c1)[0]["value"] == 4.0
        assert np.isnan(data.events.value[data.events.kind == EVENT_KINDS.index("complaint")]).all()


def test_the_key_is_made_once_for_this_user_only_and_a_readable_one_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "box" / "store.db"
    path = write(tmp_path, "ids.csv", IDS + "C1,,+33612345678,\n")
    ingest(db, IDENTITIES, path)
    key_file = db.with_name("store.db.identity-key")
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    first = key_file.read_text()
    ingest(db, IDENTITIES, path)
    assert key_file.read_text() == first and aliases(db) and len(aliases(db)) == 1, "the same key, the same hash"
    os.chmod(key_file, 0o644)
    with pytest.raises(IdentityKeyError, match="open to other users .* chmod 600"):
        ingest(db, IDENTITIES, path)
    os.chmod(key_file, 0o600)
    key_file.write_text("not a key\n")
    with pytest.raises(IdentityKeyError, match="does not hold 64 hex digits"):
        ingest(db, IDENTITIES, path)


def test_pos_ingest_makes_no_key_and_another_key_file_can_be_named(tmp_path: Path, store_path: Path) -> None:
    ingest(store_path, POS, write(tmp_path, "pos.csv", SALES + "t1,C1,2025-03-01,1.00\n"))
    assert not list(tmp_path.glob("*identity-key"))
    elsewhere = tmp_path / "keys" / "box.key"
    elsewhere.parent.mkdir()
    ingest(store_path, IDENTITIES, write(tmp_path, "ids.csv", IDS + "C1,,,a@b.example\n"), key_file=elsewhere)
    assert elsewhere.exists() and not list(tmp_path.glob("*identity-key"))


def test_identities_as_json_lines(tmp_path: Path, store_path: Path) -> None:
    rows = [{"customer_id": "C1", "online_account": "W1"}, {"customer_id": "C2", "email": "x@y.example"},
            {"customer_id": "C3", "online_account": "W1", "phone": "+33612345678"}]
    path = write(tmp_path, "ids.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    report = ingest(store_path, IDENTITIES, path)
    assert (report["accepted"], report["reasons"]) == (2, {"alias conflict": 1})
    with open_store_db(store_path) as store:
        [entry] = list_quarantine(store)
    kept = json.loads(entry.raw)
    assert kept["online_account"] == "W1" and kept["phone"].startswith("phone:"), "the phone kept only as its hash"
