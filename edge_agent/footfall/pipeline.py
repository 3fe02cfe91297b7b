"""Footfall counting end to end: camera → blobs → tracks → crossings → buckets → store database.

`FootfallPipeline.run()` is what the daemon runs in a thread: it returns when
a video file ends, when `stop` is set, or after `duration` seconds; a camera
fault or a bad frame never raises out of it. The camera's state is in
`pipeline.status` and is passed to `on_status` on every change. Buckets are
written to the store database as the run goes (at least every
`flush_seconds`), and once more at the end.

No frame, crop or mask is written to disk or sent anywhere, or kept beyond the
frame being processed (but for the first frames after a start, shrunk, held
until the empty scene is learned from them): what leaves this module is counts
and the crossings' frame numbers (see docs/footfall.md).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from ..ingest.validate import EPOCH_NAIVE
from .buckets import Bucket, BucketAggregator
from .counting import ENTRY, Crossing, Line
from .people import FrameCount, PeopleCounter
from .settings import CameraSettings, FootfallError
from .source import Camera, CameraStatus, FrameReader, OpenCvReader, SourceSpec
from .storage import FootfallStorage, Gap

log = logging.getLogger(__name__)

MAX_BAD_FRAMES = 50  # consecutive frames that fail to process before the run gives up


def local_seconds(moment: datetime) -> float:
    """Store-local wall-clock seconds since 1970 (the store database's clock)."""
    return (moment.replace(tzinfo=None) - EPOCH_NAIVE).total_seconds()


def points_in_polygon(points: np.ndarray, polygon: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Even-odd rule for (x, y) rows; pure numpy so the queue zone needs no image."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    inside = np.zeros(len(p), dtype=bool)
    vertices = list(polygon)
    for (x1, y1), (x2, y2) in zip(vertices, vertices[1:] + vertices[:1]):
        straddles = (y1 > p[:, 1]) != (y2 > p[:, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x1 + (p[:, 1] - y1) * (x2 - x1) / (y2 - y1)
        inside ^= straddles & (p[:, 0] < x_cross)
    return inside


class FramePacer:
    """Keeps processing within the fps budget; frames in between are skipped undecoded."""

    def __init__(self, fps_budget: float):
        self.period = 1.0 / fps_budget
        self.next_t: float | None = None

    def due(self, t: float) -> bool:
        if self.next_t is not None and t < self.next_t - 1e-6:
            return False
        self.next_t = t + self.period if self.next_t is None else max(self.next_t + self.period, t)
        return True


@dataclass
class FootfallResult:
    """What one run counted; `buckets` are the run's own totals per bucket."""

    source: str
    entries: int = 0
    exits: int = 0
    frames: int = 0
    skipped: int = 0
    seconds: float = 0.0  # wall-clock processing time
    occupancy: int = 0
    gaps: list[Gap] = field(default_factory=list)
    buckets: list[Bucket] = field(default_factory=list)
    with_queue: bool = False
    state: str = "ended"
    detail: str = ""
    bad_frames: int = 0
    crossings: list[dict[str, object]] = field(default_factory=list)  # every counted crossing, in order

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self, events: bool = False) -> dict[str, object]:
        """The `--json` report; with `events`, also every crossing (`frame`, `t`, `direction`, `track`)."""
        extra: dict[str, object] = {"crossings": sorted(self.crossings, key=lambda c: (c["frame"], c["track"]))} if events else {}
        return {
            "entries": self.entries,
            "exits": self.exits,
            "frames": self.frames,
            "fps": round(self.fps, 1),
            "source": self.source,
            "occupancy": self.occupancy,
            "skipped": self.skipped,
            "state": self.state,
            "gaps": [g.as_dict() for g in self.gaps],
            "buckets": [
                {**b.as_dict(self.with_queue), "bucket_start": _iso(b.start)} for b in self.buckets
            ],
            **extra,
        }


def _event(crossing: Crossing, t0: float) -> dict[str, object]:
    return {
        "frame": crossing.frame,
        "t": round(crossing.t - t0, 3),
        "direction": "entry" if crossing.direction == ENTRY else "exit",
        "track": crossing.track_id,
    }


def _iso(seconds: float) -> str:
    return (EPOCH_NAIVE + timedelta(seconds=seconds)).isoformat()


class FootfallPipeline:
    """One camera's counting loop; construct, then `run()` (in a thread if you like)."""

    def __init__(
        self,
        settings: CameraSettings,
        source: str | Callable[[], FrameReader],
        *,
        live: bool | None = None,
        storage: FootfallStorage | None = None,
        zone: ZoneInfo | None = None,
        start: datetime | None = None,
        stop: threading.Event | None = None,
        on_status: Callable[[CameraStatus], None] | None = None,
    ):
        if settings.line is None:
            raise FootfallError("no counting line: give --line X1,Y1,X2,Y2 or set camera.line")
        self.settings = settings
        if isinstance(source, str):
            spec = SourceSpec.parse(source)
            spec.check()
            self.open_reader: Callable[[], FrameReader] = lambda: OpenCvReader(spec)
            self.live = spec.live if live is None else live
        else:
            self.open_reader, self.live = source, bool(live)
        self.storage = storage
        self.zone = zone
        self.stop = stop or threading.Event()
        self.on_status = on_status
        self.status = CameraStatus(settings.source_name)
        self.start_local = local_seconds(start or datetime.now(zone))
        self.line = Line(*settings.line)
        self.people: PeopleCounter | None = None
        self._finished_gaps: list[Gap] = []

    # -- clocks -------------------------------------------------------------------------------

    def _local_now(self) -> float:
        return local_seconds(datetime.now(self.zone))

    def _local_of_wall(self, wall: float) -> float:
        return local_seconds(datetime.fromtimestamp(wall, self.zone))

    def _frame_time(self, t: float, t0: float) -> float:
        """Store-local time of a frame: the clock for a live camera, the video's own time for a file."""
        return self._local_now() if self.live else self.start_local + (t - t0)

    # -- the loop -----------------------------------------------------------------------------

    def run(self, duration: float | None = None) -> FootfallResult:
        s = self.settings
        result = FootfallResult(s.source_name, with_queue=s.queue_zone is not None)
        occupancy = self._resume_occupancy()
        buckets = BucketAggregator(s.bucket_seconds, occupancy)
        camera = Camera(
            self.open_reader,
            live=self.live,
            status=self.status,
            stop=self.stop,
            backoff=(s.reconnect_initial_seconds, s.reconnect_max_seconds),
            on_state=self._state_changed,
            on_gap=lambda start, end, reason: self._gap(buckets, result, start, end, reason),
        )
        pacer = FramePacer(s.fps_budget)
        began = time.perf_counter()
        last_flush = began
        t0: float | None = None
        previous_t: float | None = None
        index = -1  # frames in decode order, the skipped ones too
        bad_in_a_row = 0
        try:
            while True:
                if duration is not None and time.perf_counter() - began >= duration:
                    self.stop.set()
                t = camera.next()
                if t is None:
                    break
                index += 1
                t0 = t if t0 is None else t0
                if not pacer.due(t):
                    result.skipped += 1
                    continue
                frame = camera.retrieve()
                if frame is None:
                    continue
                step = 0.0 if previous_t is None else t - previous_t
                try:
                    self._process(frame, t, t0, index, step, buckets, result)
                    bad_in_a_row = 0
                except FootfallError:
                    raise
                except Exception as exc:  # a bad frame must not end a store's counting
                    result.bad_frames += 1
                    bad_in_a_row += 1
                    self.status.detail = f"frame not processed: {exc}"
                    log.warning("camera %s: frame not processed: %s", s.source_name, exc, exc_info=True)
                    if bad_in_a_row >= MAX_BAD_FRAMES:
                        camera.set_state("failed", f"{bad_in_a_row} frames in a row not processed: {exc}")
                        break
                previous_t = t
                del frame
                if time.perf_counter() - last_flush >= s.flush_seconds:
                    self._flush(buckets, result)
                    last_flush = time.perf_counter()
        finally:
            camera.close()
            if self.people is not None and previous_t is not None and t0 is not None:
                self._record(self.people.close(), previous_t, t0, self._frame_time(previous_t, t0), buckets, result)
            open_gap = camera.open_gap()
            if open_gap is not None:
                self._gap(buckets, result, open_gap[0], time.time(), open_gap[1])
            result.seconds = time.perf_counter() - began
            result.state, result.detail = self.status.state, self.status.detail
            result.occupancy = buckets.occupancy
            self._flush(buckets, result)
            result.buckets = sorted(buckets.totals.values(), key=lambda b: b.start)
        return result

    def _process(
        self, frame: np.ndarray, t: float, t0: float, index: int, step: float, buckets: BucketAggregator,
        result: FootfallResult,
    ) -> None:
        s = self.settings
        if frame.ndim not in (2, 3) or frame.shape[0] < 8 or frame.shape[1] < 8:
            raise ValueError(f"a {frame.shape} frame is not an image")  # before it resets the background
        if self.people is None:
            self.people = self._make_counter(frame.shape)
        now = self._frame_time(t, t0)
        self._record(self.people.process(frame, t, index, step), t, t0, now, buckets, result)
        queue = None
        if s.queue_zone is not None:
            queue = int(points_in_polygon(self.people.confirmed_centres(), s.queue_zone).sum())
        buckets.frame(now, step, queue)
        result.frames += 1
        self.status.frames = result.frames

    def _record(
        self, count: FrameCount, t: float, t0: float, now: float, buckets: BucketAggregator, result: FootfallResult
    ) -> None:
        """Crossings into their buckets (at the moment they were made) and the report; ended tracks' dwell."""
        assert self.people is not None
        for crossing in count.crossings:
            buckets.crossing(now - (t - crossing.t), crossing.direction)
            if crossing.direction == ENTRY:
                result.entries += 1
            else:
                result.exits += 1
            result.crossings.append(_event(crossing, t0))
        for track in count.ended:
            if self.people.counts(track):
                buckets.dwell(now, track.dwell)

    def _make_counter(self, shape: tuple[int, ...]) -> PeopleCounter:
        height, width = shape[:2]
        mid_x, mid_y = (self.line.x1 + self.line.x2) / 2, (self.line.y1 + self.line.y2) / 2
        if not (0 <= mid_x <= width and 0 <= mid_y <= height):
            raise FootfallError(
                f"counting line {','.join(f'{v:g}' for v in self.settings.line or ())} lies outside"
                f" the {width}x{height} frame"
                " (line coordinates are source-frame pixels)"
            )
        return PeopleCounter(self.settings, width, height)

    # -- state, gaps and writes ---------------------------------------------------------------

    def _state_changed(self, status: CameraStatus) -> None:
        if self.on_status is not None:
            try:
                self.on_status(status)
            except Exception:  # a listener's fault is not the camera's
                log.exception("camera %s: status listener failed", status.source)

    def _gap(self, buckets: BucketAggregator, result: FootfallResult, start: float, end: float, reason: str) -> None:
        gap = Gap(self._local_of_wall(start), self._local_of_wall(end), reason)
        result.gaps.append(gap)
        self._finished_gaps.append(gap)
        if self.live:  # a file loses no video time while it is unreadable
            buckets.gap(gap.start, gap.end)

    def _resume_occupancy(self) -> int:
        if self.storage is None:
            return 0
        try:
            now = self._local_now() if self.live else self.start_local
            return self.storage.net_today(self.settings.source_name, now)
        except sqlite3.Error as exc:
            log.warning("camera %s: cannot read today's footfall: %s", self.settings.source_name, exc)
            return 0

    def _flush(self, buckets: BucketAggregator, result: FootfallResult) -> None:
        if self.storage is None:
            return
        pending = buckets.take_unwritten()
        gaps, self._finished_gaps = self._finished_gaps, []
        status = (self.status.state, self.status.detail, self.status.frames, self.status.gaps)
        try:
            self.storage.add_buckets(
                self.settings.source_name, pending, with_queue=result.with_queue, gaps=gaps, status=status
            )
        except sqlite3.Error as exc:  # a busy or full disk: keep the counts, try again later
            buckets.give_back(pending)
            self._finished_gaps = gaps + self._finished_gaps
            result.detail = f"store database not written: {exc}"
            log.warning("camera %s: %s", self.settings.source_name, result.detail)


def run_footfall(settings: CameraSettings, source: str, **options: object) -> FootfallResult:
    """Build a pipeline and run it to the end of the source (or until `stop`)."""
    duration = options.pop("duration", None)
    pipeline = FootfallPipeline(settings, source, **options)  # type: ignore[arg-type]
    return pipeline.run(duration=duration)  # type: ignore[arg-type]
