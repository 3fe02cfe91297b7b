"""Line crossings from track positions: pure logic, no images.

The rule (DESIGN.md): with the line directed from (X1, Y1) to (X2, Y2), a
track whose centre moves to the line's right-hand side on the image is an
entry, to its left-hand side an exit. On an image y grows downwards, so for
the line 0,240 → 640,240 moving down the image is an entry.

What keeps one person from being counted many times:

- hysteresis: a side is only taken beyond a dead band around the line, so
  someone standing on the line (or a centre that jitters across it) never
  flips sides;
- minimum age: crossings of a track wait until the tracker has confirmed it,
  so a flicker blob never counts, and a fast walker still counts once confirmed;
- handover: a confirmed track lost inside the band (merged with someone,
  absorbed into the background while lingering) leaves its side behind, and a
  track born there shortly after takes it over instead of starting afresh;
- the segment: only crossings between the line's two ends count (a door, not
  the whole image row).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ENTRY = 1
EXIT = -1


@dataclass(frozen=True)
class Line:
    """A directed counting line in source-frame pixels."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def length(self) -> float:
        return float(np.hypot(self.x2 - self.x1, self.y2 - self.y1))

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """Distance of each (x, y) from the line; positive on the right-hand (entry) side."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        dx, dy = self.x2 - self.x1, self.y2 - self.y1
        return (dx * (p[:, 1] - self.y1) - dy * (p[:, 0] - self.x1)) / self.length

    def along(self, points: np.ndarray) -> np.ndarray:
        """Position of each point's projection on the segment: 0 at (X1, Y1), 1 at (X2, Y2)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        dx, dy = self.x2 - self.x1, self.y2 - self.y1
        return ((p[:, 0] - self.x1) * dx + (p[:, 1] - self.y1) * dy) / (dx * dx + dy * dy)

    def crosses_segment(self, start: tuple[float, float], end: tuple[float, float]) -> bool:
        """Does the move start → end (on opposite sides) pass between the line's two ends?"""
        d0, d1 = self.signed_distance(np.array([start, end]))
        if d0 == d1:
            return False
        f = d0 / (d0 - d1)
        meet = (start[0] + f * (end[0] - start[0]), start[1] + f * (end[1] - start[1]))
        return bool(0.0 <= self.along(np.array(meet))[0] <= 1.0)


@dataclass(frozen=True)
class Crossing:
    track_id: int
    direction: int  # ENTRY or EXIT
    t: float  # seconds on the pipeline's clock


@dataclass
class _Side:
    side: int  # +1 right (entry side), -1 left, 0 not known yet
    anchor: tuple[float, float]  # last position beyond the band on `side`
    last: tuple[float, float]
    ready: bool = False  # confirmed by the tracker at some point
    vetoed: bool = False  # found not to be a person
    inherited: bool = False  # took over a confirmed track's side: already known to be a person
    pending: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Handover:
    point: tuple[float, float]
    side: int
    anchor: tuple[float, float]
    t: float


class LineCounter:
    """Turns per-frame track positions into entries and exits."""

    def __init__(self, line: Line, band: float, handover_seconds: float, handover_radius: float):
        self.line = line
        self.band = band
        self.handover_seconds = handover_seconds
        self.handover_radius = handover_radius
        self.entries = 0
        self.exits = 0
        self._tracks: dict[int, _Side] = {}
        self._handovers: list[_Handover] = []

    def observe(
        self, track_id: int, point: tuple[float, float], t: float, ready: bool, parent: int | None = None
    ) -> list[Crossing]:
        """A track seen at `point`; `ready` says the tracker has confirmed it as a person.

        A new track that split off `parent` starts on the parent's side: if it
        parted on the other side of the line, its crossing happened while the
        two were one blob, and counts once the new track is confirmed.
        """
        d = float(self.line.signed_distance(np.array(point))[0])
        state = self._tracks.get(track_id)
        if state is None:
            origin = self._tracks.get(parent) if parent is not None else None
            if origin is not None and origin.side:
                state = self._tracks[track_id] = _Side(origin.side, origin.anchor, point)
            else:
                state = self._tracks[track_id] = self._born(point, d, t)
        if abs(d) > self.band:
            side = 1 if d > 0 else -1
            if state.side and side != state.side and self.line.crosses_segment(state.anchor, point):
                if state.pending and state.pending[-1] == -side:
                    state.pending.pop()  # back again before confirmation: nothing happened
                else:
                    state.pending.append(side)
            state.side, state.anchor = side, point
        state.last = point
        state.ready = state.ready or ready
        if state.vetoed or not (ready or state.inherited) or not state.pending:
            return []
        crossings = [Crossing(track_id, direction, t) for direction in state.pending]
        state.pending.clear()
        for crossing in crossings:
            if crossing.direction == ENTRY:
                self.entries += 1
            else:
                self.exits += 1
        return crossings

    def lost(self, track_id: int, t: float) -> None:
        """A track ended; near the line, a confirmed one leaves its side for a successor."""
        state = self._tracks.pop(track_id, None)
        if state is None or not state.ready or not state.side:
            return
        d = abs(float(self.line.signed_distance(np.array(state.last))[0]))
        if d <= self.band + self.handover_radius:
            self._handovers.append(_Handover(state.last, state.side, state.anchor, t))

    def veto(self, track_id: int) -> None:
        """A track found not to be a person: its crossings, pending or future, never count."""
        state = self._tracks.get(track_id)
        if state is not None:
            state.vetoed, state.ready = True, False
            state.pending.clear()

    def _born(self, point: tuple[float, float], d: float, t: float) -> _Side:
        self._handovers = [h for h in self._handovers if t - h.t <= self.handover_seconds]
        if abs(d) <= self.band:
            near = [h for h in self._handovers if np.hypot(h.point[0] - point[0], h.point[1] - point[1]) <= self.handover_radius]
            if near:
                heir = min(near, key=lambda h: np.hypot(h.point[0] - point[0], h.point[1] - point[1]))
                self._handovers.remove(heir)
                return _Side(heir.side, heir.anchor, point, ready=True, inherited=True)
            return _Side(0, point, point)
        return _Side(1 if d > 0 else -1, point, point)
