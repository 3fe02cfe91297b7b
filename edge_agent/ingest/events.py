"""Customer events (retail.customer-events/1): complaints, service contacts, returns, online, reviews, surveys.

The kinds are models/events.py's EVENT_KINDS: a kind outside them is
quarantined, never guessed. An event names its customer by `customer_id` (a
loyalty id or an alias such as an online account), or else by a phone number
or an e-mail address, which is stored only as the box's keyed hash. The id is
stored as it arrived: aliases are resolved when the store is read
(models/store_data.py), so events may arrive before the identity links that
place them. A note is stored only as its category (notes.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from models.events import EVENT_KINDS

from ..store_db import StoreDatabase
from ..store_queries.events import event_inserter
from .contract import EVENTS, Contract
from .identity_key import IdentityKey
from .notes import NoteCategories
from .validate import DerivedIds, RowRejected, TimestampParser, _short, optional_text

MAX_CHANNEL_LENGTH = 32


def parse_value(value: object) -> float | None:
    """Optional number (a rating, a score, an amount); empty means none."""
    if value is None or value == "":
        return None
    if value.__class__ is bool:
        raise RowRejected("bad value", f"{value!r} is not a number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RowRejected("bad value", f"{_short(value)!r} is not a number") from None
    if number - number != 0.0:
        raise RowRejected("bad value", f"{_short(value)!r} is not a finite number")
    return number


class EventValidator:
    """Validates one event row for one store.

    `validate(timestamp, kind, customer_id, phone, email, value, channel,
    event_id, note, store_id)` returns (event_id, customer_ref, ts, has_time,
    kind, value, channel, note category) or raises RowRejected.
    """

    def __init__(self, store_id: str, zone: ZoneInfo, key: IdentityKey, now_utc: datetime | None = None):
        self.store_id = store_id
        self.key = key
        self.timestamps = TimestampParser(zone, now_utc)
        self.derived_ids = DerivedIds()
        self.notes = NoteCategories()
        self.validate = self._make_validate()

    def private_value(self, column: str, value: object) -> str:
        """What a quarantined row keeps of a note, a phone or an e-mail: what would be stored."""
        text = optional_text(value)
        if text is None:
            return ""
        if column == "note":
            return self.notes.category(text) or ""
        ref = self.key.phone_ref(text) if column == "phone" else self.key.email_ref(text)
        return ref or ""

    def _customer_ref(self, customer_id: object, phone: object, email: object) -> str:
        customer = optional_text(customer_id)
        if customer is not None:
            return customer
        number = optional_text(phone)
        if number is not None:
            ref = self.key.phone_ref(number)
            if ref is None:
                raise RowRejected("bad phone", "phone is not a phone number")  # never quote it
            return ref
        address = optional_text(email)
        if address is not None:
            ref = self.key.email_ref(address)
            if ref is None:
                raise RowRejected("bad email", "email is not an e-mail address")
            return ref
        raise RowRejected("missing customer", "customer_id, phone and email are all empty")

    def _make_validate(self) -> Callable[..., tuple]:  # type: ignore[type-arg]
        """The per-row function as a closure over locals (see RowValidator._make_validate)."""
        own_store = self.store_id
        read_timestamp = self.timestamps.reader()
        derive_id = self.derived_ids.of_content
        customer_ref = self._customer_ref
        category = self.notes.category
        known_kinds = {name: name for name in EVENT_KINDS}
        kinds: dict[object, str] = {}
        channels: dict[object, str | None] = {}

        def validate(
            timestamp: object,
            kind: object,
            customer_id: object = None,
            phone: object = None,
            email: object = None,
            value: object = None,
            channel: object = None,
            event_id: object = None,
            note: object = None,
            store_id: object = None,
        ) -> tuple:  # type: ignore[type-arg]
            ts, has_time = read_timestamp(timestamp)
            name = kinds.get(kind)
            if name is None:
                text = optional_text(kind)
                if text is None:
                    raise RowRejected("missing kind", "kind is empty")
                name = known_kinds.get(text.lower())
                if name is None:
                    raise RowRejected("unknown kind", f"{_short(text)!r} is not a customer-events kind")
                if len(kinds) < 1000:
                    kinds[kind] = name
            if store_id is not None and store_id != own_store:
                store = optional_text(store_id)
                if store is not None and store != own_store:
                    raise RowRejected("other store", f"store_id {_short(store)!r} is not {own_store!r}")
            if customer_id.__class__ is str and customer_id:
                ref = customer_id.strip() or customer_ref(None, phone, email)  # type: ignore[union-attr]
            else:
                ref = customer_ref(customer_id, phone, email)
            number = None if value is None or value == "" else parse_value(value)
            if channel:
                way = channels.get(channel)
                if way is None:
                    way = optional_text(channel)
                    way = way.lower() if way is not None else None
                    if way is not None and len(way) > MAX_CHANNEL_LENGTH:
                        raise RowRejected("bad channel", f"channel {_short(way)!r} is longer than "
                                                         f"{MAX_CHANNEL_LENGTH} characters")
                    if len(channels) < 1000:
                        channels[channel] = way
            else:
                way = None
            noted = None if not note else category(note)
            given = event_id.strip() if event_id.__class__ is str else optional_text(event_id)  # type: ignore[union-attr]
            if not given:
                given = derive_id(f"{ref}\x1f{ts}\x1f{has_time}\x1f{name}\x1f{number!r}\x1f{way}")
            return (given, ref, ts, has_time, name, number, way, noted)

        return validate


class EventsTable:
    """Stores events keyed by event id: an id seen before is a duplicate."""

    def __init__(self, run_id: int):
        self.insert_rows = event_inserter(run_id)

    def insert(self, conn: sqlite3.Connection, rows: list) -> int:  # type: ignore[type-arg]
        return self.insert_rows(conn, rows)

    def rolled_back(self, conn: sqlite3.Connection) -> None:
        """Nothing is remembered between batches."""


class EventsInput:
    """`edge-agent ingest-events`: service desk, returns, online and feedback exports."""

    contract: Contract = EVENTS

    def __init__(self, key: IdentityKey):
        self.key = key

    def begin(self, store: StoreDatabase, run_id: int, now_utc: datetime | None
              ) -> tuple[EventValidator, EventsTable]:
        return EventValidator(store.store_id, store.zone, self.key, now_utc), EventsTable(run_id)
