"""A small chain's central database, written the way the aggregator writes it, and its console accounts."""

from __future__ import annotations

import json
from typing import Any

from server.central import open_central_db, record_metrics, record_status, store_alerts, utc_now_iso
from server.central.rounds import record_summary
from server.console.accounts import create_account, parse_store_key
from tests.services import churn_alert

PASSWORD = "correct horse battery staple"
USERS = {  # username: (role, stores)
    "ada": ("admin", []),
    "vera": ("viewer", []),
    "sam": ("staff", ["acme/s1"]),
    "sol": ("staff", ["acme/s2"]),
}
ACTIONS = {
    "yellow": ("member_offer", "member-only offer", 3.0),
    "orange": ("callback", "phone call-back", 6.0),
    "red": ("service_plan", "one-to-one service plan", 20.0),
    "purple": ("manager_contact", "store manager / executive contact", 40.0),
}
# (chain, store, seq, level, score, control)
ALERTS = [
    ("acme", "s1", 1, "purple", 88, False), ("acme", "s1", 2, "red", 72, False), ("acme", "s1", 3, "red", 70, True),
    ("acme", "s1", 4, "red", 66, False), ("acme", "s1", 5, "orange", 52, False), ("acme", "s1", 6, "orange", 48, True),
    ("acme", "s1", 7, "red", 64, False), ("acme", "s1", 8, "orange", 45, False),
    ("acme", "s2", 1, "red", 78, False), ("acme", "s2", 2, "red", 74, True), ("acme", "s2", 3, "red", 69, True),
    ("acme", "s2", 4, "orange", 58, False), ("acme", "s2", 5, "purple", 91, False), ("acme", "s2", 6, "red", 62, True),
    ("acme", "s2", 9, "orange", 50, False),  # 7 and 8 never arrived: a gap
    ("bravo", "s1", 1, "orange", 55, False), ("bravo", "s1", 2, "yellow", 35, False),
]
RED_TREATED = ["acme-s1-000002", "acme-s1-000004", "acme-s1-000007", "acme-s2-000001"]
RED_CONTROL = ["acme-s1-000003", "acme-s2-000002", "acme-s2-000003", "acme-s2-000006"]


def alert_document(chain: str, store_id: str, seq: int, level: str, score: int, control: bool,
                   **extra: Any) -> dict[str, Any]:
    action, label, cap = ACTIONS[level]
    return churn_alert(seq, store_id, chain, level=level, risk_score=score, control=control,
                       action=None if control else action, action_label=None if control else label,
                       clv_estimate=800.0, action_cost_cap=cap * 2, **extra)


def store_documents(connection: Any, documents: list[dict[str, Any]]) -> None:
    by_store: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for document in documents:
        by_store.setdefault((document["chain"], document["store_id"]), []).append(document)
    for (chain, store_id), batch in by_store.items():
        store_alerts(connection, chain, store_id, [(d, json.dumps(d)) for d in batch], utc_now_iso())


def footfall_hours(day: str, entries: int, transactions: int) -> list[dict[str, Any]]:
    return [{"hour": f"{day}T{hour:02d}:00", "entries": entries, "exits": entries, "transactions": transactions}
            for hour in range(9, 19)]


FEDERATION_SUMMARY: dict[str, Any] = {
    "as_of": "2026-02-28", "finished_at": "2026-03-01T02:00:00Z", "settings": {"chain": "acme", "strategy": "fedavg"},
    "rounds": [
        {"round": n, "trained": ["s1", "s2"] if n != 2 else ["s1"], "evaluated": ["s1", "s2"], "failures": int(n == 2),
         "train_loss": 0.5 - n / 20, "metrics": {"auc": auc, "loss": 0.3 - n / 50},
         "per_store_auc": {"s1": auc - 0.01, "s2": auc + 0.01}, "skipped": "",
         "privacy": {"epsilon": 1.5 * n, "delta": 1e-5, "releases": n}, "timing": timing}
        for n, auc, timing in (
            (1, 0.81, {"round_wall_seconds": 9.5, "slowest_train_seconds": 6.0, "train_seconds": {"s1": 6.0, "s2": 4.0}}),
            (2, 0.84, {"round_wall_seconds": 12.0, "train_seconds": {"s1": 5.0}}),  # a summary of an earlier release
            (3, 0.86, {}))],
    "manifest": {"version": "fed-2026-02-28-r3-abcd1234", "metrics": {"auc": 0.87},
                 "training": {"strategy": "fedavg", "stores": ["s1", "s2"]}},
    "privacy": {"epsilon": 4.5, "delta": 1e-5, "releases": 3, "noise_multiplier": 1.0, "clipping_norm": 1.0},
}


def populate(target: str) -> None:
    """Alerts of three stores in two chains, status, metrics with footfall, one federated release, and accounts."""
    now = utc_now_iso()
    with open_central_db(target) as db:
        with db.write() as connection:
            store_documents(connection, [alert_document(*spec) for spec in ALERTS])
            record_status(connection, "acme", "s1", {
                "schema": "retail.store-status/1", "state": "online", "chain": "acme", "store_id": "s1", "at": now,
                "outbox_unacked": 3, "last_publish_at": now, "model_version": "fed-2026-02-28-r3-abcd1234",
                "cameras": {"door": "streaming"}, "alarms": {}}, now, retained=False)
            record_status(connection, "acme", "s2", {
                "schema": "retail.store-status/1", "state": "offline", "chain": "acme", "store_id": "s2",
                "at": "2026-03-01T05:00:00.000000Z", "reason": "connection lost"}, now, retained=False)
            record_metrics(connection, "acme", "s2", {
                "schema": "retail.store-metrics/1", "chain": "acme", "store_id": "s2", "at": now,
                "model_version": "central-2026-02-01", "cameras": {"door": "stalled"},
                "alarms": {"disk": "120 MB free"}}, now)
            record_metrics(connection, "acme", "s1", {
                "schema": "retail.store-metrics/1", "chain": "acme", "store_id": "s1", "at": now,
                "footfall_hourly": footfall_hours("2026-02-27", 40, 10) + footfall_hours("2026-02-28", 50, 20)}, now)
            record_summary(connection, FEDERATION_SUMMARY, now)
        for username, (role, stores) in USERS.items():
            create_account(db, username, PASSWORD, role, [parse_store_key(s) for s in stores])
