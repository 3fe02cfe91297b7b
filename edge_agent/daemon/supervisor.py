"""`edge-agent run`: the store box's unattended daemon, a thin supervisor of parts with one job each.

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

The parts: jobs.py (drop folder, scoring, retention), link.py (the uplink to the
broker and the release worker), commands.py (the children's command lines),
children.py (starting and restarting them), health.py (/health, /metrics,
alarms), status.py (the cameras' state). This module starts them, runs each
job in its loop, watches threads and resources, and stops everything.

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
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from ..config import EdgeConfig
from ..model_registry import ModelRegistry
from ..score import ScoringError, scoring_policy
from ..store_db import StoreDatabase, StoreDbError, open_store_db
from . import memory, systemd
from .children import SupervisedChild
from .commands import camera_children, supernode_child
from .dropbox import Dropbox
from .health import PORT_FILE, DaemonMetrics, Health, serve
from .jobs import DropboxJob, RetentionJob, ScoringJob
from .link import Link
from .logs import setup_logging
from .releases import one_line
from .status import camera_states

log = logging.getLogger("edge_agent.daemon")
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
        self.run_dir = data / "run"
        self.scoring = ScoringJob(config, self.policy, self.metrics, self.health, self.wake_uplink)
        self.retention = RetentionJob(config, self.run_dir)
        self.children: list[SupervisedChild] = []
        self.threads: list[threading.Thread] = []
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

    # --- what /health and the status say ------------------------------------------------
    def status_details(self) -> dict[str, Any]:
        cameras = camera_states(self.config.store.db_path)
        for camera in cameras:
            self.metrics.camera_up.labels(camera["source"]).set(1 if camera["state"] == "streaming" else 0)
        return {"model_version": ModelRegistry(self.config.models_dir).current,
                "cameras": {c["source"]: c["state"] for c in cameras}, "alarms": dict(self.health.alarms),
                "last_score": self.scoring.last.get("as_of"), "children": {c.name: c.status.state for c in self.children}}

    def health_extra(self) -> dict[str, Any]:
        return {"store_id": self.config.store.store_id, "chain": self.config.store.chain, "pid": os.getpid(),
                "model_version": ModelRegistry(self.config.models_dir).current,
                "cameras": camera_states(self.config.store.db_path),
                "children": {c.name: c.status.as_dict() for c in self.children}, "last_score": self.scoring.last}

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

    def _open_or_stop(self) -> None:
        """Create and migrate the store database before anything else touches it; a human is needed if it cannot."""
        try:
            with self._store() as store:
                log.info("store %s of chain %s starting", store.store_id, store.chain,
                         extra={"schema_version": store.schema_version()})
        except (sqlite3.Error, StoreDbError, OSError) as exc:
            raise DaemonError(f"the store database {self.config.store.db_path} cannot be opened "
                              f"({one_line(exc)}); restore it from a backup or move it aside",
                              NEEDS_AN_OPERATOR) from None

    def _start_parts(self) -> None:
        config = self.config
        dropbox = DropboxJob(Dropbox(config.drop_folder, config.ingest.settle_seconds), self.metrics, self.health)
        self._thread("dropbox", lambda: self._loop("dropbox", config.ingest.poll_seconds, dropbox.step))
        self._thread("scoring", lambda: self._loop("scoring", 5.0, self.scoring.step))
        self._thread("retention", lambda: self._loop("retention", 300.0, self.retention.step))
        if config.mqtt is not None:
            link = Link(config, self.run_dir, stop=self.stop, wake=self.wake_uplink, metrics=self.metrics,
                        health=self.health, open_store=self._store, status_details=self.status_details,
                        failed=self._failed)
            worker = link.release_worker()
            if worker is not None:
                self._thread("releases", worker.run)
            self._thread("uplink", link.run)
        self.children = camera_children(config, self.stop, self.run_dir)
        supernode = supernode_child(config, self.stop, self.run_dir)
        if supernode is not None:
            self.children.append(supernode)
        for child in self.children:
            child.start()

    def run(self) -> int:
        config = self.config
        setup_logging(config.daemon.log_file, config.daemon.log_max_mb, config.daemon.log_backups)
        memory.limit_malloc_arenas()  # before any thread starts
        self._install_signals()
        self._open_or_stop()
        server = serve(config.daemon.http_host, config.daemon.http_port, self.metrics, self.health, self.health_extra)
        self._start_parts()
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

