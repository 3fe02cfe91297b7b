"""The release worker: each model release the uplink receives is verified, tested and activated, or refused.

Whatever a release holds (a bad signature, a graph that is not base64, one
that answers NaN, an older model, bytes nobody foresaw), the worker refuses it
with a one-line reason: the `release_refused` alarm in /health, /metrics and
the status, and the active model keeps serving. An accepted release clears it.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

from models.release import ReleaseError, load_public_key, verify_release

from ..model_registry import ModelFileError, ModelRegistry, ModelRegistryError, install_and_activate
from .health import Health

log = logging.getLogger("edge_agent.daemon")
ALARM = "release_refused"


def one_line(exc: BaseException) -> str:
    """An exception as one short line: its type, and its message without line breaks."""
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ReleaseWorker:
    def __init__(self, releases: queue.Queue[bytes], public_key: Path, models_dir: Path, chain: str, store_db: Path,
                 health: Health, stop: threading.Event):
        self.releases, self.public_key, self.models_dir = releases, public_key, models_dir
        self.chain, self.store_db, self.health, self.stop = chain, store_db, health, stop

    def run(self) -> None:
        key = load_public_key(self.public_key)
        registry = ModelRegistry(self.models_dir)
        while not self.stop.is_set():
            try:
                payload = self.releases.get(timeout=1.0)
            except queue.Empty:
                self.health.beat("releases", 600)
                continue
            self.handle(payload, key, registry)
            self.health.beat("releases", 600, current=registry.current)

    def handle(self, payload: bytes, key: object, registry: ModelRegistry) -> None:
        try:
            release = verify_release(payload, key, self.chain)  # type: ignore[arg-type]
            verdict = install_and_activate(registry, release, self.store_db)
            log.info("release %s: %s", release.version, verdict.reason,
                     extra={"version": release.version, "accepted": verdict.accepted})
            if verdict.accepted:
                self.health.clear_alarm(ALARM)
            else:
                self._refused(f"release {release.version} refused: {verdict.reason}")
        except (ReleaseError, ModelRegistryError, ModelFileError) as exc:
            self._refused(f"release refused: {' '.join(str(exc).split())[:300]}")
        except Exception as exc:  # noqa: BLE001 (a release nobody foresaw is refused, never the end)
            self._refused(f"release refused: {one_line(exc)}")

    def _refused(self, reason: str) -> None:
        log.error(reason)
        self.health.beat("releases", 600, last_refusal=reason)
        self.health.raise_alarm(ALARM, reason)
