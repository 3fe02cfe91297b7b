"""A store's history as numpy arrays: the one input of feature building.

`load_store_data` is the thin read-only adapter over the store database (it is
here, in the shared package, because both the store box and the central
trainer read store databases); everything downstream is pure numpy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .days import SECONDS_PER_DAY

DAY = SECONDS_PER_DAY  # store-local seconds per day number (models/days.py)
ONLINE_CHANNELS = frozenset({"online", "web", "app", "ecommerce", "e-commerce", "delivery", "click_collect"})


class StoreDataError(Exception):
    """A store database that cannot be read as a store's history."""


@dataclass
class Footfall:
    """Hourly door counts: `start` is the hour's store-local start in seconds."""

    start: np.ndarray  # int64, sorted
    entries: np.ndarray  # float64

    @property
    def empty(self) -> bool:
        return len(self.start) == 0


@dataclass
class CustomerEvents:
    """Service, returns, online and feedback events (the customer-events contract), sorted by time.

    `kind` indexes models/events.py's EVENT_KINDS; `value` is NaN where the kind
    carries none (a rating, a score, a returned amount)."""

    customer: np.ndarray  # int64 index into StoreData.customer_ids
    ts: np.ndarray  # int64 store-local seconds
    kind: np.ndarray  # int64
    value: np.ndarray  # float64

    @staticmethod
    def none() -> CustomerEvents:
        return CustomerEvents(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))

    @property
    def empty(self) -> bool:
        return len(self.ts) == 0

    def before(self, bound: int) -> CustomerEvents:
        keep = self.ts < bound
        return CustomerEvents(self.customer[keep], self.ts[keep], self.kind[keep], self.value[keep])


