"""Operator accounts: who may see which stores and who may act.

Three roles. A `viewer` sees every store and changes nothing (head office,
analysts). `staff` see and act on the alerts of their own stores only (a
store's team). An `admin` sees and acts on everything and manages accounts.
A store is named `CHAIN/STORE_ID` (store ids are unique within a chain only).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, false, or_, select, true

from ..central import CentralDb, utc_now_iso
from ..central.tables import console_sessions, user_stores, users
from ..errors import ConsoleError
from .passwords import hash_password, password_problem

ROLES = ("viewer", "staff", "admin")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
StoreKey = tuple[str, str]


def parse_store_key(text: str) -> StoreKey:
    """`acme/paris-01` → ("acme", "paris-01")."""
    chain, sep, store_id = text.strip().partition("/")
    if not sep or not chain or not store_id or "/" in store_id or "+" in text or "#" in text:
        raise ConsoleError(f"store {text!r} must be written CHAIN/STORE_ID, e.g. acme/paris-01")
    return chain, store_id


def store_key_text(key: StoreKey) -> str:
    return f"{key[0]}/{key[1]}"


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: str
    stores: frozenset[StoreKey] = field(default_factory=frozenset)
    disabled: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_act(self) -> bool:
        return self.role in ("staff", "admin")

    @property
    def sees_all_stores(self) -> bool:
        return self.role != "staff"

    def sees(self, chain: str, store_id: str) -> bool:
        return self.sees_all_stores or (chain, store_id) in self.stores

    def store_condition(self, chain: ColumnElement[str], store_id: ColumnElement[str]) -> ColumnElement[bool]:
        """A WHERE clause keeping the rows of the stores this account may see."""
        if self.sees_all_stores:
            return true()
        if not self.stores:
            return false()
        return or_(*(and_(chain == c, store_id == s) for c, s in sorted(self.stores)))

    def as_dict(self) -> dict[str, Any]:
        return {"username": self.username, "role": self.role, "disabled": self.disabled,
                "stores": sorted(store_key_text(k) for k in self.stores)}


def check_account_fields(username: str, role: str, stores: Iterable[StoreKey]) -> None:
    if not USERNAME.match(username):
        raise ConsoleError(f"username {username!r} must be 1-64 letters, digits, '.', '_', '@' or '-'")
    if role not in ROLES:
        raise ConsoleError(f"role {role!r} must be one of {', '.join(ROLES)}")
    if role == "staff" and not list(stores):
        raise ConsoleError("a staff account needs at least one store (CHAIN/STORE_ID)")
    if role != "staff" and list(stores):
        raise ConsoleError(f"only staff accounts are limited to stores; a {role} sees every store")


def _stores_of(connection: Connection, user_id: int) -> frozenset[StoreKey]:
    rows = connection.execute(select(user_stores.c.chain, user_stores.c.store_id)
                              .where(user_stores.c.user_id == user_id)).all()
    return frozenset((row.chain, row.store_id) for row in rows)


def load_account(connection: Connection, *, user_id: int | None = None,
                 username: str | None = None) -> tuple[Account, str] | None:
    """(the account, its password hash) by id or username, or None."""
    query = select(users).where(users.c.id == user_id if user_id is not None else users.c.username == username)
    row = connection.execute(query).mappings().first()
    if row is None:
        return None
    account = Account(row["id"], row["username"], row["role"], _stores_of(connection, row["id"]), bool(row["disabled"]))
    return account, row["password_hash"]


def create_account(db: CentralDb, username: str, password: str, role: str, stores: Iterable[StoreKey] = (),
                   *, created_by: str | None = None, replace: bool = False) -> Account:
    """Create an account; with `replace`, reset an existing one (password, role, stores) and end its sessions."""
    stores = frozenset(stores)
    check_account_fields(username, role, stores)
    problem = password_problem(password)
    if problem:
        raise ConsoleError(problem)
    encoded, now = hash_password(password), utc_now_iso()
    with db.write() as connection:
        existing = load_account(connection, username=username)
        if existing and not replace:
            raise ConsoleError(f"user {username!r} exists already")
        values = {"role": role, "password_hash": encoded, "disabled": False, "password_changed_at": now}
        if existing:
            user_id = existing[0].id
            connection.execute(users.update().where(users.c.id == user_id).values(**values))
            connection.execute(delete(user_stores).where(user_stores.c.user_id == user_id))
            connection.execute(delete(console_sessions).where(console_sessions.c.user_id == user_id))
        else:
            user_id = connection.execute(users.insert().values(
                username=username, created_at=now, created_by=created_by, **values).returning(users.c.id)).scalar_one()
        if stores:
            connection.execute(user_stores.insert(), [{"user_id": user_id, "chain": c, "store_id": s}
                                                      for c, s in sorted(stores)])
    return Account(user_id, username, role, stores)


def list_accounts(db: CentralDb) -> list[Account]:
    with db.read() as connection:
        ids = connection.execute(select(users.c.id).order_by(users.c.username)).scalars().all()
        found = [load_account(connection, user_id=user_id) for user_id in ids]
    return [entry[0] for entry in found if entry]


def disable_account(db: CentralDb, username: str) -> Account:
    """Disable an account and end its sessions (it is kept: outcomes name who recorded them)."""
    with db.write() as connection:
        existing = load_account(connection, username=username)
        if existing is None:
            raise ConsoleError(f"no user {username!r}")
        connection.execute(users.update().where(users.c.id == existing[0].id).values(disabled=True))
        connection.execute(delete(console_sessions).where(console_sessions.c.user_id == existing[0].id))
    account = existing[0]
    return Account(account.id, account.username, account.role, account.stores, True)


def change_password(db: CentralDb, account: Account, password: str, *, keep_session: str | None = None) -> None:
    """Set a new password and end the account's other sessions."""
    problem = password_problem(password)
    if problem:
        raise ConsoleError(problem)
    encoded = hash_password(password)
    with db.write() as connection:
        connection.execute(users.update().where(users.c.id == account.id)
                           .values(password_hash=encoded, password_changed_at=utc_now_iso()))
        others = console_sessions.c.user_id == account.id
        if keep_session:
            others = others & (console_sessions.c.token_hash != keep_session)
        connection.execute(delete(console_sessions).where(others))
