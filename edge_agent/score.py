"""Scoring the store's customers with the released model and recording the alerts.

Features and risk come from the shared `models` package (pure numpy); the
model runs in onnxruntime. One scoring run, its alerts, its overflow summary
and their outbox rows are committed in a single transaction, so a crash leaves
either the whole run or nothing, and nothing recorded can miss the outbox.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from models.alerting import (
    AlertPolicy, PreviousAlert, Selection, SentSoFar, in_control_group, pseudonymise, select_alerts,
)
from models.days import day_after, epoch_day
from models.events import recent_events
from models.features import build_features
from models.payloads import (
    ALERT_SCHEMA, OVERFLOW_SCHEMA, RECENT_EVENT_FIELDS, RECENT_EVENTS_MAX, AlertOverflow, ChurnAlert,
)
from models.risk import RiskConfig
from models.scoring import Budgets, ScoredCustomer, score_table
from models.store_data import DAY, StoreData, load_store_data

from .config import ConfigError, load_policy_tables
from .onnx_model import OnnxChurnModel
from .outbox import Outbox
from .policy_sections import AlertsSection, RiskSection
from .store_db import StoreDatabase, utc_now_iso, write_transaction
from .store_queries import alerts as alert_queries
from .store_queries.sales import load_customer_keys

DEFAULT_LOOKBACK_DAYS = 365
RECENT_EVENT_DAYS = 90  # how far back an alert shows the customer's own events (at most RECENT_EVENTS_MAX)


class ScoringError(Exception):
    """Scoring cannot run as asked (bad date, bad risk configuration...)."""


@dataclass(frozen=True)
class ScoringPolicy:
    """Everything configurable about turning scores into alerts."""

    risk: RiskConfig = field(default_factory=RiskConfig)
    alerts: AlertPolicy = field(default_factory=AlertPolicy)
    pseudonymise_key: bytes | None = None


@dataclass
class ScoreResult:
    as_of: str
    model_version: str
    scored: int
    alerts: int = 0  # new alerts recorded by this run
    levels: dict[str, int] = field(default_factory=dict)  # early-warning levels of the customers still buying
    lapsed: int = 0  # lapsed by their own rhythm: counted apart from the levels; the win-back list draws from them
    winbacks: int = 0  # new win-back alerts (included in `alerts`)
    cooled: int = 0  # not alerted again within the cooldown
    overflow: int = 0  # beyond today's cap: summarised in one message
    deferred: int = 0  # not recorded because the outbox is over its disk quota
    quota_alarm: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def alert_id_for(chain: str, store_id: str, customer_ref: str, as_of: str) -> str:
    """Stable across resends and re-runs: one alert per customer per as-of date."""
    return hashlib.sha256(f"{chain}\x1f{store_id}\x1f{customer_ref}\x1f{as_of}".encode()).hexdigest()[:32]


def alert_payload(store: StoreDatabase, alert: ScoredCustomer, *, customer_ref: str, alert_id: str, seq: int,
                  as_of: str, model_version: str, created_at: str, control: bool,
                  events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The churn alert as published (contract `retail.churn-alert/1`), built by its model: one that breaks
    the contract raises PayloadError here and never reaches the outbox. `events` are the customer's recent
    events as models.events.recent_events gives them (kind, days ago, value: nothing else)."""
    return ChurnAlert.build(
        schema=ALERT_SCHEMA, alert_id=alert_id, seq=seq, chain=store.chain, store_id=store.store_id,
        customer_ref=customer_ref, as_of=as_of, risk_score=alert.risk_score, level=alert.level,
        action=None if control else alert.action, action_label=None if control else alert.action_label,
        control=control, kind=alert_kind(alert), days_silent=alert.days_silent, value_at_risk=alert.value_at_risk,
        reasons=alert.reasons,
        recent_events=[{k: e[k] for k in RECENT_EVENT_FIELDS} for e in (events or [])][:RECENT_EVENTS_MAX],
        clv_estimate=alert.clv_estimate, action_cost_cap=alert.action_cost_cap, model_version=model_version,
        created_at=created_at,
    )


