"""What the console reads from the central database, always narrowed to the stores an account may see.

SQLAlchemy Core only, portable between SQLite and PostgreSQL: times are ISO
text compared as text, months and days are `substr` of it, levels are ranked
with a CASE over models.risk.LEVELS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, and_, case, func, select

from models.events import describe_event
from models.risk import LEVELS

from ..central import CentralDb
from ..central.tables import (
    ALERT_FIELD_COLUMNS, ALERT_KEY, alert_outcomes, alert_work, alerts, camera_gap_days, footfall_hourly, input_days,
    model_releases, model_rounds, seq_gaps, store_metrics, stores,
)
from .accounts import Account
from .data_quality import DataQualityRules, store_alarms, store_view
from .decay import PeriodCounts
from .sessions import iso, now_utc
from .uplift import OutcomeGroup

LEVEL_RANK = case({level: rank for rank, level in enumerate(LEVELS)}, value=alerts.c.level, else_=-1)
STATES = ("open", "assigned", "contacted", "closed")
RESULTS = ("stayed", "churned")
DECAY_LEVELS = LEVELS[LEVELS.index("orange"):]
# A listed alert: its fields with a column (its recent events only in its detail) and when it arrived
ALERT_COLUMNS = [alerts.c[name] for name in ALERT_FIELD_COLUMNS if name != "recent_events"] + [alerts.c.received_at]
WORK_COLUMNS = [alert_work.c[name] for name in (
    "assignee", "assigned_at", "contacted_at", "offer", "result", "result_at", "cost", "updated_at", "updated_by")]


@dataclass(frozen=True)
class AlertFilters:
    chain: str | None = None
    store_id: str | None = None
    levels: tuple[str, ...] = ()
    kind: str | None = None  # early_warning or win_back
    action: str | None = None
    control: bool | None = None
    state: str | None = None
    assignee: str | None = None
    max_age_days: float | None = None  # since the centre received the alert
    limit: int = 100
    offset: int = 0


AlertKey = tuple[str, str, str]  # (chain, store_id, alert_id): an alert id is unique within its store only
WORK_OF_ALERT = and_(*(alert_work.c[name] == alerts.c[name] for name in ALERT_KEY))


def _with_work(query: Select[Any]) -> Select[Any]:
    return query.select_from(alerts.outerjoin(alert_work, WORK_OF_ALERT))


def is_alert(table: Any, key: AlertKey) -> Any:
    """WHERE clause: the rows of `table` (alerts, alert_work, alert_outcomes) that belong to the alert `key`."""
    return and_(*(table.c[name] == value for name, value in zip(ALERT_KEY, key)))


def alert_keys(connection: Connection, account: Account, alert_id: str) -> list[AlertKey]:
    """Every alert with this id among the stores the account may see (one, unless stores reused an id)."""
    rows = connection.execute(select(alerts.c.chain, alerts.c.store_id, alerts.c.alert_id).where(
        (alerts.c.alert_id == alert_id) & account.store_condition(alerts.c.chain, alerts.c.store_id)).limit(10)).all()
    return [(r.chain, r.store_id, r.alert_id) for r in rows]


def _filtered(query: Select[Any], account: Account, f: AlertFilters) -> Select[Any]:
    query = query.where(account.store_condition(alerts.c.chain, alerts.c.store_id))
    for column, wanted in ((alerts.c.chain, f.chain), (alerts.c.store_id, f.store_id), (alerts.c.action, f.action),
                           (alert_work.c.assignee, f.assignee), (alerts.c.kind, f.kind)):
        if wanted is not None:
            query = query.where(column == wanted)
    if f.levels:
        query = query.where(alerts.c.level.in_(f.levels))
    if f.control is not None:
        query = query.where(alerts.c.control == f.control)
    if f.state == "open":
        query = query.where(func.coalesce(alert_work.c.state, "open") == "open")
    elif f.state is not None:
        query = query.where(alert_work.c.state == f.state)
    if f.max_age_days is not None:
        query = query.where(alerts.c.received_at >= iso(now_utc() - timedelta(days=f.max_age_days)))
    return query


def alert_row(row: Any) -> dict[str, Any]:
    return {
        **{c.name: row[c.name] for c in ALERT_COLUMNS}, "reasons": json.loads(row["reasons"]),
        "control": bool(row["control"]), "state": row["state"] or "open",
        **{c.name: row[c.name] for c in WORK_COLUMNS},
    }


def alert_page(db: CentralDb, account: Account, f: AlertFilters) -> tuple[int, list[dict[str, Any]]]:
    """The queue: most severe level first, then the highest score, then the newest; and the total matching."""
    columns = [*ALERT_COLUMNS, alert_work.c.state, *WORK_COLUMNS]
    query = _filtered(_with_work(select(*columns)), account, f).order_by(
        LEVEL_RANK.desc(), alerts.c.risk_score.desc(), alerts.c.received_at.desc(), alerts.c.chain, alerts.c.store_id,
        alerts.c.alert_id)
    total_query = _filtered(_with_work(select(func.count())), account, f)
    with db.read() as connection:
        total = int(connection.execute(total_query).scalar_one())
        rows = connection.execute(query.limit(f.limit).offset(f.offset)).mappings().all()
    return total, [alert_row(r) for r in rows]


def alert_actions(db: CentralDb, account: Account) -> list[str]:
    with db.read() as connection:
        return list(connection.execute(select(alerts.c.action).distinct().where(
            alerts.c.action.is_not(None) & account.store_condition(alerts.c.chain, alerts.c.store_id))
            .order_by(alerts.c.action)).scalars())


def recent_events(text: str | None) -> list[dict[str, Any]]:
    """The customer's recent events as stored with the alert, each with its staff wording."""
    try:
        stored = json.loads(text or "[]")
    except ValueError:
        return []
    return [{**{k: e.get(k) for k in ("kind", "days_ago", "value")},
             "text": describe_event(str(e.get("kind")), int(e.get("days_ago") or 0), e.get("value"))}
            for e in stored if isinstance(e, dict)] if isinstance(stored, list) else []


