"""Properties of the events and identities ingest over arbitrary files: counts reconcile, a second pass adds nothing."""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.ingest import EVENTS, IDENTITIES, ingest_files
from edge_agent.ingest.identity_key import IdentityKey
from edge_agent.store_db import open_store_db
from models.events import EVENT_KINDS

NOW = datetime(2026, 1, 15, tzinfo=timezone.utc)
KEY = IdentityKey(bytes(range(32)))

customers = st.one_of(st.just(""), st.sampled_from(["C1", "C2", "W1", "W2", 'c"5', "c,6"]), st.text(max_size=5))
phones = st.one_of(st.just(""), st.sampled_from(["+33 6 12 34 56 78", "0033612345678", "12", "abc"]))
emails = st.one_of(st.just(""), st.sampled_from(["a@b.example", "A@B.example", "nope", "x@y"]))
timestamps = st.one_of(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2025, 12, 31)).map(
        lambda d: d.replace(microsecond=0).isoformat()),
    st.sampled_from(["", "2025-13-01", "2030-01-01", "2025-06-01T10:00:00+02:00"]),
)
kinds = st.one_of(st.sampled_from(EVENT_KINDS), st.sampled_from(["", "Complaint", "praise"]), st.text(max_size=6))
values = st.one_of(st.just(""), st.integers(-5, 12).map(str), st.sampled_from(["nan", "four", "4.5"]))
event_ids = st.one_of(st.just(""), st.sampled_from([f"e{i}" for i in range(8)]))
notes = st.one_of(st.just(""), st.text(max_size=20))
event_rows = st.lists(st.tuples(event_ids, customers, phones, emails, timestamps, kinds, values, notes), max_size=30)
identity_rows = st.lists(st.tuples(customers, st.sampled_from(["", "W1", "W2", "C1"]), phones, emails), max_size=20)
garbage = st.lists(st.binary(max_size=30), max_size=3)


def render(header: list[str], rows: list[tuple[str, ...]], junk: list[bytes]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode() + b"".join(g.replace(b"\n", b" ") + b"\n" for g in junk)


def check_twice(folder: Path, path: Path, contract: object, batch_size: int, table: str) -> None:
    with open_store_db(folder / "s.db") as store:
        first = ingest_files(store, [path], contract=contract, key=KEY, batch_size=batch_size, now_utc=NOW).totals  # type: ignore[arg-type]
        assert first.accepted + first.duplicates + first.quarantined == first.rows
        assert first.quarantined == sum(first.reasons.values())
        snapshot = store.conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        second = ingest_files(store, [path], contract=contract, key=KEY, batch_size=batch_size + 2, now_utc=NOW).totals  # type: ignore[arg-type]
        assert (second.rows, second.accepted, second.quarantined) == (first.rows, 0, first.quarantined)
        assert second.duplicates == first.accepted + first.duplicates
        assert store.conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() == snapshot


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_rows, garbage, st.integers(min_value=1, max_value=7))
def test_event_counts_reconcile_and_a_second_ingest_changes_nothing(
        rows: list[tuple[str, ...]], junk: list[bytes], batch_size: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.csv"
        path.write_bytes(render(["event_id", "customer_id", "phone", "email", "timestamp", "kind", "value", "note"],
                                rows, junk))
        check_twice(Path(folder), path, EVENTS, batch_size, "customer_events")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(identity_rows, garbage, st.integers(min_value=1, max_value=7))
def test_identity_counts_reconcile_and_no_alias_has_two_customers(
        rows: list[tuple[str, ...]], junk: list[bytes], batch_size: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ids.csv"
        path.write_bytes(render(["customer_id", "online_account", "phone", "email"], rows, junk))
        check_twice(Path(folder), path, IDENTITIES, batch_size, "customer_aliases")
        with open_store_db(Path(folder) / "s.db") as store:
            links = dict(store.conn.execute("SELECT alias, customer_id FROM customer_aliases"))
        assert not set(links) & set(links.values()), "an alias is never itself a customer with links"
