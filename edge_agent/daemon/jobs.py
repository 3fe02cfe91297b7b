"""The daemon's periodic work, one job each: read the drop folder, score on schedule, apply retention.

Each job's `step(store)` does one unit of work on the thread's own store connection
and returns; the supervisor's loop calls it every few seconds, beats its heartbeat
and turns whatever it raises into that loop's alarm.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from models.days import SECONDS_PER_DAY, local_seconds

from ..config import EdgeConfig
from ..ingest import IngestCounts
from ..outbox import Outbox
from ..score import ScoringPolicy, score_store
from ..store_db import StoreDatabase, write_transaction
from ..store_queries.alerts import last_score_run_started
from ..store_queries.events import delete_events_before
from ..store_queries.sales import delete_transactions_before
from . import memory
from .dropbox import Dropbox
from .health import DaemonMetrics, Health
from .schedule import next_run

log = logging.getLogger("edge_agent.daemon")


class DropboxJob:
    """Ingest what has settled in the drop folder; count it for /metrics."""

    def __init__(self, dropbox: Dropbox, metrics: DaemonMetrics, health: Health):
        self.dropbox, self.metrics, self.health = dropbox, metrics, health

    def step(self, store: StoreDatabase) -> None:
        totals = self.dropbox.totals
        before = (totals.by_input.get("pos", IngestCounts()).accepted, totals.rows.quarantined)
        if self.dropbox.poll(store):
            self.metrics.transactions.inc(totals.by_input.get("pos", IngestCounts()).accepted - before[0])
            self.metrics.quarantined.inc(totals.rows.quarantined - before[1])
            memory.trim()
        self.health.beat("dropbox", 600, files_done=totals.files_done, files_failed=totals.files_failed)


def last_score_run(store: StoreDatabase) -> datetime | None:
    """When the newest scoring run started, as an aware datetime."""
    started = last_score_run_started(store.conn)
    return datetime.fromisoformat(started.replace("Z", "+00:00")) if started else None


class ScoringJob:
    """Score every customer with the active model when the schedule says so, then wake the uplink."""

    def __init__(self, config: EdgeConfig, policy: ScoringPolicy, metrics: DaemonMetrics, health: Health,
                 wake_uplink: threading.Event):
        self.config, self.policy, self.metrics, self.health = config, policy, metrics, health
        self.wake_uplink = wake_uplink
        self.last: dict[str, Any] = {}  # the newest run's summary, for /health and the status

    def step(self, store: StoreDatabase) -> None:
        scoring = self.config.scoring
        due = next_run(datetime.now(timezone.utc), store.zone, scoring.daily_at if scoring.every_minutes is None else None,
                       scoring.every_minutes, last_score_run(store))
        if due > datetime.now(timezone.utc):
            return
        current = self.config.models_dir / "current"
        if not current.exists():
            self.health.beat("scoring", 600, state="waiting for a model")
            return
        from ..onnx_model import OnnxChurnModel  # onnxruntime: loaded once a model exists

        result = score_store(store, OnnxChurnModel(current), policy=self.policy, lookback_days=scoring.lookback_days)
        self.last = result.as_dict()
        self.metrics.alerts.inc(result.alerts)
        memory.trim()  # the year of transactions scoring loaded is freed: give it back
        if result.quota_alarm:
            self.health.raise_alarm("outbox_quota", f"outbox over quota: {result.deferred} alerts deferred")
        else:
            self.health.clear_alarm("outbox_quota")
        log.info("scored %d customers, %d new alerts", result.scored, result.alerts, extra=result.as_dict())
        self.wake_uplink.set()


class RetentionJob:
    """Once a day at `run_at`: raw transactions and customer events past the horizon go, acknowledged outbox
    rows go. A marker file in the run folder remembers the last run across restarts."""

    def __init__(self, config: EdgeConfig, run_dir: Path):
        self.retention, self.marker = config.retention, run_dir / "retention.last"

    def step(self, store: StoreDatabase) -> None:
        last = datetime.fromtimestamp(float(self.marker.read_text()), timezone.utc) if self.marker.exists() else None
        now = datetime.now(timezone.utc)
        if next_run(now, store.zone, self.retention.run_at, None, last) > now:
            return
        local_now = datetime.now(store.zone).replace(tzinfo=None)
        cutoff = local_seconds(local_now) - self.retention.transactions_days * SECONDS_PER_DAY
        with write_transaction(store.conn):
            deleted = delete_transactions_before(store.conn, cutoff)
            events = delete_events_before(store.conn, cutoff)
        pruned = Outbox(store).prune_acked(self.retention.acked_outbox_days)
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.write_text(str(time.time()))
        log.info("retention: %d transactions, %d customer events and %d acknowledged outbox rows removed", deleted,
                 events, pruned, extra={"deleted_transactions": deleted, "deleted_events": events,
                                        "pruned_outbox": pruned})
