"""Logins and sessions, kept in the central database so several console processes share them.

A session is a random token in an HttpOnly, SameSite=Strict cookie; the
database keeps only its sha256, so a copy of the table opens nothing. Each
session has its own CSRF token, which the page sends back in `X-CSRF-Token`
on every state-changing request. Sessions end at a fixed expiry, at logout,
or when their account is disabled or its password changes.

Failed logins are counted per (username, client address) and per address
over a window, in the database so the limit holds across processes. Past a
few free failures each further one doubles the wait before that pair may try
again, and the login is refused (429) before the password is even checked.
Failures from one address never delay the same account at another address:
nobody can lock the admin out by guessing at its password. A login for an
unknown user costs the same scrypt as a real one.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from ..central import CentralDb
from ..central.tables import console_sessions, login_failures, users
from .accounts import Account, load_account
from .passwords import dummy_hash, hash_password, needs_rehash, verify_password


def iso(moment: datetime) -> str:
    """The central database's time format (UTC, microseconds, `Z`), which sorts as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_utc() -> datetime:
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LoginLimits:
    free_failures: int = 3  # failed logins of one username from one address before waits begin
    first_wait_seconds: float = 1.0  # the wait after them, doubled by each further failure...
    max_wait_seconds: float = 900.0  # ...up to this
    per_client: int = 30  # failed logins from one address, any username, before that address waits too
    window_seconds: int = 900  # failures older than this are forgotten

    def wait_after(self, failures: int, allowed: int) -> float:
        """Seconds to wait after the last of `failures` recent failures, when `allowed` are free."""
        if failures < allowed:
            return 0.0
        return min(self.max_wait_seconds, self.first_wait_seconds * 2.0 ** min(failures - allowed, 30))


class LoginThrottled(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"too many failed logins; try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Session:
    token: str  # only ever in the cookie
    csrf_token: str
    expires_at: str
    account: Account


def _throttle(db: CentralDb, username: str, client: str, limits: LoginLimits) -> None:
    now = now_utc()
    since = iso(now - timedelta(seconds=limits.window_seconds))
    recent = login_failures.c.at > since
    pair = (login_failures.c.username == username) & (login_failures.c.client == client)
    with db.read() as connection:
        for where, allowed in ((pair, limits.free_failures), (login_failures.c.client == client, limits.per_client)):
            count, last = connection.execute(select(func.count(), func.max(login_failures.c.at))
                                             .where(where & recent)).one()
            wait = limits.wait_after(int(count), allowed)
            if wait:
                latest = datetime.strptime(last, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
                left = wait - (now - latest).total_seconds()
                if left > 0:
                    raise LoginThrottled(max(1, math.ceil(left)))


def authenticate(db: CentralDb, username: str, password: str, client: str,
                 limits: LoginLimits = LoginLimits()) -> Account | None:
    """The account if the password is right and the account enabled; None otherwise (the failure is counted)."""
    _throttle(db, username, client, limits)
    with db.read() as connection:
        found = load_account(connection, username=username)
    encoded = found[1] if found else dummy_hash()
    good = verify_password(password, encoded) and found is not None and not found[0].disabled
    now = iso(now_utc())
    with db.write() as connection:
        if not good:
            connection.execute(login_failures.insert().values(username=username, client=client, at=now))
            connection.execute(delete(login_failures).where(
                login_failures.c.at < iso(now_utc() - timedelta(seconds=limits.window_seconds))))
            return None
        connection.execute(delete(login_failures).where((login_failures.c.username == username)
                                                        & (login_failures.c.client == client)))
        assert found is not None
        if needs_rehash(encoded):  # the cost was raised since this password was set
            connection.execute(users.update().where(users.c.id == found[0].id)
                               .values(password_hash=hash_password(password)))
    return found[0]


def open_session(db: CentralDb, account: Account, client: str, lifetime: timedelta) -> Session:
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = now_utc()
    expires = iso(now + lifetime)
    with db.write() as connection:
        connection.execute(delete(console_sessions).where(console_sessions.c.expires_at < iso(now)))
        connection.execute(console_sessions.insert().values(
            token_hash=token_hash(token), user_id=account.id, csrf_token=csrf, created_at=iso(now),
            expires_at=expires, client=client))
    return Session(token, csrf, expires, account)


def resolve_session(db: CentralDb, token: str) -> Session | None:
    """The live session behind a cookie's token, or None (unknown, expired, or its account disabled)."""
    with db.read() as connection:
        row = connection.execute(select(console_sessions).where(
            (console_sessions.c.token_hash == token_hash(token))
            & (console_sessions.c.expires_at > iso(now_utc())))).mappings().first()
        found = load_account(connection, user_id=row["user_id"]) if row else None
    if row is None or found is None or found[0].disabled:
        return None
    return Session(token, row["csrf_token"], row["expires_at"], found[0])


def csrf_matches(session: Session, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(session.csrf_token.encode(), presented.encode())


def close_session(db: CentralDb, token: str) -> None:
    with db.write() as connection:
        connection.execute(delete(console_sessions).where(console_sessions.c.token_hash == token_hash(token)))
