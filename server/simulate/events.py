"""Service, returns, online and survey events: an added layer, drawn after (and apart from) the purchases.

The purchases of a store do not change when events are simulated: the events
have their own random stream. They follow the customers' story causally and
noisily:

- some churners are **dissatisfied** (most of those who leave for the base
  reason or the crowds, a few of those lured away): in the weeks before they
  leave they contact the service desk, complain (not all of them), get fewer
  complaints resolved, return more, and rate and score the store low;
- customers **lured by a competitor** who shop online browse more and abandon
  carts while their purchases fade ("looking online without buying");
- **loyal customers** also complain now and then, and almost always get it
  resolved; they browse and sometimes abandon carts too; surveys are sparse;
- a third of the customers have an **online account** (all who buy online):
  their online events come under that account's id, which `identities.csv`
  joins to the loyalty id, as do hashed phones and e-mails for some of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.events import EVENT_KINDS

from .activity import Purchases
from .calendar import Calendar
from .customers import Population
from .stores import StoreProfile

KINDS = EVENT_KINDS  # the customer-events contract's kinds, owned by models/events.py
NOTES = {"complaint": ("late delivery", "staff", "product quality", "price", "queue"),
         "service_contact": ("question", "exchange", "loyalty card", "opening hours")}


@dataclass
class Events:
    """One store's customer events as parallel arrays."""

    customer: np.ndarray  # index into the population
    day: np.ndarray
    seconds: np.ndarray
    kind: np.ndarray  # index into KINDS
    value: np.ndarray  # NaN where the kind carries none
    online: np.ndarray  # bool: the event came under the customer's online account

    def __len__(self) -> int:
        return len(self.day)


@dataclass
class Identities:
    """Which customers have an online account, a known phone or a known e-mail."""

    online_account: np.ndarray  # bool per customer
    phone: np.ndarray  # bool per customer
    email: np.ndarray  # bool per customer


class _Draws:
    """Collects events kind by kind."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(self, customer: np.ndarray, day: np.ndarray, kind: str, value: np.ndarray | None = None,
            online: bool = False) -> None:
        n = len(customer)
        self.parts.append((customer.astype(np.int64), day.astype(np.int64), np.full(n, KINDS.index(kind)),
                           value if value is not None else np.full(n, np.nan), np.full(n, online)))

    def events(self, rng: np.random.Generator, calendar: Calendar, alive_until: np.ndarray,
               join: np.ndarray) -> Events:
        customer, day, kind, value, online = (np.concatenate([p[i] for p in self.parts]) for i in range(5))
        keep = (day >= np.maximum(join[customer], 0)) & (day < calendar.total_days) & (day <= alive_until[customer] + 30)
        customer, day, kind, value, online = (a[keep] for a in (customer, day, kind, value, online))
        seconds = rng.integers(8 * 3600, 21 * 3600, size=len(day))
        order = np.lexsort((seconds, day))
        return Events(customer[order], day[order], seconds[order], kind[order], value[order], online[order])


def _poisson_days(rng: np.random.Generator, rate_per_day: np.ndarray, start: np.ndarray, end: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(customer, day) of a Poisson process per customer at `rate_per_day` on [start, end)."""
    length = np.maximum(end - start, 0)
    counts = rng.poisson(rate_per_day * length)
    customer = np.repeat(np.arange(len(counts)), counts)
    day = start[customer] + (rng.random(len(customer)) * length[customer]).astype(np.int64)
    return customer, day


def make_identities(population: Population, seed: int, store_index: int) -> Identities:
    rng = np.random.default_rng([seed, store_index, 4])
    n = len(population)
    online = (population.online_share > 0) | (rng.random(n) < 0.25)
    return Identities(online, rng.random(n) < 0.6, rng.random(n) < 0.5)


