"""Who is asking: the session behind the cookie, its CSRF token, and what its role allows.

Every /api/ route except login depends on `current_session`: no valid
session cookie is 401. A state-changing method (anything but GET, HEAD,
OPTIONS) must also carry the session's CSRF token in `X-CSRF-Token`, or it is
403. `acting_account` refuses viewers, `admin_account` everyone but admins.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from ..central import CentralDb
from .accounts import Account
from .sessions import Session, csrf_matches, resolve_session
from .settings import ConsoleSettings

SESSION_COOKIE = "churn_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_db(request: Request) -> CentralDb:
    return request.app.state.db  # type: ignore[no-any-return]


def get_settings(request: Request) -> ConsoleSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


Db = Annotated[CentralDb, Depends(get_db)]
Settings = Annotated[ConsoleSettings, Depends(get_settings)]


def current_session(request: Request, db: Db) -> Session:
    token = request.cookies.get(SESSION_COOKIE)
    session = resolve_session(db, token) if token else None
    if session is None:
        raise HTTPException(401, "not logged in (or the session expired)")
    if request.method not in SAFE_METHODS and not csrf_matches(session, request.headers.get(CSRF_HEADER)):
        raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header")
    return session


CurrentSession = Annotated[Session, Depends(current_session)]


def current_account(session: CurrentSession) -> Account:
    return session.account


Reader = Annotated[Account, Depends(current_account)]  # any logged-in account


def acting_account(account: Reader) -> Account:
    if not account.can_act:
        raise HTTPException(403, f"a {account.role} account cannot change anything")
    return account


def admin_account(account: Reader) -> Account:
    if not account.is_admin:
        raise HTTPException(403, "only an admin can do this")
    return account


Actor = Annotated[Account, Depends(acting_account)]  # staff or admin
Admin = Annotated[Account, Depends(admin_account)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def check_store(account: Account, chain: str | None, store_id: str | None) -> None:
    """403 when a request names a store the account may not see (a store id alone: any chain's)."""
    if account.sees_all_stores or (chain is None and store_id is None):
        return
    if not any((chain in (None, c)) and (store_id in (None, s)) for c, s in account.stores):
        raise HTTPException(403, "not one of your stores")
