"""`edge-agent footfall` as one library call: settings from the profile and the flags, then a run.

SIGINT and SIGTERM stop a live camera cleanly: the run ends, the last buckets
are written, and the counts so far are returned.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ..store_db import open_store_db
from .pipeline import FootfallPipeline, FootfallResult
from .source import SourceSpec
from .settings import CameraSettings, FootfallError, load_camera_settings, parse_line, parse_override
from .storage import FootfallStorage


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C or a service stop sets `stop` instead of killing the run mid-write."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def resolve_settings(config: Path | None, line: str | None, overrides: list[str]) -> CameraSettings:
    """The profile's `[camera]` table, then `--set KEY=VALUE`, then `--line` on top."""
    settings = load_camera_settings(config) if config is not None else CameraSettings()
    changes: dict[str, Any] = dict(parse_override(o) for o in overrides)
    if line is not None:
        changes["line"] = parse_line(line)
    return settings.with_overrides(**changes) if changes else settings


def parse_start(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        raise FootfallError(f"--start must be an ISO 8601 date-time, got {text!r}") from None


def count_footfall(
    source: str,
    *,
    line: str | None = None,
    config: Path | None = None,
    overrides: list[str] | None = None,
    db: Path | None = None,
    start: str | None = None,
    duration: float | None = None,
) -> FootfallResult:
    """Count one source to its end (a file) or until stopped (a live camera, or `duration` seconds)."""
    settings = resolve_settings(config, line, overrides or [])
    if settings.line is None:
        raise FootfallError("no counting line: give --line X1,Y1,X2,Y2 or set line in the [camera] table")
    SourceSpec.parse(source).check()  # before a database is created for nothing
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(open_store_db(db)) if db is not None else None
        storage = FootfallStorage(store) if store is not None else None
        pipeline = FootfallPipeline(
            settings,
            source,
            storage=storage,
            on_status=(lambda s: storage.write_status(s.source, s.state, s.detail, s.frames, s.gaps))
            if storage is not None else None,
            zone=store.zone if store is not None else None,
            start=parse_start(start),
            stop=stop,
        )
        with stop_on_signals(stop):
            result = pipeline.run(duration=duration)
    if result.state == "failed":
        raise FootfallError(result.detail)
    if result.detail.startswith("store database not written"):
        raise FootfallError(result.detail)
    return result