@dataclass
class StoreData:
    """Transactions sorted by (customer, ts); customer -1 means an anonymous sale."""

    store_id: str
    chain: str
    customer_ids: np.ndarray  # object array: index → customer id
    customer: np.ndarray  # int64 index into customer_ids, -1 = anonymous
    ts: np.ndarray  # int64 store-local seconds since 1970
    has_time: np.ndarray  # bool
    amount: np.ndarray  # float64, negative = refund
    items: np.ndarray  # float64, NaN = unknown
    online: np.ndarray  # float64: 1 online, 0 in store, NaN unknown
    footfall: Footfall = field(default_factory=lambda: Footfall(np.zeros(0, np.int64), np.zeros(0)))
    events: CustomerEvents = field(default_factory=CustomerEvents.none)

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)

    @property
    def first_day(self) -> int:
        return int(self.ts.min() // DAY) if len(self.ts) else 0

    @property
    def last_day(self) -> int:
        return int(self.ts.max() // DAY) if len(self.ts) else 0

    def until(self, bound: int) -> StoreData:
        """Only what happened strictly before `bound` (seconds): what a model may see."""
        keep = self.ts < bound
        foot = self.footfall.start < bound
        return StoreData(
            self.store_id, self.chain, self.customer_ids, self.customer[keep], self.ts[keep],
            self.has_time[keep], self.amount[keep], self.items[keep], self.online[keep],
            Footfall(self.footfall.start[foot], self.footfall.entries[foot]),
            self.events.before(bound),
        )


def make_store_data(
    store_id: str,
    customer_ids: list[str] | np.ndarray,
    customer: np.ndarray,
    ts: np.ndarray,
    amount: np.ndarray,
    *,
    has_time: np.ndarray | None = None,
    items: np.ndarray | None = None,
    online: np.ndarray | None = None,
    footfall: Footfall | None = None,
    events: CustomerEvents | None = None,
    chain: str = "default",
) -> StoreData:
    """Build StoreData from parallel arrays (tests, simulations, other sources)."""
    n = len(ts)
    order = np.lexsort((np.asarray(ts), np.asarray(customer)))
    pick = lambda values, default: (np.asarray(values) if values is not None else default)[order]  # noqa: E731
    return StoreData(
        store_id=store_id,
        chain=chain,
        customer_ids=np.asarray(customer_ids, dtype=object),
        customer=np.asarray(customer, dtype=np.int64)[order],
        ts=np.asarray(ts, dtype=np.int64)[order],
        has_time=pick(has_time, np.ones(n, dtype=bool)).astype(bool),
        amount=np.asarray(amount, dtype=np.float64)[order],
        items=pick(items, np.full(n, np.nan)).astype(np.float64),
        online=pick(online, np.full(n, np.nan)).astype(np.float64),
        footfall=footfall or Footfall(np.zeros(0, np.int64), np.zeros(0)),
        events=events or CustomerEvents.none(),
    )


NO_ITEMS = -(1 << 40)
_ONLINE_SQL = ", ".join(f"'{c}'" for c in sorted(ONLINE_CHANNELS))
# One row per transaction, packed by SQLite so that numpy reads four plain
# columns: (customer key, ts, has-time flag) in one integer, the amount, the
# item count, and the channel as 0 in store / 1 online / 2 unknown.
_TRANSACTIONS_SQL = f"""
    SELECT (coalesce(customer_key, 0) << 33) | (ts << 1) | has_time,
           amount,
           coalesce(items, {NO_ITEMS}),
           CASE WHEN channel IS NULL THEN 2 WHEN lower(channel) IN ({_ONLINE_SQL}) THEN 1 ELSE 0 END
    FROM transactions
"""
_ROW = np.dtype([("packed", np.int64), ("amount", np.float64), ("items", np.int64), ("channel", np.int64)])


_EVENT_ROW = np.dtype([("customer", np.int64), ("ts", np.int64), ("kind", np.int64), ("value", np.float64)])


class CustomerIndex:
    """Customer id → index into StoreData.customer_ids, every alias landing on its loyalty customer.

    `aliases` maps an alias (an online account id, a phone or e-mail hash) to
    the loyalty id it belongs to; links never chain (the identity ingest
    refuses that), so one look-up resolves any id. Ids get indexes in the
    order they are first asked for.
    """

    def __init__(self, aliases: dict[str, str]):
        self.aliases = aliases
        self.ids: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, customer_id: str) -> int:
        canonical = self.aliases.get(customer_id, customer_id)
        found = self._index.get(canonical)
        if found is None:
            found = self._index[canonical] = len(self.ids)
            self.ids.append(canonical)
        return found


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _read_events(conn: sqlite3.Connection, customers: CustomerIndex) -> CustomerEvents:
    """Events in time order (ties in event-id order), kinds as codes of models/events.py's EVENT_KINDS.

    Read in key order, sorted here: cheaper than asking SQLite to sort a
    million rows, and each row is turned into four numbers as it streams by."""
    from .events import KIND  # events.py builds on this module

    count = conn.execute("SELECT count(*) FROM customer_events").fetchone()[0]
    refs: dict[str, int] = {}
    nan = float("nan")

    def numbers() -> Iterator[tuple[int, int, int, float]]:
        for ref, ts, kind, value in conn.execute("SELECT customer_ref, ts, kind, value FROM customer_events"):
            code = refs.get(ref)
            if code is None:
                code = refs[ref] = customers(ref)
            yield code, ts, KIND.get(kind, -1), nan if value is None else value

    rows = np.fromiter(numbers(), dtype=_EVENT_ROW, count=count)
    rows = rows[rows["kind"] >= 0]  # a kind this version does not know (written by a newer box) is left out
    rows = rows[np.argsort(rows["ts"], kind="stable")]
    return CustomerEvents(rows["customer"].copy(), rows["ts"].copy(), rows["kind"].copy(), rows["value"].copy())


def load_store_data(path: str | Path) -> StoreData:
    """Read a store database (read-only, as one snapshot) into arrays.

    Sales and events recorded under an alias (customer_aliases) count for the
    loyalty customer the alias belongs to, whatever order they arrived in;
    databases from before customer events (schema < 9) simply have none."""
    db = Path(path)
    if not db.exists():
        raise StoreDataError(f"store database {db} does not exist")
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        conn.execute("BEGIN")  # one snapshot: an ingest running meanwhile is seen whole or not at all
        meta = dict(conn.execute("SELECT key, value FROM metadata").fetchall())
        customers = conn.execute("SELECT customer_key, customer_id FROM customers ORDER BY customer_key").fetchall()
        count = conn.execute("SELECT count(*) FROM transactions").fetchone()[0]
        rows = np.fromiter(conn.execute(_TRANSACTIONS_SQL), dtype=_ROW, count=count)
        foot = conn.execute(
            "SELECT bucket_start - bucket_start % 3600, sum(entries) FROM footfall"
            " GROUP BY 1 ORDER BY 1"
        ).fetchall()
        with_events = _has_table(conn, "customer_events")
        aliases = dict(conn.execute("SELECT alias, customer_id FROM customer_aliases").fetchall()) if with_events else {}
        index = CustomerIndex(aliases)
        resolved = [index(customer_id) for _, customer_id in customers]
        events = _read_events(conn, index) if with_events else CustomerEvents.none()
    except sqlite3.Error as exc:
        raise StoreDataError(f"{db} is not a readable store database: {exc}") from exc
    finally:
        conn.close()
    keys = np.array([k for k, _ in customers], dtype=np.int64)
    key_to_index = np.full(int(keys.max()) + 1 if len(keys) else 1, -1, dtype=np.int64)
    key_to_index[keys] = np.array(resolved, dtype=np.int64)
    packed = rows["packed"]
    customer_key = packed >> 33
    customer = np.where(customer_key == 0, -1, key_to_index[np.minimum(customer_key, len(key_to_index) - 1)])
    channel = rows["channel"]
    return make_store_data(
        store_id=meta.get("store_id", db.stem),
        chain=meta.get("chain", "default"),
        customer_ids=index.ids,
        customer=customer,
        ts=(packed >> 1) & ((1 << 32) - 1),
        amount=rows["amount"],
        has_time=(packed & 1).astype(bool),
        items=np.where(rows["items"] == NO_ITEMS, np.nan, rows["items"]).astype(np.float64),
        online=np.where(channel == 2, np.nan, channel).astype(np.float64),
        footfall=Footfall(
            np.array([r[0] for r in foot], dtype=np.int64), np.array([r[1] for r in foot], dtype=np.float64)
        ),
        events=events,
    )
