"""Properties of ingest over arbitrary exports: counts reconcile, and a second pass adds nothing."""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.ingest import ingest_files
from edge_agent.store_db import open_store_db

NOW = datetime(2026, 1, 15, tzinfo=timezone.utc)

customer_ids = st.one_of(st.just(""), st.sampled_from(["c1", "c2", "c3", "c,4", 'c"5']), st.text(max_size=6))
timestamps = st.one_of(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2025, 12, 31)).map(
        lambda d: d.replace(microsecond=0).isoformat()
    ),
    st.dates(min_value=datetime(2020, 1, 1).date(), max_value=datetime(2025, 12, 31).date()).map(str),
    st.sampled_from(["", "2025-13-01", "31/12/2025", "2030-01-01T00:00:00", "2025-06-01T10:00:00+02:00"]),
    st.text(max_size=12),
)
amounts = st.one_of(
    st.decimals(min_value=-500, max_value=5000, places=2).map(str),
    st.sampled_from(["", "abc", "1,50", "nan", "inf", "-0.00"]),
)
transaction_ids = st.one_of(st.just(""), st.sampled_from([f"t{i}" for i in range(15)]))
rows = st.lists(st.tuples(customer_ids, timestamps, amounts, transaction_ids), max_size=40)
garbage_lines = st.lists(st.binary(max_size=30), max_size=4)


def render(data: list[tuple[str, str, str, str]], garbage: list[bytes]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["customer_id", "timestamp", "amount", "transaction_id"])
    writer.writerows(data)
    return buffer.getvalue().encode() + b"".join(g.replace(b"\n", b" ") + b"\n" for g in garbage)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows, garbage_lines, st.integers(min_value=1, max_value=7))
def test_counts_reconcile_and_second_ingest_changes_nothing(
    data: list[tuple[str, str, str, str]], garbage: list[bytes], batch_size: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.csv"
        path.write_bytes(render(data, garbage))
        with open_store_db(Path(folder) / "s.db") as store:
            first = ingest_files(store, [path], batch_size=batch_size, now_utc=NOW).totals
            assert first.accepted + first.duplicates + first.quarantined == first.rows
            assert first.quarantined == sum(first.reasons.values())
            snapshot = store.conn.execute("SELECT * FROM transactions ORDER BY transaction_id").fetchall()
            quarantined = store.conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]

            second = ingest_files(store, [path], batch_size=batch_size + 3, now_utc=NOW).totals
            assert second.rows == first.rows
            assert second.accepted == 0
            assert second.duplicates == first.accepted + first.duplicates
            assert second.quarantined == first.quarantined
            assert store.conn.execute("SELECT * FROM transactions ORDER BY transaction_id").fetchall() == snapshot
            assert store.conn.execute("SELECT count(*) FROM quarantine").fetchone()[0] == quarantined
