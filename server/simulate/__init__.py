"""A synthetic retail chain for demos and tests, reproducible per seed.

Each store depends only on (seed, store index), so adding stores never changes
the ones already there. See docs/simulator.md for the model of the world.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np

from .activity import make_purchases
from .calendar import Calendar
from .customers import make_population
from .events import make_events, make_identities
from .footfall import hourly_sales, make_footfall, make_walk_ins
from .stores import make_store
from .writer import write_events, write_footfall, write_identities, write_pos, write_truth

DEFAULT_END = date(2025, 12, 31)


class SimulationError(Exception):
    """Parameters that cannot make a chain."""


@dataclass(frozen=True)
class ChainSpec:
    stores: int = 6
    customers_per_store: int = 3000
    days: int = 365
    seed: int = 7
    end: date = DEFAULT_END
    chain: str = "demo"
    gzip: bool = False

    def check(self) -> None:
        if self.stores < 1:
            raise SimulationError("--stores must be at least 1")
        if self.customers_per_store < 10:
            raise SimulationError("--customers-per-store must be at least 10")
        if self.days < 28:
            raise SimulationError("--days must be at least 28")


@dataclass
class StoreSummary:
    store_id: str
    archetype: str
    customers: int
    transactions: int
    footfall_hours: int
    churners: int
    competitor_opening: str | None
    traffic_growth: float
    sunday_closed: bool
    pos_file: str
    footfall_file: str
    truth_file: str
    events: int = 0
    events_file: str = ""
    identities_file: str = ""


def simulate_store(spec: ChainSpec, index: int, out: Path) -> StoreSummary:
    """Simulate one store and write its files under out/<store_id>/."""
    calendar = Calendar(end=spec.end, days=spec.days)
    store = make_store(index, spec.customers_per_store, calendar, spec.seed)
    population = make_population(store, calendar, spec.seed)
    purchases = make_purchases(store, population, calendar, spec.seed)
    in_store = ~purchases.online & (purchases.amount > 0)
    visits_per_day = np.bincount(purchases.day[in_store], minlength=calendar.total_days)
    walk_ins = make_walk_ins(store, calendar, visits_per_day.astype(float), spec.seed)
    sales = hourly_sales(
        np.concatenate([purchases.day[in_store], walk_ins.day]),
        np.concatenate([purchases.seconds[in_store], walk_ins.seconds]),
        calendar.total_days,
    )
    entries, exits = make_footfall(store, calendar, sales, spec.seed)

    folder = out / store.store_id
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".csv.gz" if spec.gzip else ".csv"
    pos_path, footfall_path, truth_path = (
        folder / f"pos{suffix}", folder / "footfall.csv", folder / "truth.csv"
    )
    rows = write_pos(pos_path, store, calendar, population, purchases, walk_ins)
    hours = write_footfall(footfall_path, store, calendar, entries, exits)
    write_truth(truth_path, calendar, population)
    identities = make_identities(population, spec.seed, store.index)
    events = make_events(store, population, purchases, calendar, identities, spec.seed)
    events_path, identities_path = folder / f"events{suffix}", folder / "identities.csv"
    event_rows = write_events(events_path, store, calendar, population, events, identities, spec.seed)
    write_identities(identities_path, store, population, identities)
    churned = (population.churn_day >= calendar.warmup).sum()
    return StoreSummary(
        store_id=store.store_id,
        archetype=store.archetype.name,
        customers=len(population),
        transactions=rows,
        footfall_hours=hours,
        churners=int(churned),
        competitor_opening=(
            calendar.date_of(store.competitor_day).isoformat() if store.competitor_day is not None else None
        ),
        traffic_growth=round(store.traffic_growth, 3),
        sunday_closed=store.sunday_closed,
        pos_file=str(pos_path.relative_to(out)),
        footfall_file=str(footfall_path.relative_to(out)),
        truth_file=str(truth_path.relative_to(out)),
        events=event_rows,
        events_file=str(events_path.relative_to(out)),
        identities_file=str(identities_path.relative_to(out)),
    )


def simulate_chain(
    spec: ChainSpec, out: Path, on_store: Callable[[StoreSummary], None] | None = None
) -> list[StoreSummary]:
    """Simulate every store of the chain into `out`, plus chain.json and stores.csv."""
    spec.check()
    out.mkdir(parents=True, exist_ok=True)
    summaries = []
    for index in range(spec.stores):
        summary = simulate_store(spec, index, out)
        summaries.append(summary)
        if on_store is not None:
            on_store(summary)
    spec_dict = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(spec).items()}
    (out / "chain.json").write_text(
        json.dumps({"spec": spec_dict, "stores": [asdict(s) for s in summaries]}, indent=2) + "\n"
    )
    with open(out / "stores.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(asdict(summaries[0])))
        writer.writeheader()
        writer.writerows(asdict(s) for s in summaries)
    return summaries


__all__ = ["ChainSpec", "SimulationError", "StoreSummary", "simulate_chain", "simulate_store"]
