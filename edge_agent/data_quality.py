"""What each input brought in lately, per store-local day: the figures of the central data-quality board.

Built from the store database on every metrics message: per input (POS,
customer events, identities, footfall counter exports), each day's ingest
runs, the rows accepted and the rows newly quarantined by reason, and the
time of the input's last finished export; and the camera's gaps per day.
Counts and times only: nothing about any customer leaves the box.

A row already in quarantine that comes again in a re-sent file is not counted
again, just as a transaction already stored is not accepted again: both
counts are of rows new to the box, so a re-sent file changes neither.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from typing import Any

from models.days import SECONDS_PER_DAY, day_date, epoch_day
from models.payloads import DATA_INPUTS, OTHER_REASONS, QUALITY_MAX_REASONS

from .store_db import StoreDatabase
from .store_queries import runs
from .store_queries.footfall import camera_gaps_per_day

DATA_QUALITY_DAYS = 14  # the central side keeps every day it was sent: this only needs to outlast lost messages
_UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _local_day(utc_text: str, store: StoreDatabase) -> str | None:
    try:
        moment = datetime.fromisoformat(utc_text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(store.zone).date().isoformat()


def _top_reasons(reasons: Counter[str]) -> dict[str, int]:
    """At most QUALITY_MAX_REASONS, the largest first; the rest summed under OTHER_REASONS."""
    if len(reasons) <= QUALITY_MAX_REASONS:
        return dict(sorted(reasons.items()))
    kept = reasons.most_common(QUALITY_MAX_REASONS - 1)
    return {**dict(sorted(kept)), OTHER_REASONS: sum(reasons.values()) - sum(n for _, n in kept)}


def _quarantined(store: StoreDatabase, since_utc: str) -> dict[int, Counter[str]]:
    """Rows put in quarantine by each run started since `since_utc`, by reason."""
    found: dict[int, Counter[str]] = defaultdict(Counter)
    for run_id, reason, count in runs.quarantined_by_run_since(store, since_utc):
        found[run_id][reason] = count
    return found


def _camera_gaps(store: StoreDatabase, first_day: date) -> list[dict[str, Any]]:
    since = epoch_day(first_day) * SECONDS_PER_DAY  # camera_gaps times are store-local seconds
    rows = camera_gaps_per_day(store, since)
    return [{"day": day_date(day).isoformat(), "source": source, "gaps": int(count),
             "seconds": round(float(seconds), 1)} for day, source, count, seconds in rows]


def data_quality(store: StoreDatabase, days: int = DATA_QUALITY_DAYS, now: datetime | None = None) -> dict[str, Any]:
    """The `data_quality` of a `retail.store-metrics/1` message (see models/payloads/store_health.py) for the last `days`
    store-local days, today included."""
    today = (now or datetime.now(timezone.utc)).astimezone(store.zone).date()
    first_day = today - timedelta(days=days - 1)
    local_midnight = datetime.combine(first_day, datetime.min.time(), tzinfo=store.zone)
    since_utc = local_midnight.astimezone(timezone.utc).strftime(_UTC_FORMAT)
    quarantined = _quarantined(store, since_utc)
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    for run_id, name, started_at, status, accepted in runs.runs_since(store, since_utc):
        day = _local_day(started_at, store)
        if day is None or day < first_day.isoformat():
            continue
        entry = totals.setdefault((name, day), {"runs": 0, "failed": 0, "accepted": 0, "reasons": Counter()})
        entry["runs"] += 1
        entry["failed"] += status == "failed"
        entry["accepted"] += int(accepted)
        entry["reasons"].update(quarantined.get(run_id, Counter()))
    last = runs.last_exports(store)
    inputs = {}
    for name in DATA_INPUTS:  # an input outside the contract (none is recorded today) is not reported
        daily = [{"day": day, "runs": e["runs"], "failed": e["failed"], "accepted": e["accepted"],
                  "quarantined": sum(e["reasons"].values()), "reasons": _top_reasons(e["reasons"])}
                 for (n, day), e in sorted(totals.items()) if n == name]
        inputs[name] = {"last_export_at": last.get(name), "daily": daily}
    return {"today": today.isoformat(), "days": days, "inputs": inputs, "camera_gaps": _camera_gaps(store, first_day)}
