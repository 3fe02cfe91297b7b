"""What the demo prints at the end: rich tables built from plain data (no I/O here)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.table import Table

LEVELS = ("green", "yellow", "orange", "red", "purple")


@dataclass
class StoreOutcome:
    store_id: str
    on_box: int
    unacked: int
    state: str
    model_version: str | None
    camera: tuple[int, int] | None  # entries, exits counted from the clip
    camera_truth: tuple[int, int]


def _auc(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def rounds_table(federation: dict[str, Any], local: dict[str, Any], central: dict[str, Any]) -> Table:
    """AUC per round of the real federation, against each store alone and all data pooled: a row per store."""
    rounds = federation["rounds"]
    stores = sorted({s for r in rounds for s in r.get("per_store_auc", {})})
    alone = {s["store_id"]: s["auc"] for s in local.get("per_store", [])}
    pooled = {s["store_id"]: s["auc"] for s in central.get("per_store", [])}
    epsilons = [(r.get("privacy") or {}).get("epsilon") for r in rounds]
    privacy = f"privacy budget ε = {epsilons[-1]:.1f}" if epsilons and epsilons[-1] else "no differential privacy"
    table = Table(title="Held-out AUC: federated rounds vs each store alone vs all data pooled",
                  caption=f"federated: each store's newest labelled cutoff, {privacy}; alone and pooled: "
                          "backtests on the customers active 91 days before the end, churn in the next 90 days")
    table.add_column("store")
    for entry in rounds:
        table.add_column(f"round {entry['round']}", justify="right")
    table.add_column("alone", justify="right")
    table.add_column("pooled", justify="right")
    for store in stores:
        table.add_row(store, *(_auc(r.get("per_store_auc", {}).get(store)) for r in rounds),
                      _auc(alone.get(store)), _auc(pooled.get(store)))
    table.add_row("all stores", *(_auc(r.get("metrics", {}).get("auc")) for r in rounds), _auc(local.get("auc")),
                  _auc(central.get("auc")), style="bold")
    table.add_row("stores trained", *(str(len(r.get("trained", []))) for r in rounds), "-", "-", style="dim")
    table.add_row("seconds: round / slowest store's training", *(_seconds(r.get("timing", {})) for r in rounds), "-", "-",
                  style="dim")
    return table


def _seconds(timing: dict[str, Any]) -> str:
    wall, slowest = timing.get("round_wall_seconds"), timing.get("slowest_train_seconds")
    return f"{wall:.0f} / {slowest:.0f}" if isinstance(wall, (int, float)) and isinstance(slowest, (int, float)) else "-"


def alerts_table(alerts: Sequence[dict[str, Any]], store_ids: Sequence[str]) -> Table:
    per_store: dict[str, Counter[str]] = {s: Counter() for s in store_ids}
    control: Counter[str] = Counter()
    for alert in alerts:
        per_store.setdefault(alert["store_id"], Counter())[alert["level"]] += 1
        control[alert["store_id"]] += bool(alert.get("control"))
    totals = Counter(a["level"] for a in alerts)
    levels = [level for level in LEVELS if totals[level] or level in ("orange", "red", "purple")]
    table = Table(title="Alerts in the console, per level and store")
    table.add_column("store")
    for level in levels:
        table.add_column(level, justify="right")
    table.add_column("total", justify="right")
    table.add_column("control group", justify="right")
    for store, counts in sorted(per_store.items()):
        table.add_row(store, *(str(counts.get(level, 0)) for level in levels), str(sum(counts.values())),
                      str(control[store]))
    table.add_row("all", *(str(totals.get(level, 0)) for level in levels), str(len(alerts)),
                  str(sum(control.values())), style="bold")
    return table


def delivery_table(outcomes: Sequence[StoreOutcome], in_console: dict[str, int]) -> Table:
    versions = sorted({o.model_version or "none" for o in outcomes})
    table = Table(title="Delivery and store health", caption=f"active model: {', '.join(versions)}")
    for column in ("store", "state", "alerts on the box", "in the console", "waiting for ack", "camera in/out",
                   "clip truth"):
        table.add_column(column, justify="left" if column in ("store", "state") else "right")
    for o in outcomes:
        camera = f"{o.camera[0]}/{o.camera[1]}" if o.camera else "-"
        table.add_row(o.store_id, o.state, str(o.on_box), str(in_console.get(o.store_id, 0)), str(o.unacked), camera,
                      f"{o.camera_truth[0]}/{o.camera_truth[1]}")
    return table


def summary(federation: dict[str, Any], local: dict[str, Any], central: dict[str, Any],
            alerts: Sequence[dict[str, Any]], outcomes: Sequence[StoreOutcome]) -> Group:
    in_console = Counter(a["store_id"] for a in alerts)
    return Group(rounds_table(federation, local, central), alerts_table(alerts, [o.store_id for o in outcomes]),
                 delivery_table(outcomes, dict(in_console)))