def alert_detail(connection: Connection, account: Account, key: AlertKey) -> dict[str, Any] | None:
    """One alert with its handling, the customer's recent events and every outcome recorded for it;
    None if absent or not this account's."""
    row = connection.execute(_with_work(select(*ALERT_COLUMNS, alerts.c.recent_events, alert_work.c.state,
                                               *WORK_COLUMNS)).where(is_alert(alerts, key))).mappings().first()
    if row is None or not account.sees(row["chain"], row["store_id"]):
        return None
    history = connection.execute(select(alert_outcomes).where(is_alert(alert_outcomes, key))
                                 .order_by(alert_outcomes.c.recorded_at, alert_outcomes.c.id)).mappings().all()
    return {**alert_row(row), "recent_events": recent_events(row["recent_events"]),
            "outcomes": [{k: h[k] for k in ("outcome", "cost", "note", "recorded_by", "recorded_at")}
                         for h in history]}


# --- stores -------------------------------------------------------------------------------------

def _parse_time(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def _cameras(document: dict[str, Any]) -> list[dict[str, str]]:
    cameras = document.get("cameras")
    if isinstance(cameras, dict):
        return [{"source": str(k), "state": str(v)} for k, v in sorted(cameras.items())]
    if isinstance(cameras, list):
        return [{"source": str(c.get("source")), "state": str(c.get("state"))} for c in cameras if isinstance(c, dict)]
    return []


def _document(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _first(kind: type, *values: Any) -> Any:
    """The first value of `kind` (a count, a text...): a store row written before the aggregator checked
    its types must not turn /api/stores into a 500 for everyone."""
    for value in values:
        if isinstance(value, kind) and not isinstance(value, bool):
            return value
    return None


def _health(key: tuple[str, str], store: Any, metrics: Any, gaps: list[Any], counts: Any,
            stale_after: float, quality_alarms: dict[str, str]) -> dict[str, Any]:
    status = _document(store["status"]) if store is not None else {}
    latest = _document(metrics["metrics"]) if metrics is not None else {}
    cameras = _cameras(status) or _cameras(latest)
    seen = _parse_time(store["last_seen"]) if store is not None else None
    state = store["state"] if store is not None else "unknown"
    silent = state == "online" and (seen is None or (now_utc() - seen).total_seconds() > stale_after)
    alarms = _first(dict, status.get("alarms"), latest.get("alarms")) or {}
    return {
        "chain": key[0], "store_id": key[1], "state": state, "silent": silent,
        "last_seen": store["last_seen"] if store is not None else None, "reason": _first(str, status.get("reason")),
        "outbox_unacked": _first(int, status.get("outbox_unacked"), latest.get("outbox_unacked")),
        "last_publish_at": _first(str, status.get("last_publish_at")),
        "model_version": _first(str, status.get("model_version"), latest.get("model_version")),
        "cameras": cameras,
        "camera_state": ("none" if not cameras else
                         "ok" if all(c["state"] == "streaming" for c in cameras) else "degraded"),
        "alarms": {**{str(k): v if isinstance(v, str) else json.dumps(v, default=str) for k, v in alarms.items()},
                   **quality_alarms},
        "metrics_at": metrics["at"] if metrics is not None else None,
        "open_gaps": len(gaps), "missing_alerts": sum(g.last_missing - g.first_missing + 1 for g in gaps),
        "alerts": int(counts.alerts) if counts is not None else 0,
        "last_alert_at": counts.last if counts is not None else None,
    }


def store_health(db: CentralDb, account: Account, stale_after: float,
                 rules: DataQualityRules = DataQualityRules()) -> list[dict[str, Any]]:
    """Every store the account may see that has sent anything: state, outbox, model, cameras, gaps, alerts,
    and its alarms: those the box raised and those its data quality raises here (late export, quarantine jump)."""
    with db.read() as connection:
        status = {(r["chain"], r["store_id"]): r for r in connection.execute(
            select(stores).where(account.store_condition(stores.c.chain, stores.c.store_id))).mappings()}
        metrics = {(r["chain"], r["store_id"]): r for r in connection.execute(
            select(store_metrics).where(account.store_condition(store_metrics.c.chain, store_metrics.c.store_id))
        ).mappings()}
        gaps: dict[tuple[str, str], list[Any]] = {}
        for gap in connection.execute(select(seq_gaps).where(
                seq_gaps.c.closed_at.is_(None) & account.store_condition(seq_gaps.c.chain, seq_gaps.c.store_id))):
            gaps.setdefault((gap.chain, gap.store_id), []).append(gap)
        counts = {(r.chain, r.store_id): r for r in connection.execute(
            select(alerts.c.chain, alerts.c.store_id, func.count().label("alerts"),
                   func.max(alerts.c.received_at).label("last"))
            .where(account.store_condition(alerts.c.chain, alerts.c.store_id))
            .group_by(alerts.c.chain, alerts.c.store_id))}
        since = (now_utc() - timedelta(days=max(rules.baseline_days, rules.trailing_days) + 2)).date().isoformat()
        quality = _input_days(connection, account.store_condition(input_days.c.chain, input_days.c.store_id)
                              & (input_days.c.day >= since))
    keys = sorted(set(status) | set(metrics) | set(counts))
    now = now_utc()
    return [_health(k, status.get(k), metrics.get(k), gaps.get(k, []), counts.get(k), stale_after,
                    store_alarms(quality.get(k, {}), _document(metrics[k]["metrics"]) if k in metrics else {}, now,
                                 rules))
            for k in keys]


def _input_days(connection: Connection, where: Any) -> dict[tuple[str, str], dict[str, list[dict[str, Any]]]]:
    """Each store's input days, by input, oldest first."""
    found: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    t = input_days.c
    query = select(input_days).where(where).order_by(t.chain, t.store_id, t.input, t.day)
    for r in connection.execute(query).mappings():
        found.setdefault((r["chain"], r["store_id"]), {}).setdefault(r["input"], []).append({
            "day": r["day"], "runs": int(r["runs"]), "failed": int(r["failed"]), "accepted": int(r["accepted"]),
            "quarantined": int(r["quarantined"]), "reasons": _document(r["reasons"])})
    return found


def data_quality(db: CentralDb, chain: str, store_id: str, days: int, rules: DataQualityRules) -> dict[str, Any]:
    """One store's data-quality board over its last `days` days (see data_quality.store_view)."""
    here = (input_days.c.chain == chain) & (input_days.c.store_id == store_id)
    with db.read() as connection:
        latest = connection.execute(select(store_metrics.c.metrics).where(
            (store_metrics.c.chain == chain) & (store_metrics.c.store_id == store_id))).scalar()
        metrics = _document(latest)
        end = metrics.get("data_quality", {}).get("today") if isinstance(metrics.get("data_quality"), dict) else None
        end_day = _parse_day(end) or now_utc().date()
        since = (end_day - timedelta(days=max(days, rules.baseline_days, rules.trailing_days) + 1)).isoformat()
        history = _input_days(connection, here & (input_days.c.day >= since)).get((chain, store_id), {})
        gaps = [{"day": g.day, "source": g.source, "gaps": int(g.gaps), "seconds": float(g.seconds)}
                for g in connection.execute(select(camera_gap_days).where(
                    (camera_gap_days.c.chain == chain) & (camera_gap_days.c.store_id == store_id)
                    & (camera_gap_days.c.day >= since)).order_by(camera_gap_days.c.day, camera_gap_days.c.source))]
    return {"chain": chain, "store_id": store_id, **store_view(history, gaps, metrics, now_utc(), rules, days)}


def _parse_day(text: Any) -> Any:
    try:
        return datetime.fromisoformat(str(text)).date() if text else None
    except ValueError:
        return None


def footfall(db: CentralDb, chain: str, store_id: str, days: int, bucket: str) -> list[dict[str, Any]]:
    """Entries, exits, transactions and conversion per day (or hour), over the store's last `days` days of data."""
    here = (footfall_hourly.c.chain == chain) & (footfall_hourly.c.store_id == store_id)
    with db.read() as connection:
        latest = connection.execute(select(func.max(footfall_hourly.c.hour)).where(here)).scalar()
        if latest is None:
            return []
        first_day = (datetime.fromisoformat(latest[:10]) - timedelta(days=days - 1)).strftime("%Y-%m-%d")
        period = footfall_hourly.c.hour if bucket == "hour" else func.substr(footfall_hourly.c.hour, 1, 10)
        rows = connection.execute(
            select(period.label("period"), func.sum(footfall_hourly.c.entries).label("entries"),
                   func.sum(footfall_hourly.c.exits).label("exits"),
                   func.sum(footfall_hourly.c.transactions).label("transactions"))
            .where(here & (footfall_hourly.c.hour >= f"{first_day}T00:00")).group_by(period).order_by(period)).all()
    return [{"period": r.period, "entries": int(r.entries), "exits": int(r.exits), "transactions": int(r.transactions),
             "conversion": r.transactions / r.entries if r.entries else None} for r in rows]


# --- model releases and rounds ------------------------------------------------------------------

def releases(db: CentralDb, limit: int = 20) -> list[dict[str, Any]]:
    """The latest recorded federated releases, newest first, each with its rounds."""
    with db.read() as connection:
        found = connection.execute(select(model_releases).order_by(
            model_releases.c.finished_at.desc(), model_releases.c.recorded_at.desc()).limit(limit)).mappings().all()
        versions = [r["version"] for r in found]
        rounds: dict[str, list[dict[str, Any]]] = {v: [] for v in versions}
        for r in connection.execute(select(model_rounds).where(model_rounds.c.version.in_(versions))
                                    .order_by(model_rounds.c.round)).mappings():
            rounds[r["version"]].append({
                "round": r["round"], "trained": json.loads(r["trained"]), "evaluated": json.loads(r["evaluated"]),
                "failures": r["failures"], "train_loss": r["train_loss"], "auc": r["auc"], "loss": r["loss"],
                "per_store_auc": json.loads(r["per_store_auc"]), "skipped": r["skipped"], "epsilon": r["epsilon"],
                "delta": r["delta"], "wall_seconds": r["wall_seconds"], "train_seconds": r["train_seconds"],
                "overhead_seconds": r["overhead_seconds"]})
    result = []
    for r in found:
        privacy = json.loads(r["privacy"]) if r["privacy"] else None
        result.append({"version": r["version"], "chain": r["chain"], "as_of": r["as_of"],
                       "finished_at": r["finished_at"], "strategy": r["strategy"], "auc": r["auc"],
                       "stores": json.loads(r["stores"]), "privacy": privacy,
                       "epsilon": privacy.get("epsilon") if privacy else None, "rounds": rounds[r["version"]]})
    return result


# --- outcomes: uplift and decay -----------------------------------------------------------------

def _known(account: Account, chain: str | None, store_id: str | None) -> Any:
    condition = alert_work.c.result.in_(RESULTS) & account.store_condition(alerts.c.chain, alerts.c.store_id)
    if chain is not None:
        condition = condition & (alerts.c.chain == chain)
    if store_id is not None:
        condition = condition & (alerts.c.store_id == store_id)
    return condition


def outcome_groups(db: CentralDb, account: Account, chain: str | None = None,
                   store_id: str | None = None) -> list[OutcomeGroup]:
    """Alerts with a known result, counted by level, action, control and result, with their CLV and cost sums."""
    cost = case((alerts.c.control == True, 0.0),  # noqa: E712 (SQL, not Python)
                else_=func.coalesce(alert_work.c.cost, alerts.c.action_cost_cap))
    query = (select(alerts.c.level, alerts.c.action, alerts.c.control, alert_work.c.result, func.count(),
                    func.sum(alerts.c.clv_estimate), func.sum(cost))
             .select_from(alerts.join(alert_work, WORK_OF_ALERT))
             .where(_known(account, chain, store_id))
             .group_by(alerts.c.level, alerts.c.action, alerts.c.control, alert_work.c.result))
    with db.read() as connection:
        rows = connection.execute(query).all()
    return [OutcomeGroup(level, action, bool(control), result, int(n), float(clv or 0), float(spent or 0))
            for level, action, control, result, n, clv, spent in rows]


def decay_periods(db: CentralDb, account: Account, chain: str | None = None,
                  store_id: str | None = None) -> list[PeriodCounts]:
    """Control alerts at orange or above with a known result, per month of as_of."""
    month = func.substr(alerts.c.as_of, 1, 7)
    churned = func.sum(case((alert_work.c.result == "churned", 1), else_=0))
    query = (select(month, func.count(), churned, func.sum(alerts.c.risk_score))
             .select_from(alerts.join(alert_work, WORK_OF_ALERT))
             .where(and_(_known(account, chain, store_id), alerts.c.control == True,  # noqa: E712
                         alerts.c.level.in_(DECAY_LEVELS)))
             .group_by(month))
    with db.read() as connection:
        rows = connection.execute(query).all()
    return [PeriodCounts(period, int(n), int(c or 0), float(s or 0)) for period, n, c, s in rows]