def make_events(store: StoreProfile, population: Population, purchases: Purchases, calendar: Calendar,
                identities: Identities, seed: int) -> Events:
    """Every customer event of one store over the whole calendar (warm-up included)."""
    rng = np.random.default_rng([seed, store.index, 3])
    n, total = len(population), calendar.total_days
    churn = population.churn_day
    churner = churn >= 0
    cause = np.array(population.churn_cause)
    dissatisfied = churner & (rng.random(n) < np.where(cause == "competitor", 0.2, 0.65))
    lured = churner & (cause == "competitor") & identities.online_account
    alive_until = np.where(churner, churn, total)
    join = population.join_day
    everyone = np.zeros(n, dtype=np.int64)
    # the weeks before leaving: from the start of the fade (or 6 weeks before an abrupt stop) to the churn day
    trouble_start = np.where(churner, churn - np.maximum(population.fade_days, 42) - rng.integers(0, 30, n), total)
    draws = _Draws()

    # complaints: loyal customers now and then; dissatisfied churners in their last weeks (not all of them)
    c, d = _poisson_days(rng, np.full(n, 0.25 / 365), everyone, alive_until)
    draws.add(c, d, "complaint")
    resolved = rng.random(len(c)) < 0.9
    draws.add(c[resolved], d[resolved] + rng.integers(1, 15, resolved.sum()), "complaint_resolved")
    complains = dissatisfied & (rng.random(n) < 0.7)
    c, d = _poisson_days(rng, np.where(complains, 2.5 / 60, 0.0), trouble_start, alive_until)
    draws.add(c, d, "complaint")
    resolved = rng.random(len(c)) < 0.3
    draws.add(c[resolved], d[resolved] + rng.integers(3, 30, resolved.sum()), "complaint_resolved")

    # service contacts: everyone now and then, the dissatisfied more often
    c, d = _poisson_days(rng, np.full(n, 0.6 / 365), everyone, alive_until)
    draws.add(c, d, "service_contact")
    c, d = _poisson_days(rng, np.where(dissatisfied, 1.5 / 60, 0.0), trouble_start, alive_until)
    draws.add(c, d, "service_contact")

    # returns logged by the service desk: most till refunds, and more from the dissatisfied
    refunds = purchases.amount < 0
    logged = refunds & (rng.random(len(refunds)) < 0.8)
    draws.add(purchases.customer[logged], purchases.day[logged], "return", -purchases.amount[logged])
    c, d = _poisson_days(rng, np.where(dissatisfied, 1.0 / 60, 0.0), trouble_start, alive_until)
    draws.add(c, d, "return", np.round(population.basket[c] * rng.uniform(0.2, 1.0, len(c)), 2))

    # online: account holders browse at about twice their visit rate; the lured browse more and abandon carts
    account = identities.online_account
    browse = np.where(account, 2.0 / population.mean_gap, 0.0)
    c, d = _poisson_days(rng, browse, everyone, alive_until)
    draws.add(c, d, "online_visit", online=True)
    c, d = _poisson_days(rng, np.where(account, 0.15 / population.mean_gap, 0.0), everyone, alive_until)
    draws.add(c, d, "cart_abandoned", online=True)
    c, d = _poisson_days(rng, np.where(lured, 3.0 / population.mean_gap, 0.0), trouble_start, alive_until)
    draws.add(c, d, "online_visit", online=True)
    c, d = _poisson_days(rng, np.where(lured, 0.8 / population.mean_gap, 0.0), trouble_start, alive_until)
    draws.add(c, d, "cart_abandoned", online=True)

    # reviews (1-5) and surveys (NPS 0-10): sparse; the dissatisfied score low in their last weeks
    c, d = _poisson_days(rng, np.full(n, 0.3 / 365), everyone, alive_until)
    late = dissatisfied[c] & (d >= trouble_start[c])
    draws.add(c, d, "review", np.clip(np.round(np.where(late, rng.normal(2.0, 1.0, len(c)),
                                                        rng.normal(4.2, 0.8, len(c)))), 1, 5))
    c, d = _poisson_days(rng, np.full(n, 0.5 / 365), everyone, alive_until)
    late = dissatisfied[c] & (d >= trouble_start[c])
    draws.add(c, d, "survey", np.clip(np.round(np.where(late, rng.normal(4.0, 2.0, len(c)),
                                                        rng.normal(8.3, 1.5, len(c)))), 0, 10))
    c, d = _poisson_days(rng, np.full(n, 2.0 / 365), everyone, alive_until)
    draws.add(c, d, "coupon_redeemed")
    return draws.events(rng, calendar, alive_until, join)


def note_for(kind: int, rng: np.random.Generator) -> str:
    """A staff member's free-text note (the box keeps only its category)."""
    choices = NOTES.get(KINDS[kind])
    return "" if choices is None else str(choices[int(rng.integers(len(choices)))])
