"""/api/alerts: the queue, one alert, and the actions on it (assign, contacted, outcome)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from models.risk import LEVELS

from .deps import Actor, Db, Reader, check_store
from .queries import AlertFilters, alert_actions, alert_detail, alert_page
from .schemas import AlertDetail, AlertPage, AssignRequest, ContactedRequest, OutcomeRequest, State
from .work import WorkError, assign, record_outcome

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
    action: str | None = None,
    control: Annotated[bool | None, Query(description="true: the control group only; false: without it")] = None,
    state: State | None = None,
    assignee: Annotated[str | None, Query(description="A username, or `me`")] = None,
    max_age_days: Annotated[float | None, Query(gt=0, description="Received at most this many days ago")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AlertPage:
    """The alert queue of the stores this account may see: most severe level first, then highest score."""
    check_store(account, chain, store_id)
    unknown = [name for name in level if name not in LEVELS]
    if unknown:
        raise HTTPException(422, f"unknown level {unknown[0]!r}; levels are {', '.join(LEVELS)}")
    filters = AlertFilters(chain, store_id, tuple(level), action, control, state,
                           account.username if assignee == "me" else assignee, max_age_days, limit, offset)
    total, rows = alert_page(db, account, filters)
    return AlertPage.model_validate({"total": total, "limit": limit, "offset": offset, "alerts": rows})


@router.get("/{alert_id}", response_model=AlertDetail, responses={404: {}})
def one(alert_id: str, account: Reader, db: Db) -> AlertDetail:
    """One alert, its handling and every outcome recorded for it."""
    with db.read() as connection:
        detail = alert_detail(connection, account, alert_id)
    if detail is None:
        raise HTTPException(404, f"no alert {alert_id!r}")
    return AlertDetail(**detail)


def _act(call: Callable[[], dict[str, Any]]) -> AlertDetail:
    try:
        return AlertDetail.model_validate(call())
    except WorkError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.post("/{alert_id}/assign", response_model=AlertDetail, responses={404: {}, 409: {}, 422: {}})
def assign_alert(alert_id: str, body: AssignRequest, account: Actor,
                 db: Db) -> AlertDetail:
    """Give the alert to someone who may act on its store (null: take it back). Not for control alerts."""
    return _act(lambda: assign(db, account, alert_id, body.assignee))


@router.post("/{alert_id}/contacted", response_model=AlertDetail, responses={404: {}, 409: {}})
def contacted(alert_id: str, body: ContactedRequest, account: Actor,
              db: Db) -> AlertDetail:
    """The customer was contacted. Not for control alerts."""
    return _act(lambda: record_outcome(db, account, alert_id, "contacted", note=body.note))


@router.post("/{alert_id}/outcome", response_model=AlertDetail, responses={404: {}, 409: {}, 422: {}})
def outcome(alert_id: str, body: OutcomeRequest, account: Actor,
            db: Db) -> AlertDetail:
    """Record an outcome: offer accepted or declined, or the result (stayed, churned), which closes the alert.

    Control alerts take only a result. `cost` is what the action actually cost;
    without it, uplift counts the alert's action_cost_cap.
    """
    return _act(lambda: record_outcome(db, account, alert_id, body.outcome, cost=body.cost, note=body.note))
