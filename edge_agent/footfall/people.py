"""One camera's frames into line crossings: blobs, person sizes, tracks and the line, without I/O.

`PeopleCounter.process(frame, ...)` takes the frames in order and returns the
crossings each one decided (a crossing is decided a little after the person
passes the line, or when their track ends; it carries the frame and time at
which they passed it). The first frames after a start, or after the
background is relearned, are held shrunk in memory until the empty scene has
been learned from their median, then counted in order and dropped: people
already in view at start are counted too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .counting import Crossing, Line, LineCounter
from .detector import WARM_UP_FRAMES, BlobDetector, PeopleConfirmer
from .person_size import PersonSize
from .settings import CameraSettings
from .tracker import Track, Tracker

WALKING = 0.3  # heights per second: slower tracks may be half-absorbed, and teach the size model nothing
PARTED = 0.75  # a new blob beside a track is someone who parted from it if it is this share of its height
WHOLE_PERSON = 0.6  # a blob this share of a person's expected height there can be a whole person
WHOLE = 0.9  # a blob at least this share of the track's recent full height shows the whole person
EDGE_MARGIN = 2.0  # pixels: a blob touching the image edge is cut, not a whole person


@dataclass
class FrameCount:
    """What processing one frame decided (crossings may be for earlier frames)."""

    crossings: list[Crossing] = field(default_factory=list)
    ended: list[Track] = field(default_factory=list)  # tracks given up for good, for dwell times

    def add(self, other: FrameCount) -> None:
        self.crossings += other.crossings
        self.ended += other.ended


class PeopleCounter:
    """Counts one line on one camera's frames; construct with the frame size, then `process` each frame."""

    def __init__(self, settings: CameraSettings, width: int, height: int):
        assert settings.line is not None
        self.settings = settings
        self.width, self.height = width, height
        self.detector = BlobDetector(settings)
        self.tracker = Tracker(settings.min_track_age, settings.max_coast_seconds, settings.handover_seconds)
        self.size = PersonSize(width, height)
        self.counter = LineCounter(Line(*settings.line), settings.hysteresis * height)
        self.people = PeopleConfirmer(settings.hog_min_height) if settings.hog_confirm else None
        self._waiting: list[tuple[np.ndarray, float, int, float]] = []

    def process(self, frame: np.ndarray, t: float, index: int, step: float) -> FrameCount:
        """One frame at time `t` (seconds), `index` in decode order, `step` seconds after the previous one."""
        prepared = self.detector.prepare(frame, self._people_boxes)
        if self.detector.frames >= WARM_UP_FRAMES:
            return self._count(prepared, t, index, step, frame)
        self._waiting.append((prepared, t, index, step))
        if len(self._waiting) < WARM_UP_FRAMES:
            return FrameCount()
        waiting, self._waiting = self._waiting, []
        self.detector.learn_empty_scene([w[0] for w in waiting])
        result = FrameCount()
        for held, held_t, held_index, held_step in waiting:
            result.add(self._count(held, held_t, held_index, held_step, None))
        return result

    def close(self) -> FrameCount:
        """The stream ended: every track ends, and the crossings they had made count."""
        ended = self.tracker.close()
        crossings = [c for track in ended for c in self.counter.finish(track.track_id)]
        return FrameCount(crossings, ended)

    def _people_boxes(self) -> np.ndarray:
        """Where tracked people are (grown by a quarter), so that their clothes are not taken for light."""
        boxes = np.array([[*tr.predict(tr.last_t), tr.w * 1.25, tr.h * 1.25] for tr in self.tracker.tracks])
        return boxes.reshape(-1, 4)

    def confirmed_centres(self) -> np.ndarray:
        """Where the confirmed people are now (for the queue zone)."""
        return np.array([tr.centre for tr in self.tracker.tracks if self.tracker.confirmed(tr)]).reshape(-1, 2)

    def counts(self, track: Track) -> bool:
        """Is this track a person whose crossings count: confirmed, once seen whole, not refused by HOG?"""
        if not self.tracker.confirmed(track) or not track.whole or track.person is False:
            return False
        return self.people is None or track.person is True or not self.people.applies(track.h)

    def _count(self, prepared: np.ndarray, t: float, index: int, step: float, frame: np.ndarray | None) -> FrameCount:
        blobs = self.detector.detect(prepared, step, self.size)
        update = self.tracker.update(blobs, t)
        if self.people is not None and frame is not None:
            self._ask_hog(frame, update.observed)
        result = FrameCount(ended=update.gone)
        parents = {tr.track_id: tr for tr in update.observed}
        for track in update.born:  # someone parting from a blob, not a piece of the one it was
            parent = parents.get(track.parent) if track.parent is not None else None
            if parent is not None and track.h >= PARTED * parent.tall:
                self.counter.part(track.track_id, track.centre, parent.track_id, parent.centre, t, index)
        for track in update.observed:
            self._judge_size(track)
            result.crossings += self.counter.observe(
                track.track_id, track.centre, t, self.counts(track), frame=index, shared=track.shared,
                partial=track.partial and not self._at_edge(track), speed=self._across(track),
            )
        for track in update.gone:
            result.crossings += self.counter.finish(track.track_id)
        return result

    def _judge_size(self, track: Track) -> None:
        """Has the track looked like a whole person (not a piece of one)? And teach the size model by it."""
        cx, cy, w, h = track.blob
        if not track.whole and not track.shared and h > 0:
            expected = self.size.expected(cx, cy + h / 2, h)
            track.whole = not expected.known or h >= WHOLE_PERSON * expected.height
        if not track.alone or not self.tracker.confirmed(track):
            return
        if np.hypot(track.vx, track.vy) < WALKING * h or h < WHOLE * track.tall or self._at_edge(track):
            return
        self.size.observe(cx, cy + h / 2, w, h)

    def _across(self, track: Track) -> float:
        """The track's speed across the line, pixels per second."""
        line = self.counter.line
        return abs(track.vx * (line.y2 - line.y1) - track.vy * (line.x2 - line.x1)) / line.length

    def _at_edge(self, track: Track) -> bool:
        """Its blob touches the picture's edge: cut by it, on its way in or out, not fading."""
        cx, cy, w, h = track.blob
        return (
            cx - w / 2 < EDGE_MARGIN or cy - h / 2 < EDGE_MARGIN
            or cx + w / 2 > self.width - EDGE_MARGIN or cy + h / 2 > self.height - EDGE_MARGIN
        )

    def _ask_hog(self, frame: np.ndarray, tracks: list[Track]) -> None:
        assert self.people is not None
        for track in tracks:
            if track.person is not None or not self.people.applies(track.h):
                continue
            track.hog_tries += 1
            if self.people.looks_like_person(frame, track.x, track.y, track.w, track.h):
                track.person = True
            elif track.hog_tries >= self.people.tries:
                track.person = False
                self.counter.veto(track.track_id)
