"""A simulated chain, each store's till export ingested by the box's own ingest: the input of several benchmarks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from edge_agent.ingest import ingest_files
from edge_agent.store_db import open_store_db
from server.simulate import ChainSpec, simulate_chain

CHAIN_END = date(2025, 12, 31)


def simulated_chain(folder: Path, stores: int, customers: int, days: int, seed: int,
                    chain: str = "bench", events: bool = False) -> list[Path]:
    """Simulate the chain into `folder` and ingest each store into `folder/db/<store>.db` (not timed).

    `events`: also each store's customer events and identity links, as a box with a CRM export would."""
    simulate_chain(ChainSpec(stores=stores, customers_per_store=customers, days=days, seed=seed, end=CHAIN_END), folder)
    paths = []
    for store in sorted(folder.glob("store-*")):
        db = folder / "db" / f"{store.name}.db"
        with open_store_db(db, chain=chain) as handle:
            ingest_files(handle, [store / "pos.csv"])
            if events:
                ingest_files(handle, [store / "identities.csv", store / "events.csv"], contract=None)
        paths.append(db)
    return paths
