"""What the daemon says about itself: Prometheus metrics and a health document, on loopback only.

`GET /metrics` is Prometheus text; `GET /health` is JSON with every
component's last heartbeat, the cameras, the child processes and the alarms,
and answers 503 when something is wrong, so a plain HTTP check can page.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class DaemonMetrics:
    """The Prometheus series the daemon exports (its own registry: no process-global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.footfall_entries = Gauge("churn_footfall_entries_last_hour", "People in through the cameras, last hour", registry=r)
        self.transactions = Counter("churn_transactions_ingested", "POS rows accepted by ingest", registry=r)
        self.quarantined = Counter("churn_rows_quarantined", "Rows quarantined by ingest (POS, events, identities)", registry=r)
        self.outbox_depth = Gauge("churn_outbox_unacknowledged", "Outbox messages not yet acknowledged", registry=r)
        self.outbox_bytes = Gauge("churn_outbox_unacknowledged_bytes", "Bytes of unacknowledged outbox messages", registry=r)
        self.last_publish = Gauge("churn_last_successful_publish_timestamp", "Unix time of the last PUBACKed alert", registry=r)
        self.model_version = Gauge("churn_model_info", "Active model (the version is a label)", ["version"], registry=r)
        self.camera_up = Gauge("churn_camera_up", "1 while the camera delivers frames", ["camera"], registry=r)
        self.alerts = Counter("churn_alerts_raised", "Alerts recorded by scoring", registry=r)
        self.rss = Gauge("churn_resident_memory_mb", "Resident memory of the daemon and its children", ["process"], registry=r)
        self.alarm = Gauge("churn_alarm", "1 while an alarm is raised", ["alarm"], registry=r)
        self.mqtt_connected = Gauge("churn_mqtt_connected", "1 while connected to the broker", registry=r)


class Health:
    """Heartbeats and alarms, shared by the components (each writes only its own entries).

    An alarm shows at once in /health, in /metrics (`churn_alarm{alarm}` 1, back to 0 when cleared) and,
    with the next status message, on the console.
    """

    def __init__(self, data_dir: Path, memory_alarm_mb: float, disk_alarm_free_mb: float,
                 metrics: DaemonMetrics | None = None):
        self.data_dir = data_dir
        self.memory_alarm_mb = memory_alarm_mb
        self.disk_alarm_free_mb = disk_alarm_free_mb
        self.metrics = metrics
        self.beats: dict[str, tuple[float, float]] = {}  # component -> (last beat, allowed silence)
        self.details: dict[str, Any] = {}
        self.alarms: dict[str, str] = {}
        self.lock = threading.Lock()
        for name in ("memory", "disk", "outbox_quota", "mqtt"):
            self._gauge(name, 0)

    def _gauge(self, name: str, value: int) -> None:
        if self.metrics is not None:
            self.metrics.alarm.labels(name).set(value)

    def beat(self, component: str, allowed_silence: float, **details: Any) -> None:
        with self.lock:
            self.beats[component] = (time.time(), allowed_silence)
            if details:
                self.details[component] = {**self.details.get(component, {}), **details}

    def raise_alarm(self, name: str, text: str) -> None:
        with self.lock:
            self.alarms[name] = text
        self._gauge(name, 1)

    def clear_alarm(self, name: str) -> None:
        with self.lock:
            raised = self.alarms.pop(name, None) is not None
        if raised:
            self._gauge(name, 0)

    def stale(self) -> list[str]:
        now = time.time()
        with self.lock:
            return [name for name, (at, allowed) in self.beats.items() if now - at > allowed]

    def check_resources(self, pids: list[int], metrics: DaemonMetrics) -> float:
        """Memory of the daemon and its children, and free disk; raise or clear the alarms."""
        total = 0.0
        for pid in pids:
            used = rss_mb(pid)
            total += used
        metrics.rss.labels("daemon").set(rss_mb(pids[0]) if pids else 0)
        metrics.rss.labels("total").set(total)
        daemon_rss = rss_mb(pids[0]) if pids else 0.0
        if daemon_rss > self.memory_alarm_mb:
            self.raise_alarm("memory", f"daemon resident memory {daemon_rss:.0f} MB > {self.memory_alarm_mb:.0f} MB")
        else:
            self.clear_alarm("memory")
        free = shutil.disk_usage(self.data_dir).free / 1024 / 1024
        if free < self.disk_alarm_free_mb:
            self.raise_alarm("disk", f"{free:.0f} MB free on {self.data_dir} < {self.disk_alarm_free_mb:.0f} MB")
        else:
            self.clear_alarm("disk")
        return total

    def document(self, extra: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        stale = self.stale()
        with self.lock:
            body = {
                "status": "ok" if not stale and not self.alarms else "degraded",
                "stale": stale,
                "alarms": dict(self.alarms),
                "components": {k: {"last_beat": v[0], **self.details.get(k, {})} for k, v in self.beats.items()},
                "torch_loaded": "torch" in sys.modules,
                **extra,
            }
        return (200 if body["status"] == "ok" else 503), body


PORT_FILE = "http.port"  # in the daemon's run folder: where /health and /metrics listen


def read_health(run_dir: Path, timeout: float = 5.0) -> dict[str, Any]:
    """A running daemon's /health document, found through its run folder (a 503 still has one)."""
    port = (run_dir / PORT_FILE).read_text().strip()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as error:
        return json.loads(error.read())  # type: ignore[no-any-return]


def serve(host: str, port: int, metrics: DaemonMetrics, health: Health,
          extra: Callable[[], dict[str, Any]]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            if self.path == "/metrics":
                body, kind, code = generate_latest(metrics.registry), CONTENT_TYPE_LATEST, 200
            elif self.path == "/health":
                code, document = health.document(extra())
                body, kind = json.dumps(document, default=str).encode(), "application/json"
            else:
                body, kind, code = b"not found\n", "text/plain", 404
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # requests are not worth a log line each
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
