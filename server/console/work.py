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
from ..central.tables import ALERT_KEY, alert_outcomes, alert_work, alerts
from .accounts import Account, load_account
from .queries import AlertKey, alert_detail, alert_keys, is_alert

OUTCOMES = ("contacted", "offer_accepted", "offer_declined", "stayed", "churned")
RESULT_OUTCOMES = ("stayed", "churned")
MAX_COST = 1e9  # an action's cost: finite and bounded, or the chain's ROI is no number at all


class WorkError(Exception):
    """A refused action; `status` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def resolve_alert(db: CentralDb, account: Account, alert_id: str) -> AlertKey:
    """The one alert an id names among the account's stores: 404 if none, 409 if stores share the id."""
    with db.read() as connection:
        keys = alert_keys(connection, account, alert_id)
    if not keys:
        raise WorkError(404, f"no alert {alert_id!r}")
    if len(keys) > 1:
        raise WorkError(409, f"alert id {alert_id!r} is used by several stores; "
                             "ask for /api/alerts/CHAIN/STORE_ID/ALERT_ID")
    return keys[0]


def _locked_alert(connection: Connection, account: Account, key: AlertKey) -> tuple[Any, dict[str, Any]]:
    """The alert (row-locked until commit) and its current work row, or 404 for an alert this account cannot see."""
    row = connection.execute(select(alerts.c.alert_id, alerts.c.chain, alerts.c.store_id, alerts.c.control)
                             .where(is_alert(alerts, key)).with_for_update()).first()
    if row is None or not account.sees(row.chain, row.store_id):
        raise WorkError(404, f"no alert {key[2]!r} of store {key[0]}/{key[1]}")
    work = connection.execute(select(alert_work).where(is_alert(alert_work, key))).mappings().first()
    return row, dict(work) if work else {**dict(zip(ALERT_KEY, key)), "state": "open"}


def _save(connection: Connection, account: Account, work: dict[str, Any], now: str) -> None:
    work.update(updated_at=now, updated_by=account.username)
    columns = [c for c in work if c not in ALERT_KEY]
    upsert(connection, alert_work, work, ALERT_KEY, columns)


def _finish(db: CentralDb, account: Account, key: AlertKey) -> dict[str, Any]:
    with db.read() as connection:
        detail = alert_detail(connection, account, key)
    assert detail is not None
    return detail


def assign(db: CentralDb, account: Account, key: AlertKey, assignee: str | None) -> dict[str, Any]:
    """Give the alert to an account that may act on its store (None: take it back)."""
    now = utc_now_iso()
    with db.write() as connection:
        alert, work = _locked_alert(connection, account, key)
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
    return _finish(db, account, key)


def record_outcome(db: CentralDb, account: Account, key: AlertKey, outcome: str, *, cost: float | None = None,
                   note: str | None = None) -> dict[str, Any]:
    """Record a step: contacted, offer accepted or declined, or the result (stayed, churned), which closes it."""
    if outcome not in OUTCOMES:
        raise WorkError(422, f"outcome must be one of {', '.join(OUTCOMES)}")
    if cost is not None and not 0 <= cost <= MAX_COST:
        raise WorkError(422, f"cost must be a number from 0 to {MAX_COST:g}")
    now = utc_now_iso()
    with db.write() as connection:
        alert, work = _locked_alert(connection, account, key)
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
            **dict(zip(ALERT_KEY, key)), outcome=outcome, cost=cost, note=note, recorded_by=account.username,
            recorded_at=now))
    return _finish(db, account, key)
