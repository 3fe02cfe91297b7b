"""`edge-agent run`: the store box's unattended daemon.

Threads, in this process (I/O-bound, small): the drop-folder watcher, the
scoring schedule, the MQTT uplink, the release worker, retention, the
resource monitor and the HTTP endpoint. Child processes (native code and heavy
imports, isolated): one footfall pipeline per camera and, when federation is
enabled, the Flower SuperNode. Each thread opens its own connection to the
store database (SQLite connections are not shared across threads).

SIGTERM or SIGINT: every loop finishes what it is doing (an ingest batch, a
scoring transaction, a drain), the uplink says goodbye (status offline), the
children get SIGTERM, and the process exits 0. A kill -9 at any moment loses
nothing: every unit of work is a transaction, the drop folder keeps unread
files, the outbox keeps unacknowledged alerts.

No input stops a loop: whatever a step raises (a corrupt database, a file or a
release nobody foresaw) raises that loop's alarm, visible in /health, /metrics
and the status the console shows, and the loop carries on and tries again; the
rest of the box keeps working. A thread that dies anyway stops the daemon with
exit status 1 and its name; a store database that cannot be opened at all
stops it with exit status 78 (the unit does not restart it: it needs a human).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import tomli_w

from models.flower_protocol import SUPEREXEC_ENV, Node
from transport.mqtt import BrokerConfig

from ..config import EdgeConfig
from ..footfall.settings import SourceSpec
from ..ingest import IngestCounts
from ..model_registry import ModelRegistry
from ..outbox import Outbox
from ..publisher import PublisherSettings
from ..score import ScoringError, score_store, scoring_policy
from ..store_db import StoreDatabase, StoreDbError, open_store_db, open_store_db_readonly, write_transaction
from . import memory, systemd
from .children import SupervisedChild
from .dropbox import Dropbox
from .health import PORT_FILE, DaemonMetrics, Health, serve
from .logs import setup_logging
from .releases import ReleaseWorker, one_line
from .schedule import next_run
from .uplink import Uplink

log = logging.getLogger("edge_agent.daemon")
VENV_BIN = Path(sys.executable).parent
NEEDS_AN_OPERATOR = 78  # EX_CONFIG: the unit's RestartPreventExitStatus, so systemd does not loop on it


class DaemonError(Exception):
    """The daemon cannot start or go on; the message says why, `status` is the exit status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