def alert_kind(alert: ScoredCustomer) -> str:
    """Which list the alert belongs to: an early warning, or a win-back for a customer already lapsed."""
    return "win_back" if alert.lapsed else "early_warning"


def _sent_so_far(conn: Any, as_of: str) -> SentSoFar:
    """Alerts already recorded today and in the 6 days before, per list (the weekly budgets)."""
    week_start = (date.fromisoformat(as_of) - timedelta(days=6)).isoformat()
    rows = alert_queries.alerts_per_kind_between(conn, week_start, as_of)
    today = alert_queries.alerts_on(conn, as_of)
    return SentSoFar(today, rows.get("early_warning", 0), rows.get("win_back", 0))


def customer_events(data: StoreData, bound_day: int, candidates: list[ScoredCustomer]
                    ) -> dict[str, list[dict[str, Any]]]:
    """Each candidate's recent events (by customer id), newest first, counted in days as the reasons count."""
    if data.events.empty:
        return {}
    index = {str(customer_id): i for i, customer_id in enumerate(data.customer_ids)}
    return {c.customer_id: recent_events(data, bound_day, index[c.customer_id], RECENT_EVENT_DAYS, RECENT_EVENTS_MAX)
            for c in candidates if c.customer_id in index}


def record_scoring(store: StoreDatabase, result: ScoreResult, candidates: list[ScoredCustomer], policy: ScoringPolicy,
                   events: dict[str, list[dict[str, Any]]] | None = None) -> None:
    """One transaction: the run, its new alerts, the overflow summary and their outbox rows.

    `events`: each candidate's recent events by customer id (see customer_events)."""
    now = utc_now_iso()
    conn = store.conn
    as_of_day = epoch_day(result.as_of)
    refs = {c.customer_id: pseudonymise(c.customer_id, policy.pseudonymise_key) for c in candidates}
    outbox = Outbox(store)
    with write_transaction(conn):
        run_id = alert_queries.start_score_run(store, {
            "as_of": result.as_of, "model_version": result.model_version, "started_at": now, "finished_at": now,
            "scored": result.scored, "levels": json.dumps(result.levels)})
        if outbox.unacked_bytes() >= policy.alerts.quota_bytes:
            result.quota_alarm, result.deferred = True, len(candidates)
            alert_queries.set_run_alerts(conn, run_id, 0)
            return
        previous = {refs[c.customer_id]: p for c in candidates if (p := _previous_alerts_for(conn, refs[c.customer_id]))}
        keyed = [_with_ref(c, refs[c.customer_id]) for c in candidates]
        selection: Selection = select_alerts(keyed, previous, _sent_so_far(conn, result.as_of), as_of_day,
                                             policy.alerts)
        seq = outbox.last_seq()
        keys = load_customer_keys(conn)
        originals = {refs[c.customer_id]: c.customer_id for c in candidates}
        for alert in selection.alerts:
            alert_id = alert_id_for(store.chain, store.store_id, alert.customer_id, result.as_of)
            if alert_queries.alert_exists(conn, alert_id):
                continue  # this customer was alerted today already (a re-run)
            seq += 1
            control = in_control_group(alert_id, alert.level, policy.alerts)
            document = alert_payload(store, alert, customer_ref=alert.customer_id, alert_id=alert_id, seq=seq,
                                     as_of=result.as_of, model_version=result.model_version, created_at=now,
                                     control=control, events=(events or {}).get(originals[alert.customer_id]))
            payload = outbox.append(seq, alert_id, "alert", document, now)
            alert_queries.insert_alert(store, {
                "alert_id": alert_id, "seq": seq, "run_id": run_id,
                "customer_key": keys.get(originals[alert.customer_id]), "customer_ref": alert.customer_id, "as_of": result.as_of, "risk_score": alert.risk_score,
                "level": alert.level, "action": document["action"], "payload": payload, "created_at": now,
                "control": int(control), "kind": alert_kind(alert)})
            result.alerts += 1
            result.winbacks += int(alert.lapsed)
        result.cooled = selection.cooled
        # named by its day and customers: re-running the same scoring summarises nothing twice,
        # and anyone new held back by a cap or a budget is summarised, never dropped silently
        held_back = "\x1f".join(sorted(o.customer_id for o in selection.overflow))
        alert_id = hashlib.sha256(
            f"{store.chain}\x1f{store.store_id}\x1foverflow\x1f{result.as_of}\x1f{held_back}".encode()).hexdigest()[:32]
        result.overflow = len(selection.overflow)
        if selection.overflow and not outbox.has(alert_id):
            seq += 1
            document = AlertOverflow.build(
                schema=OVERFLOW_SCHEMA, alert_id=alert_id, seq=seq, chain=store.chain, store_id=store.store_id,
                as_of=result.as_of, suppressed=len(selection.overflow),
                customers=[{"customer_ref": o.customer_id, "level": o.level, "risk_score": o.risk_score}
                           for o in selection.overflow],
                model_version=result.model_version, created_at=now,
            )
            outbox.append(seq, alert_id, "overflow", document, now)
        alert_queries.set_run_alerts(conn, run_id, result.alerts)


