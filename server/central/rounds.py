"""Federated model releases and their rounds, taken from the federation's summary (federation.json).

`churn-server federate --central-db` records them when a run ends, and
`churn-server record-rounds` imports a summary written earlier. A release is
keyed by its version (which names the as-of day, the round count and the
settings' fingerprint) and a round by (version, round), both inserted with
ON CONFLICT DO NOTHING: importing the same summary twice, or a summary whose
rounds are already there, changes nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from ..errors import SummaryError
from .database import CentralDb, upsert, utc_now_iso
from .tables import model_releases, model_rounds


@dataclass(frozen=True)
class RecordedRounds:
    version: str
    chain: str
    release_new: bool
    rounds_new: int
    rounds_total: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _number(value: Any) -> float | None:
    """A finite float, or None (a round without evaluation reports NaN; JSON and SQLite cannot keep it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _mapping(document: dict[str, Any], key: str) -> dict[str, Any]:
    """A JSON object inside the summary, or {} when it is absent, null or not an object."""
    value = document.get(key)
    return value if isinstance(value, dict) else {}


def _finite(mapping: dict[str, Any]) -> dict[str, float | None]:
    return {str(k): _number(v) for k, v in mapping.items()}


def read_summary_file(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise SummaryError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise SummaryError(f"{path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise SummaryError(f"{path} is not a federation summary (not a JSON object)")
    return document


def summary_rows(summary: dict[str, Any], now: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The release row and its round rows from a summary; a summary missing its parts is refused by name."""
    manifest, rounds = summary.get("manifest"), summary.get("rounds")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("version"), str):
        raise SummaryError("the summary has no manifest with a version (is it a federation.json?)")
    if not isinstance(rounds, list) or not all(isinstance(r, dict) and isinstance(r.get("round"), int) for r in rounds):
        raise SummaryError("the summary's rounds must be a list of objects with a round number")
    version = manifest["version"]
    training, settings = _mapping(manifest, "training"), _mapping(summary, "settings")
    privacy = _mapping(summary, "privacy")
    release = {
        "version": version, "chain": str(settings.get("chain") or "default"),
        "as_of": summary.get("as_of"), "finished_at": summary.get("finished_at"),
        "strategy": training.get("strategy") or settings.get("strategy"), "rounds": len(rounds),
        "auc": _number(_mapping(manifest, "metrics").get("auc")),
        "stores": json.dumps(sorted({str(s) for r in rounds for s in r.get("trained") or []})),
        "privacy": json.dumps(_finite(privacy)) if privacy else None,
        "manifest": json.dumps(manifest, default=str), "recorded_at": now,
    }
    return release, [_round_row(version, entry, now) for entry in rounds]


def round_cost(entry: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    """(wall seconds, the slowest store's training seconds, overhead seconds) of a summary's round; the
    slowest store is found among the per-store figures when the summary predates the explicit one."""
    timing = _mapping(entry, "timing")
    wall, slowest = _number(timing.get("round_wall_seconds")), _number(timing.get("slowest_train_seconds"))
    if slowest is None:
        reported = [v for v in map(_number, _mapping(timing, "train_seconds").values()) if v is not None]
        slowest = max(reported, default=None)
    overhead = max(0.0, wall - slowest) if wall is not None and slowest is not None else None
    return wall, slowest, overhead


def _round_row(version: str, entry: dict[str, Any], now: str) -> dict[str, Any]:
    metrics, privacy = _finite(_mapping(entry, "metrics")), _mapping(entry, "privacy")
    wall, slowest, overhead = round_cost(entry)
    return {
        "wall_seconds": wall, "train_seconds": slowest, "overhead_seconds": overhead,
        "version": version, "round": entry["round"],
        "trained": json.dumps([str(s) for s in entry.get("trained") or []]),
        "evaluated": json.dumps([str(s) for s in entry.get("evaluated") or []]),
        "failures": int(entry.get("failures") or 0), "train_loss": _number(entry.get("train_loss")),
        "auc": metrics.get("auc"), "loss": metrics.get("loss"), "metrics": json.dumps(metrics),
        "per_store_auc": json.dumps(_finite(_mapping(entry, "per_store_auc"))),
        "skipped": str(entry.get("skipped") or ""),
        "epsilon": _number(privacy.get("epsilon")), "delta": _number(privacy.get("delta")), "recorded_at": now,
    }


def record_summary(connection: Connection, summary: dict[str, Any], now: str) -> RecordedRounds:
    """Store a federation summary's release and rounds (in the caller's transaction); what is there stays."""
    release, rounds = summary_rows(summary, now)
    release_new = bool(upsert(connection, model_releases, release, ("version",)))
    new = sum(upsert(connection, model_rounds, row, ("version", "round")) for row in rounds)
    return RecordedRounds(release["version"], release["chain"], release_new, new, len(rounds))


def record_federation(db: CentralDb, summary: dict[str, Any]) -> RecordedRounds:
    """Record a summary in one transaction."""
    with db.write() as connection:
        return record_summary(connection, summary, utc_now_iso())