class Daemon:
    def __init__(self, config: EdgeConfig):
        self.config = config
        self.stop = threading.Event()
        self.wake_uplink = threading.Event()
        self.metrics = DaemonMetrics()
        data = config.store.data_dir
        self.health = Health(data, config.daemon.memory_alarm_mb, config.daemon.disk_alarm_free_mb, self.metrics)
        try:
            self.policy = scoring_policy(config.risk, config.alerts)
        except ScoringError as exc:  # an unreadable key file: restarting will not help
            raise DaemonError(str(exc), NEEDS_AN_OPERATOR) from None
        self.children: list[SupervisedChild] = []
        self.threads: list[threading.Thread] = []
        self.releases: queue.Queue[bytes] | None = None
        self.last_score: dict[str, Any] = {}
        self.run_dir = data / "run"
        self.exit_status = 0

    def _store(self) -> StoreDatabase:
        store = self.config.store
        return open_store_db(store.db_path, chain=store.chain, store_id=store.store_id, timezone=store.timezone)

    # --- loops (each on its own thread) ----------------------------------------
    def _loop(self, name: str, period: float, step: Callable[[StoreDatabase], None]) -> None:
        """Run `step` every `period` seconds with a heartbeat; whatever it raises is an alarm, never the end."""
        store: StoreDatabase | None = None
        try:
            while not self.stop.is_set():
                try:
                    if store is None:
                        store = self._store()
                    step(store)
                    self.health.clear_alarm(name)
                except Exception as exc:  # noqa: BLE001 (a loop survives anything its input can do to it)
                    self._failed(name, exc)
                    if store is not None and isinstance(exc, sqlite3.DatabaseError):
                        store.close()  # open afresh next time: the file may have been repaired or replaced
                        store = None
                self.health.beat(name, allowed_silence=max(600.0, period * 5))
                if self.stop.wait(period):
                    break
        finally:
            if store is not None:
                store.close()

    def _failed(self, name: str, exc: BaseException) -> None:
        """Raise the loop's alarm; log it when it is new (not every few seconds while it lasts)."""
        text = f"{name} failed: {one_line(exc)}"
        if self.health.alarms.get(name) != text:
            log.error(text, extra={"loop": name})
        self.health.raise_alarm(name, text)

    def _dropbox_step(self, dropbox: Dropbox) -> Callable[[StoreDatabase], None]:
        def step(store: StoreDatabase) -> None:
            sales = dropbox.totals.by_input.get
            before = (sales("pos", IngestCounts()).accepted, dropbox.totals.rows.quarantined)
            if dropbox.poll(store):
                self.metrics.transactions.inc(sales("pos", IngestCounts()).accepted - before[0])
                self.metrics.quarantined.inc(dropbox.totals.rows.quarantined - before[1])
                memory.trim()
            self.health.beat("dropbox", 600, files_done=dropbox.totals.files_done,
                             files_failed=dropbox.totals.files_failed)
        return step

    def _last_score_run(self, store: StoreDatabase) -> datetime | None:
        row = store.conn.execute("SELECT max(started_at) FROM score_runs").fetchone()
        return datetime.fromisoformat(row[0].replace("Z", "+00:00")) if row and row[0] else None

    def _score_step(self, store: StoreDatabase) -> None:
        scoring = self.config.scoring
        due = next_run(datetime.now(timezone.utc), store.zone, scoring.daily_at if scoring.every_minutes is None else None,
                       scoring.every_minutes, self._last_score_run(store))
        if due > datetime.now(timezone.utc):
            return
        current = self.config.models_dir / "current"
        if not current.exists():
            self.health.beat("scoring", 600, state="waiting for a model")
            return
        from ..onnx_model import OnnxChurnModel  # onnxruntime: loaded once a model exists

        result = score_store(store, OnnxChurnModel(current), policy=self.policy, lookback_days=scoring.lookback_days)
        self.last_score = result.as_dict()
        self.metrics.alerts.inc(result.alerts)
        memory.trim()  # the year of transactions scoring loaded is freed: give it back
        if result.quota_alarm:
            self.health.raise_alarm("outbox_quota", f"outbox over quota: {result.deferred} alerts deferred")
        else:
            self.health.clear_alarm("outbox_quota")
        log.info("scored %d customers, %d new alerts", result.scored, result.alerts, extra=result.as_dict())
        self.wake_uplink.set()

    def _retention_step(self, store: StoreDatabase) -> None:
        """Once a day at run_at: raw transactions and customer events past the horizon go, acknowledged outbox
        rows go."""
        retention = self.config.retention
        marker = self.run_dir / "retention.last"
        last = datetime.fromtimestamp(float(marker.read_text()), timezone.utc) if marker.exists() else None
        if next_run(datetime.now(timezone.utc), store.zone, retention.run_at, None, last) > datetime.now(timezone.utc):
            return
        local_now = datetime.now(store.zone).replace(tzinfo=None)
        cutoff = int((local_now - datetime(1970, 1, 1)).total_seconds()) - retention.transactions_days * 86400
        with write_transaction(store.conn):
            deleted = store.conn.execute("DELETE FROM transactions WHERE ts < ?", (cutoff,)).rowcount
            events = store.conn.execute("DELETE FROM customer_events WHERE ts < ?", (cutoff,)).rowcount
        pruned = Outbox(store).prune_acked(retention.acked_outbox_days)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(time.time()))
        log.info("retention: %d transactions, %d customer events and %d acknowledged outbox rows removed", deleted,
                 events, pruned, extra={"deleted_transactions": deleted, "deleted_events": events,
                                        "pruned_outbox": pruned})

    # --- children -------------------------------------------------------------------
    def _camera_children(self) -> list[SupervisedChild]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        children = []
        for source, settings in self.config.camera_settings():
            profile = self.run_dir / f"camera-{settings.name}.toml"
            keys = {k: v for k, v in settings.model_dump(mode="json").items() if v is not None}
            profile.write_text(tomli_w.dumps({"camera": keys}))
            argv = [str(VENV_BIN / "edge-agent"), "footfall", "--source", source, "--db", str(self.config.store.db_path),
                    "--config", str(profile)]
            finite = not SourceSpec.parse(source).live
            children.append(SupervisedChild(f"camera-{settings.name}", argv, self.stop, finite=finite,
                                            log_path=self.run_dir / f"camera-{settings.name}.log",
                                            pid_file=self.run_dir / f"camera-{settings.name}.pid"))
        return children

    def _supernode_child(self) -> SupervisedChild | None:
        fed, training = self.config.federation, self.config.training
        if not fed.enabled:
            return None
        node_config = [f'{Node.STORE_DB}="{self.config.store.db_path}"', f"{Node.THREADS}={training.threads}",
                       f"{Node.MAX_TRAIN_ROWS}={training.max_train_rows}",
                       f"{Node.MAX_LOCAL_EPOCHS}={training.max_local_epochs}",
                       f'{Node.MODELS_DIR}="{self.config.models_dir}"',
                       f'{Node.CACHE_DIR}="{self.config.store.data_dir / "cache"}"']
        if training.batch_size:
            node_config.append(f"{Node.BATCH_SIZE}={training.batch_size}")
        argv = [str(VENV_BIN / "flower-supernode"), "--superlink", str(fed.superlink), "--port", str(fed.port),
                "--node-config", " ".join(node_config)]
        argv += ["--insecure"] if fed.insecure else ["--root-certificates", str(fed.root_certificates)]
        if fed.auth_private_key is not None:
            argv += ["--auth-supernode-private-key", str(fed.auth_private_key)]
        env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", **SUPEREXEC_ENV,
               "FLWR_HOME": str(self.config.store.data_dir / "flwr"), "FLWR_TELEMETRY_ENABLED": "0"}
        return SupervisedChild("supernode", argv, self.stop, env=env, log_path=self.run_dir / "supernode.log",
                               pid_file=self.run_dir / "supernode.pid")

    # --- what /health and the status say ------------------------------------------------
    def cameras(self) -> list[dict[str, Any]]:
        try:
            conn = open_store_db_readonly(self.config.store.db_path)
            try:
                rows = conn.execute("SELECT source, state, detail, frames, gaps, updated_at FROM camera_status").fetchall()
            finally:
                conn.close()
        except (sqlite3.Error, StoreDbError):
            return []
        return [dict(zip(("source", "state", "detail", "frames", "gaps", "updated_at"), row)) for row in rows]

    def status_details(self) -> dict[str, Any]:
        registry = ModelRegistry(self.config.models_dir)
        cameras = self.cameras()
        for camera in cameras:
            self.metrics.camera_up.labels(camera["source"]).set(1 if camera["state"] == "streaming" else 0)
        return {"model_version": registry.current, "cameras": {c["source"]: c["state"] for c in cameras},
                "alarms": dict(self.health.alarms), "last_score": self.last_score.get("as_of"),
                "children": {c.name: c.status.state for c in self.children}}

    def health_extra(self) -> dict[str, Any]:
        return {"store_id": self.config.store.store_id, "chain": self.config.store.chain, "pid": os.getpid(),
                "model_version": ModelRegistry(self.config.models_dir).current, "cameras": self.cameras(),
                "children": {c.name: c.status.as_dict() for c in self.children}, "last_score": self.last_score}

    # --- the whole -----------------------------------------------------------------------
    def _thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _install_signals(self) -> None:
        def on_signal(signum: int, _frame: object) -> None:
            log.info("signal %s: stopping", signal.Signals(signum).name)
            self.stop.set()
            self.wake_uplink.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def run(self) -> int:
        config = self.config
        setup_logging(config.daemon.log_file, config.daemon.log_max_mb, config.daemon.log_backups)
        memory.limit_malloc_arenas()  # before any thread starts
        self._install_signals()
        try:
            with self._store() as store:  # creates and migrates before anything else touches it
                log.info("store %s of chain %s starting", store.store_id, store.chain,
                         extra={"schema_version": store.schema_version()})
        except (sqlite3.Error, StoreDbError, OSError) as exc:
            raise DaemonError(f"the store database {self.config.store.db_path} cannot be opened "
                              f"({one_line(exc)}); restore it from a backup or move it aside",
                              NEEDS_AN_OPERATOR) from None
        server = serve(config.daemon.http_host, config.daemon.http_port, self.metrics, self.health, self.health_extra)
        dropbox = Dropbox(config.drop_folder, config.ingest.settle_seconds)
        self._thread("dropbox", lambda: self._loop("dropbox", config.ingest.poll_seconds, self._dropbox_step(dropbox)))
        self._thread("scoring", lambda: self._loop("scoring", 5.0, self._score_step))
        self._thread("retention", lambda: self._loop("retention", 300.0, self._retention_step))
        if config.mqtt is not None:
            self._start_uplink()
        self.children = self._camera_children()
        supernode = self._supernode_child()
        if supernode is not None:
            self.children.append(supernode)
        for child in self.children:
            child.start()
        systemd.notify("READY=1")
        log.info("ready", extra={"http": f"{config.daemon.http_host}:{server.server_address[1]}"})
        (self.run_dir / PORT_FILE).write_text(str(server.server_address[1]))
        self._main_loop()
        log.info("stopping")
        systemd.notify("STOPPING=1")
        for thread in self.threads:
            thread.join(timeout=30)
        for child in self.children:
            child.terminate()
            child.join(timeout=30)
        server.shutdown()
        log.info("stopped", extra={"exit_status": self.exit_status})
        return self.exit_status

    def _start_uplink(self) -> None:
        mqtt = self.config.mqtt
        assert mqtt is not None
        password_file = mqtt.password_file
        if password_file is None and mqtt.password_env:
            password_file = self.run_dir / ".mqtt-password"
            self.run_dir.mkdir(parents=True, exist_ok=True)
            password_file.write_text(self.config.mqtt_password() or "")
            password_file.chmod(0o600)
        broker = BrokerConfig(mqtt.url, mqtt.ca_file, mqtt.cert_file, mqtt.key_file, password_file,
                              keepalive_seconds=mqtt.keepalive_seconds)
        store_cfg = self.config.store
        settings = PublisherSettings(broker, mqtt.client_id or f"{store_cfg.chain}.{store_cfg.store_id}.agent",
                                     session_expiry=int(mqtt.session_expiry_days * 86400),
                                     max_inflight=mqtt.max_inflight, resend_after=mqtt.resend_after_seconds)
        if self.config.models.fetch_releases:
            assert self.config.models.public_key is not None
            self.releases = queue.Queue()
            worker = ReleaseWorker(self.releases, self.config.models.public_key, self.config.models_dir,
                                   store_cfg.chain, store_cfg.db_path, self.health, self.stop)
            self._thread("releases", worker.run)

        def run_uplink() -> None:
            delay = 1.0
            while not self.stop.is_set():
                try:
                    with self._store() as store:
                        uplink = Uplink(store, settings, stop=self.stop, wake=self.wake_uplink,
                                        drain_every=mqtt.drain_every_seconds, status_every=mqtt.status_every_seconds,
                                        metrics_every=mqtt.metrics_every_seconds, status_details=self.status_details,
                                        health_details=self.status_details, releases=self.releases,
                                        on_beat=self._uplink_beat(store))
                        uplink.run()
                except Exception as exc:  # noqa: BLE001 (an alarm and a fresh start, never a dead uplink)
                    self._failed("uplink", exc)
                    self.stop.wait(delay)
                    delay = min(delay * 2, 60.0)

        self._thread("uplink", run_uplink)

    def _uplink_beat(self, store: StoreDatabase) -> Callable[..., None]:
        def beat(**details: Any) -> None:
            stats = Outbox(store).stats()
            self.metrics.outbox_depth.set(stats.unacked)
            self.metrics.outbox_bytes.set(stats.unacked_bytes)
            self.metrics.mqtt_connected.set(1 if details.get("connected") else 0)
            if details.get("connected"):
                self.health.clear_alarm("mqtt")
            elif "error" in details:
                self.health.raise_alarm("mqtt", details["error"])
            refused = Outbox(store).rejected()
            if refused:
                self.health.raise_alarm("rejected_alerts", f"{refused} alert(s) refused by the aggregator: see the outbox")
            self.health.beat("uplink", 600, **details, outbox_unacked=stats.unacked)
        return beat

    def _main_loop(self) -> None:
        interval = systemd.watchdog_interval()
        next_check = 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_check:
                pids = [os.getpid()] + [c.status.pid for c in self.children if c.status.pid]
                self.health.check_resources(pids, self.metrics)
                next_check = now + 30
            dead = [t.name for t in self.threads if not t.is_alive()]
            if dead:
                log.error("threads died: %s; stopping so the service manager restarts us", dead)
                self.exit_status = 1
                self.stop.set()
                break
            if interval is not None and not self.health.stale():
                systemd.notify("WATCHDOG=1")
            self.stop.wait(min(interval or 5.0, 5.0))


def run_daemon(config: EdgeConfig) -> int:
    return Daemon(config).run()

