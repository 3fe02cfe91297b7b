"""Line crossings from track positions: pure logic, no images.

The rule (DESIGN.md): with the line directed from (X1, Y1) to (X2, Y2), a
track whose centre moves to the line's right-hand side on the image is an
entry, to its left-hand side an exit. On an image y grows downwards, so for
the line 0,240 → 640,240 moving down the image is an entry. The line is a
segment: only a passage between its two ends counts (a door, a path), as
people counters do.

How each crossing is counted once, and only once:

- the moment: a crossing is the step at which the centre passes the line
  between its ends; its frame and time are interpolated between the two
  observations around it, whenever the crossing is decided;
- hysteresis: a side is established only beyond a dead band around the
  line, so someone standing on it (or a centre jittering across it) never
  flips sides; a crossing is decided when the track is beyond the band on the
  other side, and undone if it comes back first;
- history: a track that ends (leaves the frame, stops and fades into the
  background, is given up) while past the line, but still inside the band,
  has crossed: it counts when the tracker gives up on it. A track that the
  tracker finds again (same place, same colours) keeps its state;
- minimum age: crossings wait until the tracker has confirmed the track, so
  a flicker blob never counts, and a fast walker still counts once confirmed;
- partings: when two people who were one blob part, the one blob's track
  stays with one of them and a new track starts on the other. A crossing
  the blob made shortly before belongs to whoever of the two is past the
  line: to both if both are (it counts for the new one too), to the new one
  alone if the old track parted back on the side it came from (it then
  returns to that side without counting a way back). A new track that parts
  on the other side of the line from an old one that never crossed has
  crossed inside the blob, and counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

ENTRY = 1
EXIT = -1
LONG_GAP = 1.0  # seconds between two sightings beyond which a crossing's moment is reckoned back at walking speed
FINISH_MARGIN = 0.25  # share of the dead band a track must end past the line by to have crossed it
PARTING_SECONDS = 3.0  # a parent's crossing this recent may have been made by two people at once


@dataclass(frozen=True)
class Line:
    """A directed counting segment in source-frame pixels."""

    x1: float
    y1: float
    x2: float
    y2: float

    @cached_property
    def length(self) -> float:
        return float(np.hypot(self.x2 - self.x1, self.y2 - self.y1))

    def distance_of(self, x: float, y: float) -> float:
        """`signed_distance` of one point, without numpy (called for every track on every frame)."""
        dx, dy = self.x2 - self.x1, self.y2 - self.y1
        return (dx * (y - self.y1) - dy * (x - self.x1)) / self.length

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

    def crossing_fraction(self, start: tuple[float, float], end: tuple[float, float]) -> float | None:
        """Where between start and end (0..1) the move passes between the line's ends, if it does."""
        d0, d1 = self.signed_distance(np.array([start, end]))
        if d0 == d1 or (d0 > 0) == (d1 > 0) and d0 != 0 and d1 != 0:
            return None
        f = float(d0 / (d0 - d1))
        meet = (start[0] + f * (end[0] - start[0]), start[1] + f * (end[1] - start[1]))
        return f if 0.0 <= self.along(np.array(meet))[0] <= 1.0 else None

    def crosses_segment(self, start: tuple[float, float], end: tuple[float, float]) -> bool:
        """Does the move start → end (on opposite sides) pass between the line's two ends?"""
        return self.crossing_fraction(start, end) is not None


@dataclass(frozen=True)
class Crossing:
    track_id: int
    direction: int  # ENTRY or EXIT
    t: float  # seconds on the pipeline's clock, when the centre was on the line
    frame: int = 0  # 0-based frame index in decode order


@dataclass
class _Track:
    side: int  # established side: +1 right (entry side), -1 left, 0 not known yet
    d: float  # latest signed distance
    point: tuple[float, float]
    frame: int
    t: float
    pending: Crossing | None = None  # passed the line away from `side`, not yet beyond the band
    own_d: float | None = None  # signed distance when last seen in a blob of its own
    credit: Crossing | None = None  # made inside a blob it parted from: counts if it walks on away from the line
    away: float = 0.0  # how far past the line it must walk for the credit to count
    latest: Crossing | None = None  # the latest decided crossing
    ready: bool = False  # confirmed by the tracker at some point
    vetoed: bool = False  # found not to be a person
    queue: list[Crossing] = field(default_factory=list)  # decided, waiting for `ready`


def _sign(value: float) -> int:
    return 1 if value > 0 else -1 if value < 0 else 0


