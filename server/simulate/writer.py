"""Writing a simulated store as the files a real store would hand over.

`pos.csv` follows the POS input contract, `footfall.csv` looks like a people
counter's hourly export, and `truth.csv` holds what no real store has: each
customer's true churn date and its cause.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import numpy as np

from .activity import Purchases
from .calendar import Calendar
from .customers import Population
from .footfall import WalkIns
from .stores import SEGMENTS, StoreProfile

POS_HEADER = "transaction_id,store_id,customer_id,timestamp,amount,items,channel"


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "wt", encoding="utf-8", newline="")  # type: ignore[return-value]
    return open(path, "w", encoding="utf-8", newline="")


def _write_lines(path: Path, header: str, lines: Iterable[str]) -> None:
    with _open_text(path) as handle:
        handle.write(header + "\n")
        for line in lines:
            handle.write(line)


def write_pos(
    path: Path,
    store: StoreProfile,
    calendar: Calendar,
    population: Population,
    purchases: Purchases,
    walk_ins: WalkIns,
) -> int:
    """Write every sale of the written period in time order; return the row count."""
    day = np.concatenate([purchases.day, walk_ins.day])
    seconds = np.concatenate([purchases.seconds, walk_ins.seconds])
    amount = np.concatenate([purchases.amount, walk_ins.amount])
    items = np.concatenate([purchases.items, walk_ins.items])
    customer = np.concatenate([purchases.customer, np.full(len(walk_ins.day), -1)])
    online = np.concatenate([purchases.online, np.zeros(len(walk_ins.day), dtype=bool)])
    written = day >= calendar.warmup
    order = np.lexsort((seconds[written], day[written]))
    idx = np.flatnonzero(written)[order]
    dates = [d.isoformat() for d in calendar.dates]
    ids = population.customer_ids
    sid = store.store_id

    def rows() -> Iterable[str]:
        for n, i in enumerate(idx.tolist(), start=1):
            s = int(seconds[i])
            c = int(customer[i])
            count = int(items[i])
            yield (
                f"{sid}-T{n:08d},{sid},{ids[c] if c >= 0 else ''},"
                f"{dates[day[i]]}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d},"
                f"{amount[i]:.2f},{count if count >= 0 else ''},{'online' if online[i] else 'store'}\n"
            )

    _write_lines(path, POS_HEADER, rows())
    return len(idx)


def write_footfall(path: Path, store: StoreProfile, calendar: Calendar, entries: np.ndarray, exits: np.ndarray) -> int:
    """An hourly people-counter export (open hours of open days only)."""
    open_days = store.open_days(calendar)
    opens, closes = store.archetype.opens, store.archetype.closes

    def rows() -> Iterable[str]:
        for d in range(calendar.warmup, calendar.total_days):
            if not open_days[d]:
                continue
            day = calendar.dates[d].isoformat()
            for h in range(opens, closes):
                yield f"{day}T{h:02d}:00:00,{entries[d, h]},{exits[d, h]}\n"

    _write_lines(path, "timestamp,entries,exits", rows())
    return int(open_days[calendar.warmup :].sum()) * (closes - opens)


def write_truth(path: Path, calendar: Calendar, population: Population) -> None:
    """Each customer's segment, join date, and true churn date and cause (empty if they stay)."""

    def rows() -> Iterable[str]:
        for c, customer_id in enumerate(population.customer_ids):
            join = int(population.join_day[c])
            churn = int(population.churn_day[c])
            yield (
                f"{customer_id},{SEGMENTS[int(population.segment[c])].name},"
                f"{calendar.date_of(join).isoformat()},"
                f"{calendar.date_of(churn).isoformat() if churn >= 0 else ''},"
                f"{population.churn_cause[c]},{int(population.fade_days[c]) if churn >= 0 else ''}\n"
            )

    _write_lines(path, "customer_id,segment,joined,churn_date,churn_cause,fade_days", rows())
