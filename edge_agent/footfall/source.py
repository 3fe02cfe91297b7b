"""The camera: a video file, an RTSP/HTTP stream or a device index, through OpenCV.

A live camera that drops (network, power, a cable) is reopened with
exponential backoff until it comes back or the pipeline is told to stop; each
outage is reported as a gap. Nothing here ever raises into the caller's loop
for a camera fault: `Camera.next()` returns the next frame's time, or None
when a file has ended or the pipeline is stopping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from .settings import SourceSpec

log = logging.getLogger(__name__)

OPEN_TIMEOUT_MS = 10_000
READ_TIMEOUT_MS = 5_000


class CameraDropped(Exception):
    """The camera gave no frame; the message says why."""


class FrameReader(Protocol):
    """One open connection to a camera."""

    def grab(self) -> float | None:
        """Advance to the next frame and return its time in seconds (None: a file ended)."""

    def retrieve(self) -> np.ndarray:
        """Decode the grabbed frame."""

    def close(self) -> None: ...


class OpenCvReader:
    """cv2.VideoCapture behind FrameReader; file times come from the frame count, live ones from the clock."""

    def __init__(self, spec: SourceSpec):
        self.spec = spec
        if spec.kind == "device":
            capture = cv2.VideoCapture(int(spec.text))
        elif spec.kind == "url":
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
            capture = cv2.VideoCapture(spec.text, cv2.CAP_FFMPEG, params)
        else:
            capture = cv2.VideoCapture(spec.text)
        if not capture.isOpened():
            capture.release()
            raise CameraDropped(f"cannot open {spec.text}")
        self.capture = capture
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else 25.0
        self.index = -1

    def grab(self) -> float | None:
        if not self.capture.grab():
            if self.spec.live:
                raise CameraDropped(f"no frame from {self.spec.text}")
            return None
        self.index += 1
        return time.monotonic() if self.spec.live else self.index / self.fps

    def retrieve(self) -> np.ndarray:
        ok, frame = self.capture.retrieve()
        if not ok or frame is None:
            raise CameraDropped(f"cannot decode a frame from {self.spec.text}")
        return frame

    def close(self) -> None:
        self.capture.release()


class FramesReader:
    """Frames already in memory (a generated scene, a test's fake camera) at a fixed rate."""

    def __init__(self, frames: Iterable[np.ndarray], fps: float):
        self.frames: Iterator[np.ndarray] = iter(frames)
        self.fps = fps
        self.index = -1
        self.current: np.ndarray | None = None

    def grab(self) -> float | None:
        self.current = next(self.frames, None)
        if self.current is None:
            return None
        self.index += 1
        return self.index / self.fps

    def retrieve(self) -> np.ndarray:
        assert self.current is not None
        return self.current

    def close(self) -> None:
        pass


@dataclass
class CameraStatus:
    """What a daemon shows about a camera: its state, why, and how it has been."""

    source: str
    state: str = "starting"  # starting, streaming, reconnecting, ended, stopped, failed
    detail: str = ""
    frames: int = 0
    gaps: int = 0
    since: float = 0.0  # time.time() of the last state change

    def as_dict(self) -> dict[str, object]:
        return {"source": self.source, "state": self.state, "detail": self.detail, "frames": self.frames, "gaps": self.gaps}


class Camera:
    """A FrameReader that reopens itself with backoff while live, and reports its state and gaps."""

    def __init__(
        self,
        open_reader: Callable[[], FrameReader],
        *,
        live: bool,
        status: CameraStatus,
        stop: threading.Event,
        backoff: tuple[float, float] = (0.5, 30.0),
        on_state: Callable[[CameraStatus], None] | None = None,
        on_gap: Callable[[float, float, str], None] | None = None,
    ):
        self.open_reader = open_reader
        self.live = live
        self.status = status
        self.stop = stop
        self.backoff = backoff
        self.on_state = on_state
        self.on_gap = on_gap
        self.reader: FrameReader | None = None
        self.lost_at: float | None = None  # time.time() when frames stopped coming
        self.lost_reason = ""

    def set_state(self, state: str, detail: str = "") -> None:
        if (state, detail) != (self.status.state, self.status.detail):
            self.status.state, self.status.detail, self.status.since = state, detail, time.time()
            if self.on_state is not None:
                self.on_state(self.status)

    def _drop(self, reason: str) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.lost_at is None:
            self.lost_at, self.lost_reason = time.time(), reason
        log.info("camera %s: %s", self.status.source, reason)

    def _recovered(self) -> None:
        if self.lost_at is not None:
            self.status.gaps += 1
            if self.on_gap is not None:
                self.on_gap(self.lost_at, time.time(), self.lost_reason)
            self.lost_at = None
        self.set_state("streaming")

    def next(self) -> float | None:
        """Time of the next frame, or None (file ended, stop asked, or a file failed to open)."""
        delay = self.backoff[0]
        while not self.stop.is_set():
            try:
                if self.reader is None:
                    self.reader = self.open_reader()
                t = self.reader.grab()
            except (CameraDropped, cv2.error, OSError) as exc:
                self._drop(str(exc))
                if not self.live:
                    self.set_state("failed", str(exc))
                    return None
                self.set_state("reconnecting", f"{exc}; retrying in {delay:g} s")
                if self.stop.wait(delay):
                    break
                delay = min(delay * 2, self.backoff[1])
                continue
            if t is None:
                self.set_state("ended")
                return None
            self._recovered()
            return t
        self.set_state("stopped")
        return None

    def retrieve(self) -> np.ndarray | None:
        """The grabbed frame, or None if it cannot be decoded (the next `next()` reconnects if live)."""
        if self.reader is None:
            return None
        try:
            return self.reader.retrieve()
        except (CameraDropped, cv2.error, OSError) as exc:
            if self.live:
                self._drop(str(exc))
            return None

    def open_gap(self) -> tuple[float, str] | None:
        return (self.lost_at, self.lost_reason) if self.lost_at is not None else None

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None
