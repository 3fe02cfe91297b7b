"""Features built from events ingested into a real store database see nothing at or after as-of."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from edge_agent.ingest import EVENTS, IDENTITIES, ingest_files
from edge_agent.ingest.identity_key import load_identity_key
from edge_agent.store_db import open_store_db
from models.events import EVENT_FEATURES
from models.features import build_features
from models.schema import FEATURE_INDEX
from models.store_data import load_store_data

AS_OF = date(2025, 9, 30)


def build_db(db: Path, folder: Path, events: Path, key_file: Path) -> Path:
    with open_store_db(db, chain="demo", store_id=folder.name) as store:
        ingest_files(store, [folder / "pos.csv"])
        ingest_files(store, [events], contract=EVENTS, key=load_identity_key(key_file))
        ingest_files(store, [folder / "identities.csv"], contract=IDENTITIES, key=load_identity_key(key_file))
    return db


def by_customer(db: Path, as_of_day: int) -> dict[str, np.ndarray]:
    table = build_features(load_store_data(db), as_of_day)
    return dict(zip(table.customer_ids, table.values))


def test_events_on_and_after_as_of_change_no_feature(small_chain: Path, tmp_path: Path) -> None:
    folder = small_chain / "store-01"
    lines = (folder / "events.csv").read_text().splitlines(keepends=True)
    stamp = lines[0].split(",").index("timestamp")
    before = tmp_path / "events-before.csv"
    before.write_text(lines[0] + "".join(line for line in lines[1:] if line.split(",")[stamp] < AS_OF.isoformat()))
    assert 0 < len(before.read_text().splitlines()) < len(lines), "the export runs past as-of"
    key = tmp_path / "box.key"
    as_of_day = (AS_OF - date(1970, 1, 1)).days
    everything = by_customer(build_db(tmp_path / "all.db", folder, folder / "events.csv", key), as_of_day)
    blind = by_customer(build_db(tmp_path / "cut.db", folder, before, key), as_of_day)
    assert everything.keys() == blind.keys()
    for customer, values in everything.items():
        np.testing.assert_array_equal(values, blind[customer], err_msg=f"{customer}: later events leaked")
    columns = np.array([FEATURE_INDEX[name] for name in EVENT_FEATURES])
    values = np.array(list(everything.values()))[:, columns]
    assert (values[:, EVENT_FEATURES.index("has_events")] == 1).all()
    online = values[:, EVENT_FEATURES.index("online_visits_30_log")]
    assert np.isfinite(online).all() and (online > 0).mean() > 0.1, "online visits reach the loyalty customers"
