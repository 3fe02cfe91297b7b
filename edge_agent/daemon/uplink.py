"""The daemon's link to the central side: alerts out, acks and model releases in, status and metrics.

One MQTT connection (one set of credentials per box). The loop drains the
outbox every few seconds or when scoring wakes it, republishes the retained
status, and sends metrics (footfall and sales per hour for the last two days,
and each input's data quality per day for the last two weeks: the aggregator
upserts both, so a lost metrics message is repaired by the next; metrics that
break their contract are logged and counted, not sent, and the loop goes on). Releases
arriving on the model topic go straight to the release worker's queue (the
store link's handler for that topic).
If the broker is unreachable the loop retries with backoff; the outbox keeps
everything meanwhile.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from models.contracts import metrics_topic, model_topic
from models.days import local_seconds, local_time
from models.payloads import METRICS_SCHEMA, PayloadError, StoreMetrics
from transport.mqtt import BrokerError

from ..data_quality import data_quality
from ..store_link import LinkSettings, StoreLink
from ..store_db import StoreDatabase, utc_now_iso
from ..store_queries.footfall import footfall_per_hour
from ..store_queries.sales import in_store_sales_per_hour

log = logging.getLogger("edge_agent.uplink")


def hourly_activity(store: StoreDatabase, hours: int = 48) -> list[dict[str, Any]]:
    """Entries, exits and in-store sales per store-local hour: counts only, nothing per customer."""
    now = datetime.now(store.zone).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    since = local_seconds(now - timedelta(hours=hours - 1))
    foot = footfall_per_hour(store, since)
    sales = in_store_sales_per_hour(store, since)
    rows = []
    for hour in sorted(set(foot) | set(sales)):
        entries, exits = foot.get(hour, (0, 0))
        rows.append({"hour": local_time(hour).strftime("%Y-%m-%dT%H:00"),
                     "entries": int(entries), "exits": int(exits), "transactions": int(sales.get(hour, 0))})
    return rows


def metrics_document(store: StoreDatabase, health: dict[str, Any]) -> dict[str, Any]:
    """`retail.store-metrics/1`: the box's health, hourly footfall and sales, and its inputs' data quality,
    built by its model (PayloadError if any of it breaks the contract)."""
    return StoreMetrics.build(schema=METRICS_SCHEMA, chain=store.chain, store_id=store.store_id, at=utc_now_iso(),
                              footfall_hourly=hourly_activity(store), data_quality=data_quality(store), **health)


def _hand_over(releases: queue.Queue[bytes]) -> Callable[[bytes], None]:
    """A release, as it arrives, to the release worker's queue; an empty retained message (a cleared topic)
    is nothing to install."""
    def hand_over(payload: bytes) -> None:
        if payload:
            releases.put(payload)
    return hand_over


class Uplink:
    def __init__(self, store: StoreDatabase, settings: LinkSettings, *, stop: threading.Event,
                 wake: threading.Event, drain_every: float, status_every: float, metrics_every: float,
                 status_details: Callable[[], dict[str, Any]], health_details: Callable[[], dict[str, Any]],
                 releases: queue.Queue[bytes] | None, on_beat: Callable[..., None]):
        handlers = {model_topic(store.chain): _hand_over(releases)} if releases is not None else {}
        self.link = StoreLink(store, settings, status_details, handlers)
        self.store = store
        self.stop, self.wake = stop, wake
        self.drain_every, self.status_every, self.metrics_every = drain_every, status_every, metrics_every
        self.health_details = health_details
        self.releases = releases
        self.on_beat = on_beat
        self.published = 0
        self.refused: list[str] = []

    def _metrics(self) -> None:
        """Send the metrics, unless they break their contract: then say so and count it (the next try is
        built afresh); the loop goes on either way."""
        assert self.link.client is not None
        try:
            document = metrics_document(self.store, self.health_details())
        except PayloadError as error:
            self.link.note_invalid("metrics", error)
            return
        self.link.client.publish(metrics_topic(self.store.chain, self.store.store_id),
                                      json.dumps(document).encode(), qos=0)

    def run(self) -> None:
        """Until stop; the connection is closed however the loop ends (an error must not leave it behind)."""
        try:
            self._run()
        finally:
            self.link.close(reason="stopped")

    def _run(self) -> None:
        delay, next_status, next_metrics = 1.0, 0.0, 0.0
        while not self.stop.is_set():
            if not self.link.connected:
                if self.link.client is not None:
                    self.on_beat(connected=False)  # paho is reconnecting by itself
                else:
                    try:
                        self.link.connect()
                        delay = 1.0
                        log.info("connected to %s", self.link.settings.broker.address)
                    except BrokerError as exc:
                        log.warning("broker unreachable: %s; retrying in %.0f s", exc, delay)
                        self.on_beat(connected=False, error=str(exc))
                        if self.stop.wait(delay):
                            break
                        delay = min(delay * 2, 60.0)
                        continue
                if not self.link.connected:
                    self.stop.wait(1.0)
                    continue
            result = self.link.drain(wait_for_acks=0)
            self.published += result.published
            if result.refused:
                self.refused = result.refused[-5:]
                log.error("the broker refused %d message(s): %s", len(result.refused), result.refused[0])
            now = time.monotonic()
            if now >= next_status or self.link.reannounce.is_set():
                self.link.reannounce.clear()
                self.link.publish_status("online")
                next_status = now + self.status_every
            if now >= next_metrics:
                self._metrics()
                next_metrics = now + self.metrics_every
            self.on_beat(connected=True, remaining=result.remaining, published_total=self.published,
                         invalid_payloads=self.link.invalid, last_invalid=self.link.last_invalid)
            if self.wake.wait(self.drain_every):
                self.wake.clear()
