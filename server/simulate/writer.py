"""Writing a simulated store as the files a real store would hand over.

`pos.csv` follows the POS input contract, `footfall.csv` looks like a people
counter's hourly export, `events.csv` the customer-events contract (service
desk, returns, online, reviews, surveys), `identities.csv` a CRM's identity
export, and `truth.csv` holds what no real store has: each customer's true
churn date and its cause.
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
from .events import KINDS, Events, Identities, note_for
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


EVENTS_HEADER = "event_id,customer_id,phone,timestamp,kind,value,channel,note"
IDENTITIES_HEADER = "customer_id,online_account,phone,email"


def online_account_id(customer_id: str) -> str:
    return "W" + customer_id[1:][::-1]


def phone_number(index: int, store_index: int) -> str:
    return f"+33 6 {store_index % 100:02d} {index // 10000 % 100:02d} {index // 100 % 100:02d} {index % 100:02d}"


def email_address(customer_id: str) -> str:
    return f"{customer_id.lower()}@mail.example"


def write_events(path: Path, store: StoreProfile, calendar: Calendar, population: Population, events: Events,
                 identities: Identities, seed: int) -> int:
    """Customer events of the written period in the customer-events contract, under the id each channel knows:
    the online account for online events, only a phone number for some service-desk contacts, else the
    loyalty id."""
    rng = np.random.default_rng([seed, store.index, 5])
    written = np.flatnonzero(events.day >= calendar.warmup)
    dates = [d.isoformat() for d in calendar.dates]
    ids = population.customer_ids
    by_phone = rng.random(len(events)) < 0.2

    def rows() -> Iterable[str]:
        for n, i in enumerate(written.tolist(), start=1):
            c, kind = int(events.customer[i]), int(events.kind[i])
            phone = ""
            if events.online[i]:
                who, channel = online_account_id(ids[c]), "online"
            elif by_phone[i] and identities.phone[c] and KINDS[kind] in ("complaint", "service_contact"):
                who, phone, channel = "", phone_number(c, store.index), "phone"
            else:
                who, channel = ids[c], "store"
            s = int(events.seconds[i])
            value = "" if np.isnan(events.value[i]) else f"{events.value[i]:g}"
            yield (f"{store.store_id}-E{n:08d},{who},{phone},{dates[events.day[i]]}T{s // 3600:02d}:{s // 60 % 60:02d}:00,"
                   f"{KINDS[kind]},{value},{channel},{note_for(kind, rng)}\n")

    _write_lines(path, EVENTS_HEADER, rows())
    return len(written)


def write_identities(path: Path, store: StoreProfile, population: Population, identities: Identities) -> int:
    """The CRM's identity export: loyalty id, online account, phone and e-mail (raw: the box keeps hashes only)."""
    known = np.flatnonzero(identities.online_account | identities.phone | identities.email)
    ids = population.customer_ids

    def rows() -> Iterable[str]:
        for c in known.tolist():
            yield (f"{ids[c]},{online_account_id(ids[c]) if identities.online_account[c] else ''},"
                   f"{phone_number(c, store.index) if identities.phone[c] else ''},"
                   f"{email_address(ids[c]) if identities.email[c] else ''}\n")

    _write_lines(path, IDENTITIES_HEADER, rows())
    return len(known)
