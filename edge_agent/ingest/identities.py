"""Identity links: one customer across channels (loyalty id, online account, phone, e-mail).

A row links a loyalty `customer_id` to the ids the other channels know the
customer by: an `online_account` id as it is, a phone number or an e-mail
address as the box's keyed hash only (identity_key.py). Each alias belongs to
one customer. An alias that another customer already holds, a loyalty id that
is already someone's alias, or an alias that is itself a customer with links
of its own is quarantined with the reason: two customers are never merged
silently, and links never chain, so resolving them when the store is read
(models/store_data.py) takes one look-up. A row whose links are all stored
already is a duplicate.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime

from ..store_db import StoreDatabase, utc_now_iso
from ..store_queries.events import insert_aliases, load_aliases
from ..store_queries.runs import run_source
from .contract import IDENTITIES, Contract
from .identity_key import IdentityKey
from .source import IngestError
from .validate import RowRejected, _short, optional_text

ALIAS_KINDS = ("online_account", "phone", "email")

IdentityRow = tuple[str, tuple[tuple[str, str], ...]]  # (customer id, its new (alias, kind) links)


class IdentityValidator:
    """Checks each link against the links stored and those earlier in the run.

    It holds the links of the run as it goes: a run's batches commit in order
    or the run stops, so what it holds is what the database will hold.
    """

    def __init__(self, key: IdentityKey, aliases: dict[str, str]):
        self.key = key
        self.owner = aliases
        self.linked = set(aliases.values())  # customers that have aliases
        self.validate: Callable[..., IdentityRow] = self._validate

    def private_value(self, column: str, value: object) -> str:
        text = optional_text(value)
        if text is None:
            return ""
        ref = self.key.phone_ref(text) if column == "phone" else self.key.email_ref(text)
        return ref or ""

    def _aliases(self, online_account: object, phone: object, email: object) -> list[tuple[str, str]]:
        found = []
        account = optional_text(online_account)
        if account is not None:
            found.append((account, "online_account"))
        number = optional_text(phone)
        if number is not None:
            ref = self.key.phone_ref(number)
            if ref is None:
                raise RowRejected("bad phone", "phone is not a phone number")  # never quote it
            found.append((ref, "phone"))
        address = optional_text(email)
        if address is not None:
            ref = self.key.email_ref(address)
            if ref is None:
                raise RowRejected("bad email", "email is not an e-mail address")
            found.append((ref, "email"))
        return found

    def _validate(self, customer_id: object, online_account: object = None, phone: object = None,
                  email: object = None) -> IdentityRow:
        customer = optional_text(customer_id)
        if customer is None:
            raise RowRejected("missing customer_id", "customer_id is empty")
        aliases = [(alias, kind) for alias, kind in self._aliases(online_account, phone, email) if alias != customer]
        if not aliases:
            raise RowRejected("no alias", "online_account, phone and email are all empty")
        holder = self.owner.get(customer)
        if holder is not None:
            raise RowRejected("alias conflict", f"customer_id {_short(customer)!r} is an alias of customer "
                                                f"{_short(holder)!r}")
        new = []
        for alias, kind in aliases:
            holder = self.owner.get(alias)
            named = f"{kind} {_short(alias)!r}" if kind == "online_account" else f"this {kind}"
            if holder is not None and holder != customer:
                raise RowRejected("alias conflict", f"{named} is linked to customer {_short(holder)!r}")
            if holder is None and alias in self.linked:
                raise RowRejected("alias conflict", f"{named} is a customer with links of its own")
            if holder is None:
                new.append((alias, kind))
        for alias, _ in new:
            self.owner[alias] = customer
        if new:
            self.linked.add(customer)
        return customer, tuple(new)


class AliasTable:
    """Stores the new links of each row; a row with none is a duplicate."""

    def __init__(self, run_id: int, source_name: str):
        self.run_id = run_id
        self.source_name = source_name

    def insert(self, conn: sqlite3.Connection, rows: list[IdentityRow]) -> int:
        now = utc_now_iso()
        links = [(alias, customer, kind, self.run_id, now) for customer, new in rows for alias, kind in new]
        try:
            insert_aliases(conn, links)
        except sqlite3.IntegrityError:
            # Another ingest linked one of these aliases after this run read the links: nothing of this batch
            # is kept, and reading the file again judges it against the links as they are now.
            raise IngestError(f"{self.source_name}: identity links changed while the file was read "
                              f"(another identities ingest at the same time?); ingest it again") from None
        return sum(1 for _, new in rows if new)

    def rolled_back(self, conn: sqlite3.Connection) -> None:
        """The run stops with the batch: its validator, which holds the batch's links, goes with it."""


class IdentitiesInput:
    """`edge-agent ingest-identities`: a CRM's identity export."""

    contract: Contract = IDENTITIES

    def __init__(self, key: IdentityKey):
        self.key = key

    def begin(self, store: StoreDatabase, run_id: int, now_utc: datetime | None
              ) -> tuple[IdentityValidator, AliasTable]:
        name = run_source(store, run_id)
        return IdentityValidator(self.key, load_aliases(store.conn)), AliasTable(run_id, name)
