"""Blob tracks across frames: constant-velocity prediction and gated greedy matching.

Pure numpy, no images. What it is built to survive (the complaints people
counters get):

- flicker and brief occlusion: a track coasts on its velocity for up to
  `max_coast_seconds` without a detection;
- fast walkers: the gate grows with the track's speed and the time since it
  was last seen, so a long stride between two processed frames still matches;
- two people merging for a moment: a blob holding the predictions of two
  confirmed tracks does not drag either to its centre; each moves to the
  place inside the blob nearest its own prediction, and picks up its own blob
  again when they part;
- one person in pieces (legs and torso as two blobs): a blob whose centre lies
  inside a matched track's box starts no new track;
- a new track that splits off a confirmed one (a group parting) names it as
  its parent, so the counter knows which side of the line it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

HELD_DAMPING = 0.9  # inside a shared blob a track's own motion is a guess: let it fade
GATE_SIZE = 0.8  # gate radius as a share of the track's larger side
GATE_SPEED = 0.6  # plus this share of the distance it may have moved unpredicted
VELOCITY_GAIN = 0.5  # alpha-beta filter: weight of a new velocity measurement
SIZE_GAIN = 0.3
TENTATIVE_PENALTY = 0.25  # confirmed tracks win ties against tentative ones


@dataclass
class Track:
    """One moving blob; positions are blob centres in source-frame pixels."""

    track_id: int
    x: float
    y: float
    w: float
    h: float
    first_t: float
    last_t: float  # last time a detection was matched
    vx: float = 0.0  # pixels per second
    vy: float = 0.0
    hits: int = 1
    parent: int | None = None  # the confirmed track this one split from, if any
    person: bool | None = None  # HOG verdict; None = not asked or not decided
    hog_tries: int = 0
    observed: bool = True  # matched a detection in the latest frame

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x, self.y)

    @property
    def dwell(self) -> float:
        return self.last_t - self.first_t

    def predict(self, t: float) -> tuple[float, float]:
        dt = t - self.last_t
        return (self.x + self.vx * dt, self.y + self.vy * dt)

    def box(self) -> tuple[float, float, float, float]:
        return (self.x - self.w / 2, self.y - self.h / 2, self.w, self.h)


@dataclass
class TrackUpdate:
    observed: list[Track] = field(default_factory=list)  # matched a detection this frame
    lost: list[Track] = field(default_factory=list)  # ended this frame
    born: list[Track] = field(default_factory=list)


def _inside(points: np.ndarray, boxes: np.ndarray, grow: float = 0.0) -> np.ndarray:
    """(points × boxes) bool: does point i lie in box j (cx, cy, w, h), grown by a share?"""
    if len(points) == 0 or len(boxes) == 0:
        return np.zeros((len(points), len(boxes)), dtype=bool)
    half_w = boxes[None, :, 2] * (0.5 + grow / 2)
    half_h = boxes[None, :, 3] * (0.5 + grow / 2)
    return (np.abs(points[:, None, 0] - boxes[None, :, 0]) <= half_w) & (
        np.abs(points[:, None, 1] - boxes[None, :, 1]) <= half_h
    )


def _clamp_into(track: Track, predicted: np.ndarray, det: np.ndarray) -> np.ndarray:
    """The track's own box placed inside a larger blob, as near its prediction as it fits."""
    cx, cy, w, h = det
    slack_x, slack_y = max(0.0, (w - track.w) / 2), max(0.0, (h - track.h) / 2)
    x = min(max(predicted[0], cx - slack_x), cx + slack_x)
    y = min(max(predicted[1], cy - slack_y), cy + slack_y)
    return np.array([x, y, min(w, track.w), min(h, track.h)])


def _parent(det: np.ndarray, boxes: dict[int, tuple[float, float, float, float]]) -> int | None:
    """The track whose last box held this new blob's centre: two people parting after a merge."""
    for track_id, (x, y, w, h) in boxes.items():
        if x - 0.1 * w <= det[0] <= x + 1.1 * w and y - 0.1 * h <= det[1] <= y + 1.1 * h:
            return track_id
    return None


