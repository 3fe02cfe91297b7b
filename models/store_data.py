"""A store's history as numpy arrays: the one input of feature building.

`load_store_data` is the thin read-only adapter over the store database (it is
here, in the shared package, because both the store box and the central
trainer read store databases); everything downstream is pure numpy.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DAY = 86400
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


def load_store_data(path: str | Path) -> StoreData:
    """Read a store database (read-only) into arrays."""
    db = Path(path)
    if not db.exists():
        raise StoreDataError(f"store database {db} does not exist")
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        meta = dict(conn.execute("SELECT key, value FROM metadata").fetchall())
        customers = conn.execute("SELECT customer_key, customer_id FROM customers ORDER BY customer_key").fetchall()
        count = conn.execute("SELECT count(*) FROM transactions").fetchone()[0]
        rows = np.fromiter(conn.execute(_TRANSACTIONS_SQL), dtype=_ROW, count=count)
        foot = conn.execute(
            "SELECT bucket_start - bucket_start % 3600, sum(entries) FROM footfall"
            " GROUP BY 1 ORDER BY 1"
        ).fetchall()
    except sqlite3.Error as exc:
        raise StoreDataError(f"{db} is not a readable store database: {exc}") from exc
    finally:
        conn.close()
    keys = np.array([k for k, _ in customers], dtype=np.int64)
    key_to_index = np.full(int(keys.max()) + 1 if len(keys) else 1, -1, dtype=np.int64)
    key_to_index[keys] = np.arange(len(keys))
    packed = rows["packed"]
    customer_key = packed >> 33
    customer = np.where(customer_key == 0, -1, key_to_index[np.minimum(customer_key, len(key_to_index) - 1)])
    channel = rows["channel"]
    return make_store_data(
        store_id=meta.get("store_id", db.stem),
        chain=meta.get("chain", "default"),
        customer_ids=[i for _, i in customers],
        customer=customer,
        ts=(packed >> 1) & ((1 << 32) - 1),
        amount=rows["amount"],
        has_time=(packed & 1).astype(bool),
        items=np.where(rows["items"] == NO_ITEMS, np.nan, rows["items"]).astype(np.float64),
        online=np.where(channel == 2, np.nan, channel).astype(np.float64),
        footfall=Footfall(
            np.array([r[0] for r in foot], dtype=np.int64), np.array([r[1] for r in foot], dtype=np.float64)
        ),
    )
