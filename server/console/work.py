"""Acting on an alert: assign it, mark the customer contacted, record what came of it.

`alert_work` holds the current state of an alert's handling (what the queue
shows and what uplift counts); `alert_outcomes` keeps every step with who
recorded it and when. Each call is one transaction that first locks the
alert's row, so two operators acting on one alert at once are serialised.

Control alerts are held out from action on purpose: they can be assigned to
nobody and contacted by nobody; only their result (stayed or churned) is
recorded, which is what makes them a control group.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from ..central import CentralDb, utc_now_iso
from ..central.database import upsert
from ..central.tables import alert_outcomes, alert_work, alerts
from .accounts import Account, load_account
from .queries import alert_detail

OUTCOMES = ("contacted", "offer_accepted", "offer_declined", "stayed", "churned")
RESULT_OUTCOMES = ("stayed", "churned")


class WorkError(Exception):
    """A refused action; `status` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _locked_alert(connection: Connection, account: Account, alert_id: str) -> tuple[Any, dict[str, Any]]:
    """The alert (row-locked until commit) and its current work row, or 404 for an alert this account cannot see."""
    row = connection.execute(select(alerts.c.alert_id, alerts.c.chain, alerts.c.store_id, alerts.c.control)
                             .where(alerts.c.alert_id == alert_id).with_for_update()).first()
    if row is None or not account.sees(row.chain, row.store_id):
        raise WorkError(404, f"no alert {alert_id!r}")
    work = connection.execute(select(alert_work).where(alert_work.c.alert_id == alert_id)).mappings().first()
    return row, dict(work) if work else {"alert_id": alert_id, "state": "open"}


def _save(connection: Connection, account: Account, work: dict[str, Any], now: str) -> None:
    work.update(updated_at=now, updated_by=account.username)
    columns = [c for c in work if c != "alert_id"]
    upsert(connection, alert_work, work, ("alert_id",), columns)


def _finish(db: CentralDb, account: Account, alert_id: str) -> dict[str, Any]:
    with db.read() as connection:
        detail = alert_detail(connection, account, alert_id)
    assert detail is not None
    return detail


def assign(db: CentralDb, account: Account, alert_id: str, assignee: str | None) -> dict[str, Any]:
    """Give the alert to an account that may act on its store (None: take it back)."""
    now = utc_now_iso()
    with db.write() as connection:
        alert, work = _locked_alert(connection, account, alert_id)
        if alert.control:
            raise WorkError(409, "a control alert is held out from action: it is not assigned to anyone")
        if assignee is not None:
            found = load_account(connection, username=assignee)
            if found is None or found[0].disabled:
                raise WorkError(422, f"no active user {assignee!r}")
            if not (found[0].can_act and found[0].sees(alert.chain, alert.store_id)):
                raise WorkError(422, f"{assignee} cannot act on store {alert.chain}/{alert.store_id}")
        work.update(assignee=assignee, assigned_at=now if assignee else None, assigned_by=account.username)
        if work["state"] in ("open", "assigned"):
            work["state"] = "assigned" if assignee else "open"
        _save(connection, account, work, now)
    return _finish(db, account, alert_id)


def record_outcome(db: CentralDb, account: Account, alert_id: str, outcome: str, *, cost: float | None = None,
                   note: str | None = None) -> dict[str, Any]:
    """Record a step: contacted, offer accepted or declined, or the result (stayed, churned), which closes it."""
    if outcome not in OUTCOMES:
        raise WorkError(422, f"outcome must be one of {', '.join(OUTCOMES)}")
    if cost is not None and cost < 0:
        raise WorkError(422, "cost cannot be negative")
    now = utc_now_iso()
    with db.write() as connection:
        alert, work = _locked_alert(connection, account, alert_id)
        if alert.control and outcome not in RESULT_OUTCOMES:
            raise WorkError(409, "a control alert is held out from action: record only whether the customer "
                                 "stayed or churned")
        if alert.control and cost is not None:
            raise WorkError(409, "a control alert had no action, so no cost")
        if outcome in RESULT_OUTCOMES:
            work.update(result=outcome, result_at=now, state="closed")
        else:
            work["contacted_at"] = work.get("contacted_at") or now
            if outcome != "contacted":
                work["offer"] = outcome.removeprefix("offer_")
            if work["state"] != "closed":
                work["state"] = "contacted"
        if cost is not None:
            work["cost"] = cost
        _save(connection, account, work, now)
        connection.execute(alert_outcomes.insert().values(
            alert_id=alert_id, outcome=outcome, cost=cost, note=note, recorded_by=account.username, recorded_at=now))
    return _finish(db, account, alert_id)