class Tracker:
    """Keeps tracks from frame to frame; `update` takes detections as (cx, cy, w, h) rows."""

    def __init__(self, min_hits: int, max_coast_seconds: float):
        self.min_hits = min_hits
        self.max_coast_seconds = max_coast_seconds
        self.tracks: list[Track] = []
        self._next_id = 1

    def confirmed(self, track: Track) -> bool:
        return track.hits >= self.min_hits

    def update(self, detections: np.ndarray, t: float) -> TrackUpdate:
        """Match this frame's blobs, given as (cx, cy, w, h) rows."""
        dets = np.asarray(detections, dtype=np.float64).reshape(-1, 4)
        tracks = self.tracks
        predicted = np.array([tr.predict(t) for tr in tracks]).reshape(-1, 2)
        before = {tr.track_id: tr.box() for tr in tracks if tr.observed and self.confirmed(tr)}
        for tr in tracks:
            tr.observed = False
        used = np.zeros(len(dets), dtype=bool)
        held = self._merged_blobs(predicted, dets, used)
        result = TrackUpdate()
        for i, j in held.items():
            track = tracks[i]
            self._correct(track, _clamp_into(track, predicted[i], dets[j]), t)
            track.vx, track.vy = track.vx * HELD_DAMPING, track.vy * HELD_DAMPING
            result.observed.append(track)
        for i, j in self._match(predicted, dets, t, used, set(held)):
            self._correct(tracks[i], dets[j], t)
            used[j] = True
            result.observed.append(tracks[i])
        taken = [[tr.x, tr.y, tr.w, tr.h] for tr in result.observed]
        for j in sorted(np.flatnonzero(~used), key=lambda j: -dets[j, 2] * dets[j, 3]):  # biggest first
            if _inside(dets[j : j + 1, :2], np.array(taken).reshape(-1, 4)).any():
                continue  # a piece of someone already tracked
            taken.append(list(dets[j]))
            track = Track(self._next_id, *dets[j], first_t=t, last_t=t, parent=_parent(dets[j], before))
            self._next_id += 1
            tracks.append(track)
            result.born.append(track)
            result.observed.append(track)
        keep = []
        for tr in tracks:
            if t - tr.last_t > self.max_coast_seconds:
                result.lost.append(tr)
            else:
                keep.append(tr)
        self.tracks = keep
        return result

    def close(self) -> list[Track]:
        """End every track (the stream ended); returns them."""
        ended, self.tracks = self.tracks, []
        return ended

    def _merged_blobs(self, predicted: np.ndarray, dets: np.ndarray, used: np.ndarray) -> dict[int, int]:
        """Blobs holding two or more confirmed tracks' predictions: {track index: blob index}."""
        confirmed = np.array([self.confirmed(tr) for tr in self.tracks], dtype=bool)
        inside = _inside(predicted, dets) & confirmed[:, None]
        held: dict[int, int] = {}
        for j in np.flatnonzero(inside.sum(axis=0) >= 2):
            used[j] = True
            for i in np.flatnonzero(inside[:, j]):
                held.setdefault(int(i), int(j))
        return held

    def _match(
        self, predicted: np.ndarray, dets: np.ndarray, t: float, used: np.ndarray, held: set[int]
    ) -> list[tuple[int, int]]:
        if len(self.tracks) == 0 or len(dets) == 0:
            return []
        size = np.array([max(tr.w, tr.h) for tr in self.tracks])
        speed = np.array([np.hypot(tr.vx, tr.vy) for tr in self.tracks])
        since = np.array([t - tr.last_t for tr in self.tracks])
        gate = GATE_SIZE * size + GATE_SPEED * speed * since + 0.25 * size * np.minimum(since, 1.0)
        distance = np.hypot(predicted[:, None, 0] - dets[None, :, 0], predicted[:, None, 1] - dets[None, :, 1])
        cost = distance / gate[:, None]
        tentative = np.array([not self.confirmed(tr) for tr in self.tracks])
        cost = cost + TENTATIVE_PENALTY * tentative[:, None]
        cost[list(held), :] = np.inf
        cost[:, used] = np.inf
        pairs: list[tuple[int, int]] = []
        taken_t: set[int] = set()
        taken_d: set[int] = set()
        candidates = np.argwhere(cost <= 1.0 + TENTATIVE_PENALTY * tentative[:, None])
        order = np.argsort(cost[candidates[:, 0], candidates[:, 1]], kind="stable")
        for i, j in candidates[order]:
            if i in taken_t or j in taken_d:
                continue
            taken_t.add(int(i))
            taken_d.add(int(j))
            pairs.append((int(i), int(j)))
        return pairs

    def _correct(self, track: Track, det: np.ndarray, t: float) -> None:
        dt = t - track.last_t
        if dt > 0:
            vx, vy = (det[0] - track.x) / dt, (det[1] - track.y) / dt
            gain = 1.0 if track.hits == 1 else VELOCITY_GAIN
            track.vx += gain * (vx - track.vx)
            track.vy += gain * (vy - track.vy)
        track.x, track.y = float(det[0]), float(det[1])
        track.w += SIZE_GAIN * (det[2] - track.w)
        track.h += SIZE_GAIN * (det[3] - track.h)
        track.last_t = t
        track.hits += 1
        track.observed = True
