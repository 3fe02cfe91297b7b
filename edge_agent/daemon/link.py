"""The box's link to the broker, kept up for as long as the daemon runs.

The uplink (uplink.py: outbox, status, metrics, incoming releases) runs on its own
store connection; whatever stops it raises the `uplink` alarm and it starts again after
a back-off (1 s doubling to 60 s). Releases it receives go to the release worker
(releases.py), which verifies, canaries and installs them on a thread of its own.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transport.mqtt import BrokerConfig

from ..config import EdgeConfig
from ..outbox import Outbox
from ..store_link import LinkSettings
from ..store_db import StoreDatabase
from .health import DaemonMetrics, Health
from .releases import ReleaseWorker
from .uplink import Uplink

BACKOFF_START, BACKOFF_MAX = 1.0, 60.0


def publisher_settings(config: EdgeConfig, run_dir: Path) -> LinkSettings:
    """The broker, credentials and session of this box, from its [mqtt] section."""
    mqtt = config.mqtt
    assert mqtt is not None
    password_file = mqtt.password_file
    if password_file is None and mqtt.password_env:  # paho reads a file: the variable's value goes into a 0600 one
        password_file = run_dir / ".mqtt-password"
        run_dir.mkdir(parents=True, exist_ok=True)
        password_file.write_text(config.mqtt_password() or "")
        password_file.chmod(0o600)
    broker = BrokerConfig(mqtt.url, mqtt.ca_file, mqtt.cert_file, mqtt.key_file, password_file,
                          keepalive_seconds=mqtt.keepalive_seconds)
    store = config.store
    return LinkSettings(broker, mqtt.client_id or f"{store.chain}.{store.store_id}.agent",
                             session_expiry=int(mqtt.session_expiry_days * 86400), max_inflight=mqtt.max_inflight,
                             resend_after=mqtt.resend_after_seconds)


class Link:
    """The uplink, restarted on failure, and the release worker its releases go to."""

    def __init__(self, config: EdgeConfig, run_dir: Path, *, stop: threading.Event, wake: threading.Event,
                 metrics: DaemonMetrics, health: Health, open_store: Callable[[], StoreDatabase],
                 status_details: Callable[[], dict[str, Any]], failed: Callable[[str, BaseException], None]):
        self.config, self.stop, self.wake, self.metrics, self.health = config, stop, wake, metrics, health
        self.open_store, self.status_details, self.failed = open_store, status_details, failed
        self.settings = publisher_settings(config, run_dir)
        self.releases: queue.Queue[bytes] | None = queue.Queue() if config.models.fetch_releases else None

    def release_worker(self) -> ReleaseWorker | None:
        """The worker for the releases this link receives; None when the box does not fetch them."""
        if self.releases is None:
            return None
        models, store = self.config.models, self.config.store
        assert models.public_key is not None
        return ReleaseWorker(self.releases, models.public_key, self.config.models_dir, store.chain, store.db_path,
                             self.health, self.stop)

    def run(self) -> None:
        mqtt = self.config.mqtt
        assert mqtt is not None
        delay = BACKOFF_START
        while not self.stop.is_set():
            try:
                with self.open_store() as store:
                    Uplink(store, self.settings, stop=self.stop, wake=self.wake, drain_every=mqtt.drain_every_seconds,
                           status_every=mqtt.status_every_seconds, metrics_every=mqtt.metrics_every_seconds,
                           status_details=self.status_details, health_details=self.status_details,
                           releases=self.releases, on_beat=self._beat(store)).run()
            except Exception as exc:  # noqa: BLE001 (an alarm and a fresh start, never a dead uplink)
                self.failed("uplink", exc)
                self.stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    def _beat(self, store: StoreDatabase) -> Callable[..., None]:
        """What each uplink heartbeat updates: outbox gauges, the connection, refusals, messages not sent."""
        def beat(**details: Any) -> None:
            stats = Outbox(store).stats()
            self.metrics.outbox_depth.set(stats.unacked)
            self.metrics.outbox_bytes.set(stats.unacked_bytes)
            self.metrics.mqtt_connected.set(1 if details.get("connected") else 0)
            if details.get("connected"):
                self.health.clear_alarm("mqtt")
            elif "error" in details:
                self.health.raise_alarm("mqtt", details["error"])
            if details.get("invalid_payloads"):
                self.health.raise_alarm("invalid_payloads", (
                    f"{details['invalid_payloads']} status or metrics message(s) broke their contract and were not "
                    f"sent; the last: {details.get('last_invalid')}")[:1000])
            refused = Outbox(store).rejected()
            if refused:
                self.health.raise_alarm("rejected_alerts", f"{refused} alert(s) refused by the aggregator: see the outbox")
            self.health.beat("uplink", 600, **details, outbox_unacked=stats.unacked)
        return beat