def _previous_alerts_for(conn: Any, customer_ref: str) -> PreviousAlert | None:
    row = alert_queries.last_alert_for(conn, customer_ref)
    return PreviousAlert(row[0], epoch_day(row[1])) if row else None


def _with_ref(candidate: ScoredCustomer, ref: str) -> ScoredCustomer:
    return ScoredCustomer(**{**candidate.__dict__, "customer_id": ref})


def today_in(store: StoreDatabase) -> date:
    return datetime.now(store.zone).date()


def score_store(
    store: StoreDatabase,
    model: OnnxChurnModel,
    *,
    as_of: date | None = None,
    policy: ScoringPolicy | None = None,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
) -> ScoreResult:
    """Score customers active in the lookback window at the end of `as_of` (default: today)."""
    if store.path is None:
        raise ScoringError("scoring needs a store database on disk")
    policy = policy or ScoringPolicy()
    day = as_of or today_in(store)
    bound_day = day_after(day)  # the day after as-of, at midnight
    data = load_store_data(store.path).until(bound_day * DAY)
    table = build_features(data, bound_day, lookback_days)
    budgets = Budgets(policy.alerts.weekly_budget, policy.alerts.winback_weekly_budget)
    scored = score_table(table, model, policy.risk, model.horizon_days, budgets)
    result = ScoreResult(day.isoformat(), model.version, len(table), levels=scored.level_counts(), lapsed=scored.lapsed)
    record_scoring(store, result, scored.alerts, policy, customer_events(data, bound_day, scored.alerts))
    return result


def parse_as_of(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ScoringError(f"--as-of {text!r} is not a date (YYYY-MM-DD)") from None


def load_scoring_policy(path: Path | None) -> ScoringPolicy:
    """A TOML file with [risk] and [alerts] tables, read as the daemon reads them (or the defaults)."""
    if path is None:
        return ScoringPolicy()
    try:
        tables = load_policy_tables(path)
    except ConfigError as exc:
        raise ScoringError(str(exc)) from None
    return scoring_policy(tables.risk, tables.alerts)


def scoring_policy(risk: RiskSection, alerts: AlertsSection) -> ScoringPolicy:
    """The policy from loaded sections: the daemon's and `score --policy`'s, so both read the same key file."""
    try:
        key = alerts.pseudonymise_key()
    except OSError as exc:
        raise ScoringError(f"alerts.pseudonymise_key_file: {exc}") from exc
    return ScoringPolicy(risk.policy(), alerts.policy(), key)
