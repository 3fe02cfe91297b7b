"""/api/users: accounts, for admins."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from ..errors import ConsoleError
from .accounts import Account, create_account, disable_account, list_accounts, parse_store_key
from .deps import Admin, Db
from .schemas import NewUser, User

router = APIRouter(prefix="/api/users", tags=["users"])


def _user(account: Account) -> User:
    return User(**account.as_dict())


@router.get("", response_model=list[User])
def users(_admin: Admin, db: Db) -> list[User]:
    return [_user(a) for a in list_accounts(db)]


@router.post("", response_model=User, status_code=201, responses={409: {}, 422: {}})
def add_user(body: NewUser, admin: Admin, db: Db) -> User:
    """Create an account; staff accounts name their stores as CHAIN/STORE_ID."""
    try:
        stores = [parse_store_key(s) for s in body.stores]
        return _user(create_account(db, body.username, body.password, body.role, stores, created_by=admin.username))
    except ConsoleError as exc:
        raise HTTPException(409 if "exists already" in str(exc) else 422, str(exc)) from None


@router.post("/{username}/disable", response_model=User, responses={404: {}, 409: {}})
def disable(username: str, admin: Admin, db: Db) -> User:
    """Disable an account and end its sessions; it stays, named in the outcomes it recorded."""
    if username == admin.username:
        raise HTTPException(409, "an admin cannot disable their own account")
    try:
        return _user(disable_account(db, username))
    except ConsoleError as exc:
        raise HTTPException(404, str(exc)) from None
