"""/api/alerts: the queue, one alert, and the actions on it (assign, contacted, outcome).

An alert is /api/alerts/{chain}/{store_id}/{alert_id}: its id is unique within its store only. The older
/api/alerts/{alert_id} paths still work while one alert of the account's stores has that id (409 otherwise).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from models.risk import LEVELS

from .deps import Actor, Db, Reader, check_store
from .queries import AlertFilters, AlertKey, alert_actions, alert_detail, alert_page
from .schemas import AlertDetail, AlertPage, AssignRequest, ContactedRequest, Kind, OutcomeRequest, State
from .work import WorkError, assign, record_outcome, resolve_alert

router = APIRouter(prefix="/api/alerts", tags=["alerts"])
actions_router = APIRouter(prefix="/api", tags=["alerts"])


@actions_router.get("/actions", response_model=list[str])
def actions(account: Reader, db: Db) -> list[str]:
    """The actions found on the alerts this account may see (for the queue's filter)."""
    return alert_actions(db, account)


@router.get("", response_model=AlertPage, responses={403: {}})
def queue(
    account: Reader,
    db: Db,
    chain: str | None = None,
    store_id: str | None = None,
    level: Annotated[list[str], Query(description="One or more of green ... purple")] = [],  # noqa: B006
    kind: Annotated[Kind | None, Query(description="early_warning (still buying, drifting away) or win_back "
                                                   "(lapsed by their own rhythm)")] = None,
    action: str | None = None,
    control: Annotated[bool | None, Query(description="true: the control group only; false: without it")] = None,
    state: State | None = None,
    assignee: Annotated[str | None, Query(description="A username, or `me`")] = None,
    max_age_days: Annotated[float | None, Query(gt=0, le=36_500, allow_inf_nan=False,
                                                description="Received at most this many days ago")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> AlertPage:
    """The alert queue of the stores this account may see: most severe level first, then highest score."""
    check_store(account, chain, store_id)
    unknown = [name for name in level if name not in LEVELS]
    if unknown:
        raise HTTPException(422, f"unknown level {unknown[0]!r}; levels are {', '.join(LEVELS)}")
    filters = AlertFilters(chain, store_id, tuple(level), kind, action, control, state,
                           account.username if assignee == "me" else assignee, max_age_days, limit, offset)
    total, rows = alert_page(db, account, filters)
    return AlertPage.model_validate({"total": total, "limit": limit, "offset": offset, "alerts": rows})


def _detail(db: Any, account: Any, key: AlertKey) -> AlertDetail:
    with db.read() as connection:
        detail = alert_detail(connection, account, key)
    if detail is None:
        raise HTTPException(404, f"no alert {key[2]!r} of store {key[0]}/{key[1]}")
    return AlertDetail(**detail)


def _act(db: Any, account: Any, key: AlertKey | str, call: Callable[[AlertKey], dict[str, Any]]) -> AlertDetail:
    """Run an action on the alert `key` names (an alert id alone must name one alert of the account's stores)."""
    try:
        resolved = resolve_alert(db, account, key) if isinstance(key, str) else key
        return AlertDetail.model_validate(call(resolved))
    except WorkError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.get("/{chain}/{store_id}/{alert_id}", response_model=AlertDetail, responses={404: {}})
def one(chain: str, store_id: str, alert_id: str, account: Reader, db: Db) -> AlertDetail:
    """One alert of one store, its handling, the customer's recent events and every outcome recorded for it."""
    return _detail(db, account, (chain, store_id, alert_id))


@router.get("/{alert_id}", response_model=AlertDetail, responses={404: {}, 409: {}})
def one_by_id(alert_id: str, account: Reader, db: Db) -> AlertDetail:
    """One alert by its id alone: 409 when several of the account's stores used that id."""
    return _act(db, account, alert_id, lambda key: _detail(db, account, key).model_dump())


def _assign(db: Any, account: Any, key: AlertKey | str, body: AssignRequest) -> AlertDetail:
    return _act(db, account, key, lambda k: assign(db, account, k, body.assignee))


def _contacted(db: Any, account: Any, key: AlertKey | str, body: ContactedRequest) -> AlertDetail:
    return _act(db, account, key, lambda k: record_outcome(db, account, k, "contacted", note=body.note))


def _outcome(db: Any, account: Any, key: AlertKey | str, body: OutcomeRequest) -> AlertDetail:
    return _act(db, account, key, lambda k: record_outcome(db, account, k, body.outcome, cost=body.cost, note=body.note))


@router.post("/{chain}/{store_id}/{alert_id}/assign", response_model=AlertDetail,
             responses={404: {}, 409: {}, 422: {}})
def assign_alert(chain: str, store_id: str, alert_id: str, body: AssignRequest, account: Actor,
                 db: Db) -> AlertDetail:
    """Give the alert to someone who may act on its store (null: take it back). Not for control alerts."""
    return _assign(db, account, (chain, store_id, alert_id), body)


@router.post("/{chain}/{store_id}/{alert_id}/contacted", response_model=AlertDetail, responses={404: {}, 409: {}})
def contacted(chain: str, store_id: str, alert_id: str, body: ContactedRequest, account: Actor,
              db: Db) -> AlertDetail:
    """The customer was contacted. Not for control alerts."""
    return _contacted(db, account, (chain, store_id, alert_id), body)


@router.post("/{chain}/{store_id}/{alert_id}/outcome", response_model=AlertDetail,
             responses={404: {}, 409: {}, 422: {}})
def outcome(chain: str, store_id: str, alert_id: str, body: OutcomeRequest, account: Actor,
            db: Db) -> AlertDetail:
    """Record an outcome: offer accepted or declined, or the result (stayed, churned), which closes the alert.

    Control alerts take only a result. `cost` is what the action actually cost;
    without it, uplift counts the alert's action_cost_cap.
    """
    return _outcome(db, account, (chain, store_id, alert_id), body)


@router.post("/{alert_id}/assign", response_model=AlertDetail, responses={404: {}, 409: {}, 422: {}})
def assign_by_id(alert_id: str, body: AssignRequest, account: Actor, db: Db) -> AlertDetail:
    """As /{chain}/{store_id}/{alert_id}/assign, for an id only one of the account's stores used."""
    return _assign(db, account, alert_id, body)


@router.post("/{alert_id}/contacted", response_model=AlertDetail, responses={404: {}, 409: {}})
def contacted_by_id(alert_id: str, body: ContactedRequest, account: Actor, db: Db) -> AlertDetail:
    """As /{chain}/{store_id}/{alert_id}/contacted, for an id only one of the account's stores used."""
    return _contacted(db, account, alert_id, body)


@router.post("/{alert_id}/outcome", response_model=AlertDetail, responses={404: {}, 409: {}, 422: {}})
def outcome_by_id(alert_id: str, body: OutcomeRequest, account: Actor, db: Db) -> AlertDetail:
    """As /{chain}/{store_id}/{alert_id}/outcome, for an id only one of the account's stores used."""
    return _outcome(db, account, alert_id, body)
