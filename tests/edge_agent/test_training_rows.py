"""The store's training rows, kept on disk between the ClientApp's processes: reused only for the same
history before as-of, rebuilt when that changes or the file is damaged."""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.ingest import ingest_files
from edge_agent.store_db import open_store_db
from edge_agent.training_rows import CACHE_ENTRIES
from server.federation.settings import FederationSettings
from tests.conftest import CHAIN_AS_OF

ROOT = Path(__file__).resolve().parents[2]
AS_OF_DAY = FederationSettings(as_of=CHAIN_AS_OF, state_dir="/tmp/unused").as_of_day
# What a fresh ClientApp process does: read the rows, and say where they came from and what they are.
PROBE = """
import hashlib, json, sys
from pathlib import Path
from edge_agent.training_rows import store_rows
rows, cached = store_rows(Path(sys.argv[1]), int(sys.argv[2]), 0, Path(sys.argv[3]))
digest = hashlib.sha256(rows.values.tobytes() + rows.event_days.tobytes() + rows.customer.tobytes()).hexdigest()
print(json.dumps({"cached": cached, "rows": len(rows), "digest": digest, "store": str(rows.store[0])}))
"""


def fresh_process(db: Path, cache: Path, as_of_day: int = AS_OF_DAY) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-c", PROBE, str(db), str(as_of_day), str(cache)],
                            capture_output=True, text=True, check=True, cwd=ROOT, timeout=120)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def store_db(chain_dbs: list[Path], tmp_path: Path) -> Path:
    copy = tmp_path / "store-01.db"
    shutil.copy(chain_dbs[0], copy)
    return copy


def sale(db: Path, folder: Path, when: str) -> None:
    """One more sale of an existing customer, ingested as the box would."""
    with sqlite3.connect(db) as conn:
        (customer,) = conn.execute("SELECT customer_id FROM customers ORDER BY customer_key LIMIT 1").fetchone()
    csv = folder / f"sale-{when}.csv"
    csv.write_text(f"customer_id,timestamp,amount\n{customer},{when}T10:00:00,12.50\n")
    with open_store_db(db, chain="demo") as store:
        report = ingest_files(store, [csv])
    assert report.totals.accepted == 1


def test_a_second_process_reuses_the_rows_and_gets_the_same_ones(store_db: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = fresh_process(store_db, cache)
    second = fresh_process(store_db, cache)
    assert (first["cached"], second["cached"]) == (False, True)
    assert {k: v for k, v in first.items() if k != "cached"} == {k: v for k, v in second.items() if k != "cached"}
    assert first["store"] == "store-01" and int(first["rows"]) > 1000  # type: ignore[call-overload]
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert [stat.S_IMODE(p.stat().st_mode) for p in cache.iterdir()] == [0o600], "customers' features: the node's only"


def test_sales_after_as_of_keep_the_rows_and_a_late_older_sale_rebuilds_them(store_db: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    before = fresh_process(store_db, cache)
    sale(store_db, tmp_path, "2025-11-03")  # today's sales arrive while the federation (as of September) runs
    after_today = fresh_process(store_db, cache)
    assert after_today["cached"] is True and after_today["digest"] == before["digest"]
    sale(store_db, tmp_path, "2025-09-12")  # a late file with a sale before as-of: the history the rows come from
    after_late = fresh_process(store_db, cache)
    assert after_late["cached"] is False and after_late["digest"] != before["digest"]
    assert fresh_process(store_db, cache)["cached"] is True


def test_a_damaged_cache_file_is_rebuilt_and_old_entries_are_pruned(store_db: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    good = fresh_process(store_db, cache)
    (entry,) = cache.iterdir()
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])  # a disk that filled up mid-write
    rebuilt = fresh_process(store_db, cache)
    assert rebuilt["cached"] is False and rebuilt["digest"] == good["digest"]
    for shift in range(1, CACHE_ENTRIES + 2):  # federations at other as-of days
        fresh_process(store_db, cache, AS_OF_DAY - 7 * shift)
    assert len(list(cache.glob("rows-*.npz"))) == CACHE_ENTRIES
    assert not list(cache.glob(".rows-*")), "no temporary file is left behind"