class LineCounter:
    """Turns per-frame track positions into entries and exits."""

    def __init__(self, line: Line, band: float):
        self.line = line
        self.band = band
        self.entries = 0
        self.exits = 0
        self._tracks: dict[int, _Track] = {}

    def observe(
        self, track_id: int, point: tuple[float, float], t: float, ready: bool, frame: int = 0, shared: bool = False,
        partial: bool = False, speed: float = 0.0,
    ) -> list[Crossing]:
        """A track seen at `point`; `ready` says the tracker has confirmed it as a person.

        `shared`: the point is a guess inside a blob shared with others, not a blob of its own.
        `partial`: only a part of the person was seen (fading into the background while
        standing, half hidden), so the point may be off: it is left out, and the next
        whole sighting is compared with the last one. `speed`: pixels per second across the line.
        """
        d = self.line.distance_of(*point)
        state = self._tracks.get(track_id)
        state_ready = ready
        if state is not None and partial:
            state.ready = state.ready or state_ready
            return self._release(state)
        if state is None:
            state = self._tracks[track_id] = _Track(_sign(d) if abs(d) > self.band else 0, d, point, frame, t)
        else:
            self._step(track_id, state, d, point, frame, t, abs(speed))
        if not shared:
            state.own_d = d
        if state.credit is not None and _sign(d) == state.credit.direction and abs(d) >= state.away:
            self._decide(state, state.credit)
        if abs(d) > self.band:
            side = _sign(d)
            if state.pending is not None and state.pending.direction == side:
                self._decide(state, state.pending)
            elif state.side != side:
                state.pending = None  # reached this side around the segment's end, not through it
            state.side = side
        state.ready = state.ready or state_ready
        return self._release(state)

    def finish(self, track_id: int) -> list[Crossing]:
        """A track the tracker has given up on: a crossing it had made, past the line, counts now."""
        state = self._tracks.pop(track_id, None)
        if state is None:
            return []
        last = state.own_d if state.own_d is not None else state.d  # where it was surely seen, not a guess
        for made in (state.credit, state.pending):
            if made is not None and _sign(last) == made.direction and abs(last) >= FINISH_MARGIN * self.band:
                self._decide(state, made)  # past the line (on the line itself is not past it)
        return self._release(state) if state.ready else []

    def veto(self, track_id: int) -> None:
        """A track found not to be a person: its crossings, pending or future, never count."""
        state = self._tracks.get(track_id)
        if state is not None:
            state.vetoed, state.ready = True, False
            state.pending = None
            state.queue.clear()

    def part(
        self, track_id: int, point: tuple[float, float], parent: int, parent_point: tuple[float, float], t: float,
        frame: int = 0,
    ) -> None:
        """A new track at `point` split off `parent`, now at `parent_point`: who made the blob's crossings.

        Call before this frame's `observe` of either track.
        """
        origin = self._tracks.get(parent)
        d = self.line.distance_of(*point)
        if origin is None or not origin.side:
            return
        state = self._tracks[track_id] = _Track(_sign(d) or origin.side, d, point, frame, t)
        recent = origin.latest if origin.latest is not None and t - origin.latest.t <= PARTING_SECONDS else None
        if recent is None:
            if _sign(d) == -origin.side:  # parted on the other side: crossed inside the blob, if it walks on
                state.credit, state.away = Crossing(track_id, -origin.side, t, frame), abs(d) + self.band / 2
            return
        past = recent.direction
        if _sign(d) != past:
            return  # the new one stayed on the near side: the crossing was the old track's own
        origin_d = self.line.distance_of(*parent_point)
        if _sign(origin_d) == past:  # both are past: both crossed, if the new one walks on away from the line
            state.credit, state.away = Crossing(track_id, past, recent.t, recent.frame), abs(d) + self.band / 2
            return
        # Only the new one is past the line: the crossing was its, and the old track never made it.
        state.side = past
        origin.side, origin.latest, origin.pending = -past, None, None
        origin.d, origin.point, origin.frame, origin.t = origin_d, parent_point, frame, t

    def _step(
        self, track_id: int, state: _Track, d: float, point: tuple[float, float], frame: int, t: float, speed: float
    ) -> None:
        """The move from the previous observation: did it pass the line between its ends?

        Between two sightings close in time, the moment is interpolated; after a long
        gap (someone stood still, faded, then walked on) it is reckoned back from
        where they are now at the speed they walk at now.
        """
        before, now = _sign(state.d), _sign(d)
        if now != 0 and now != before:
            f = self.line.crossing_fraction(state.point, point)
            if f is not None:
                if t - state.t > LONG_GAP and speed > 0:
                    f = max(f, 1.0 - abs(d) / speed / (t - state.t))
                moment = Crossing(track_id, now, state.t + f * (t - state.t), round(state.frame + f * (frame - state.frame)))
                state.credit = None  # back over the line: it was not one of those who crossed in the blob
                if state.side == 0 and before != 0 and state.pending is None:
                    state.side = before  # born inside the band: the side it came from is the side it was on
                state.pending = moment if now != state.side else None
        state.d, state.point, state.frame, state.t = d, point, frame, t

    def _decide(self, state: _Track, crossing: Crossing) -> None:
        state.latest = crossing
        if crossing is state.credit:
            state.credit = None
            state.queue.append(crossing)
            return
        if not state.ready and state.queue and state.queue[-1].direction == -crossing.direction:
            state.queue.pop()  # there and back before anyone knew it was a person: nothing happened
        else:
            state.queue.append(crossing)
        state.pending = None
        state.side = crossing.direction

    def _release(self, state: _Track) -> list[Crossing]:
        if state.vetoed or not state.ready or not state.queue:
            return []
        released, state.queue = state.queue, []
        for crossing in released:
            if crossing.direction == ENTRY:
                self.entries += 1
            else:
                self.exits += 1
        return released
