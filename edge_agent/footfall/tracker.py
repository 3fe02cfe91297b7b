"""Blob tracks across frames: one identity per person through flicker, merges, partings and pauses.

Pure numpy, no images. What it is built to survive (the complaints people
counters get):

- flicker and brief occlusion: a track coasts on its velocity for up to
  `max_coast_seconds` without a detection;
- fast walkers: the gate grows with the track's speed and the time since it
  was last seen, so a long stride between two processed frames still matches;
- two people becoming one blob (passing, walking together): matching weighs
  place and colours, and a confirmed track whose prediction lies in a blob
  another track took is held inside that blob, as near its own prediction as
  it fits, while the blob is big enough for both; when they part, each picks
  up the blob that looks like it. A blob the size of one person holds one
  track, so tracks never pile up on one person;
- one person in pieces (legs and torso as two blobs): a blob whose centre lies
  inside a matched track's box starts no new track;
- someone who stops until the background takes them in, or hides behind a
  post for longer than a coast: the lost track is kept for `reid_seconds`
  and competes for blobs where it would be (where it stood, or further along
  its walk); a blob with its colours takes its identity back, so the person
  keeps the side of the line they came from. A ghost (the floor revealed
  where they stood) has the floor's colours and does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .detector import COLOUR_FEATURES, Blobs

GATE_SIZE = 0.8  # gate radius as a share of the track's larger side
GATE_SPEED = 0.6  # plus this share of the distance it may have moved unpredicted
VELOCITY_GAIN = 0.5  # alpha-beta filter: weight of a new velocity measurement
SIZE_GAIN = 0.3
COLOUR_GAIN = 0.2
COLOUR_WEIGHT = 3.0  # cost of a colour difference (mean absolute, 0..1) against a gate's worth of distance
TENTATIVE_PENALTY = 0.25  # confirmed tracks win ties against tentative ones
PARTIAL = 0.6  # a blob shorter than this share of the track's recent height shows only a part of the person
FADING = 0.9  # ... or this share, for someone standing still: the background is taking them in
STILL = 0.3  # heights per second: slower than this, a person is standing
TALL_FADE = 0.98  # per detection: how fast the memory of a track's full height fades
WHOLE_SHARE = 0.8  # a blob inside a track's box, this share of its size or more, is someone else
PIECE = 0.6  # a blob with less than this many people's worth of foreground can be a piece of someone
PIECE_REACH = 0.5  # ... if it lies within their box grown by this share
MAX_HELD_SECONDS = 2.0  # a track held in others' blobs longer, without a blob of its own, is let go
HOLD_SHARE = 0.6  # without learned sizes: a blob holds tracks while its box is this share of theirs together
ROOM = 0.4  # a blob holds one more track while it has room for that many more people
REID_COLOUR = 0.08  # largest colour difference for a lost track to be found again
REID_REACH = 1.5  # and how far (in its heights) from where it would be


@dataclass(eq=False)  # a track is itself: compared by identity
class Track:
    """One person; positions are blob centres in source-frame pixels."""

    track_id: int
    x: float
    y: float
    w: float
    h: float
    first_t: float
    last_t: float  # last time a detection was matched
    colour: np.ndarray = field(default_factory=lambda: np.zeros(COLOUR_FEATURES))
    vx: float = 0.0  # pixels per second
    vy: float = 0.0
    hits: int = 1
    parent: int | None = None  # the confirmed track this one split from, if any
    person: bool | None = None  # HOG verdict; None = not asked or not decided
    hog_tries: int = 0
    observed: bool = True  # matched a detection in the latest frame
    shared: bool = False  # held inside a blob another track took
    alone: bool = False  # matched a whole blob of its own in the latest frame
    blob: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # the last blob it matched (cx, cy, w, h)
    tall: float = 0.0  # the tallest it has looked lately: shorter blobs are a part of it
    partial: bool = False  # its latest blob was shorter than it has lately been (fading while still, half hidden)
    whole: bool = False  # has looked like a whole person at least once (set by the caller, who knows sizes)
    held_since: float | None = None  # when it was last matched to a blob of its own, if held since

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
    born: list[Track] = field(default_factory=list)
    found: list[Track] = field(default_factory=list)  # lost tracks that came back this frame
    gone: list[Track] = field(default_factory=list)  # given up for good: never confirmed, or lost too long


def _inside(points: np.ndarray, boxes: np.ndarray, grow: float = 0.0) -> np.ndarray:
    """(points × boxes) bool: does point i lie in box j (cx, cy, w, h), grown by a share?"""
    if len(points) == 0 or len(boxes) == 0:
        return np.zeros((len(points), len(boxes)), dtype=bool)
    half_w = boxes[None, :, 2] * (0.5 + grow / 2)
    half_h = boxes[None, :, 3] * (0.5 + grow / 2)
    return (np.abs(points[:, None, 0] - boxes[None, :, 0]) <= half_w) & (
        np.abs(points[:, None, 1] - boxes[None, :, 1]) <= half_h
    )


def _clamp_into(track: Track, predicted: tuple[float, float], det: np.ndarray) -> np.ndarray:
    """The track's own box placed inside a larger blob, as near its prediction as it fits."""
    cx, cy, w, h = det
    slack_x, slack_y = max(0.0, (w - track.w) / 2), max(0.0, (h - track.h) / 2)
    x = min(max(predicted[0], cx - slack_x), cx + slack_x)
    y = min(max(predicted[1], cy - slack_y), cy + slack_y)
    return np.array([x, y, min(w, track.w), min(h, track.h)])


def colour_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute difference of colour features (0 same, 1 black against white); broadcasts."""
    return np.abs(a - b).mean(axis=-1)


class Tracker:
    """Keeps tracks from frame to frame; `update` takes one frame's blobs."""

    def __init__(self, min_hits: int, max_coast_seconds: float, reid_seconds: float = 10.0):
        self.min_hits = min_hits
        self.max_coast_seconds = max_coast_seconds
        self.reid_seconds = reid_seconds
        self.tracks: list[Track] = []
        self.lost: list[Track] = []  # confirmed tracks not seen lately, kept to be found again
        self._next_id = 1

    def confirmed(self, track: Track) -> bool:
        return track.hits >= self.min_hits

    def update(self, blobs: Blobs, t: float) -> TrackUpdate:
        dets = np.asarray(blobs.boxes, dtype=np.float64).reshape(-1, 4)
        colours = np.asarray(blobs.colours, dtype=np.float64).reshape(-1, COLOUR_FEATURES)
        lost, self.lost = self.lost, []
        self.tracks = tracks = self.tracks + lost  # lost tracks compete for blobs too: found again, not replaced
        coast = self.max_coast_seconds  # a lost track is looked for where its walk would have taken it, not further
        predicted = np.array([tr.predict(min(t, tr.last_t + coast)) for tr in tracks]).reshape(-1, 2)
        before = {tr.track_id: tr.box() for tr in tracks if tr.observed and self.confirmed(tr)}
        for tr in tracks:
            tr.observed = tr.shared = tr.alone = False
        result = TrackUpdate()
        owner = {j: [i] for i, j in self._match(predicted, dets, colours, t, len(tracks) - len(lost))}
        result.found = [tracks[i] for members in owner.values() for i in members if tracks[i] in lost]
        self._hold(predicted, dets, blobs.people if blobs.sized else None, t, owner)
        for j, members in owner.items():
            for i in members:
                if len(members) == 1:
                    self._correct(tracks[i], dets[j], colours[j], t)
                else:  # a blob of several people: its centre is none of them
                    self._hold_in(tracks[i], predicted[i], dets[j], t)
                result.observed.append(tracks[i])
        pieces = np.bincount(blobs.groups) if len(blobs.groups) else np.zeros(0, dtype=int)
        for j, members in owner.items():
            if len(members) == 1 and pieces[blobs.groups[j]] == 1:
                tracks[members[0]].alone = True
        self._births(dets, colours, blobs.mass, t, set(owner), before, result)
        keep = []
        for tr in tracks:
            if t - tr.last_t <= self.max_coast_seconds:
                keep.append(tr)
            elif self.confirmed(tr):
                self.lost.append(tr)  # may be found again
            else:
                result.gone.append(tr)
        self.tracks = keep + [tr for tr in result.found if tr not in keep]
        self.lost = [tr for tr in self.lost if tr not in self.tracks]
        result.gone += [tr for tr in self.lost if t - tr.last_t > self.reid_seconds]
        self.lost = [tr for tr in self.lost if t - tr.last_t <= self.reid_seconds]
        return result

    def close(self) -> list[Track]:
        """End every track (the stream ended), lost ones too; returns them."""
        ended, self.tracks = self.tracks + self.lost, []
        self.lost = []
        return ended

    # -- steps --------------------------------------------------------------------------------

    def _hold_in(self, track: Track, predicted: np.ndarray, det: np.ndarray, t: float) -> None:
        if track.held_since is None:
            track.held_since = track.last_t
        place = _clamp_into(track, (float(predicted[0]), float(predicted[1])), det)
        track.x, track.y = float(place[0]), float(place[1])
        track.last_t = t
        track.observed = track.shared = True

    def _match(
        self, predicted: np.ndarray, dets: np.ndarray, colours: np.ndarray, t: float, first_lost: int
    ) -> list[tuple[int, int]]:
        """Greedy one-to-one matches by place and colours, confirmed tracks first.

        Tracks from `first_lost` on were lost (faded into the background, hidden for
        a while): they may take a blob only if its colours are theirs.
        """
        if len(self.tracks) == 0 or len(dets) == 0:
            return []
        w, h, vx, vy, last_t, hits = np.array(
            [(tr.w, tr.h, tr.vx, tr.vy, tr.last_t, tr.hits) for tr in self.tracks], dtype=np.float64
        ).T
        size = np.maximum(w, h)
        since = t - last_t
        gate = GATE_SIZE * size + GATE_SPEED * np.hypot(vx, vy) * since + 0.25 * size * np.minimum(since, 1.0)
        gate[first_lost:] = np.minimum(gate[first_lost:], REID_REACH * size[first_lost:])
        distance = np.hypot(predicted[:, None, 0] - dets[None, :, 0], predicted[:, None, 1] - dets[None, :, 1])
        near = distance / gate[:, None]
        known = hits > 1  # a first sighting's colours are still rough
        track_colours = np.array([tr.colour for tr in self.tracks])
        difference = colour_distance(track_colours[:, None, :], colours[None, :, :])
        cost = near + COLOUR_WEIGHT * difference * known[:, None] + TENTATIVE_PENALTY * (hits < self.min_hits)[:, None]
        cost[near > 1.0] = np.inf
        cost[first_lost:][difference[first_lost:] > REID_COLOUR] = np.inf
        pairs: list[tuple[int, int]] = []
        taken_t: set[int] = set()
        taken_d: set[int] = set()
        candidates = np.argwhere(np.isfinite(cost))
        order = np.argsort(cost[candidates[:, 0], candidates[:, 1]], kind="stable")
        for i, j in candidates[order].tolist():
            if i in taken_t or j in taken_d:
                continue
            taken_t.add(i)
            taken_d.add(j)
            pairs.append((i, j))
        return pairs

    def _hold(
        self, predicted: np.ndarray, dets: np.ndarray, people: np.ndarray | None, t: float, owner: dict[int, list[int]]
    ) -> None:
        """Unmatched confirmed tracks whose prediction lies in a taken blob with room for one more join it.

        People passing or walking together become one blob, whose centre is
        neither of them: every track in it, the one that matched it too, then
        keeps to its own prediction inside the blob, and picks up its own blob
        again when they part. The freshest tracks get the room first.
        """
        matched = {i for members in owner.values() for i in members}
        waiting = [
            i for i, tr in enumerate(self.tracks)
            if i not in matched and self.confirmed(tr) and t - tr.last_t <= self.max_coast_seconds
            and (tr.held_since is None or t - tr.held_since <= MAX_HELD_SECONDS)
        ]
        if not waiting or len(dets) == 0:
            return
        waiting.sort(key=lambda i: -self.tracks[i].last_t)
        inside = _inside(predicted[waiting], dets)
        for row, i in enumerate(waiting):
            for j in sorted(np.flatnonzero(inside[row]), key=lambda j: np.hypot(*(dets[j, :2] - predicted[i]))):
                members = owner.get(int(j), [])
                if not members:
                    continue  # an unmatched blob: the track will match it next frame, or a new track starts
                if not self._room(dets[j], people[j] if people is not None else None, members + [i]):
                    continue  # no room in it for another person: it cannot hide this one
                members.append(i)
                break

    def _room(self, det: np.ndarray, people: float | None, members: list[int]) -> bool:
        """Is the blob big enough for all these tracks: by learned person sizes, else by their own sizes?"""
        if people is not None:
            return people >= len(members) - 1 + ROOM
        area = sum(self.tracks[m].w * max(self.tracks[m].h, self.tracks[m].tall) for m in members)
        return det[2] * det[3] >= HOLD_SHARE * area

    def _births(
        self,
        dets: np.ndarray,
        colours: np.ndarray,
        mass: np.ndarray,
        t: float,
        used: set[int],
        before: dict[int, tuple[float, float, float, float]],
        result: TrackUpdate,
    ) -> None:
        taken = [[tr.x, tr.y, tr.w, tr.h] for tr in result.observed]
        for j in sorted(set(range(len(dets))) - used, key=lambda j: -dets[j, 2] * dets[j, 3]):  # biggest first
            boxes = np.array(taken).reshape(-1, 4)
            holders = _inside(dets[j : j + 1, :2], boxes)[0]
            if (holders & (dets[j, 2] * dets[j, 3] < WHOLE_SHARE * boxes[:, 2] * boxes[:, 3])).any():
                continue  # a piece of someone already tracked (a whole person there is someone else)
            if len(mass) and mass[j] < PIECE and _inside(dets[j : j + 1, :2], boxes, grow=PIECE_REACH).any():
                continue  # too little of a person to be a new one, right beside someone tracked: a piece of them
            taken.append(list(dets[j]))
            track = Track(self._next_id, *dets[j], first_t=t, last_t=t, colour=colours[j].copy(),
                          parent=_parent(dets[j], before))
            self._next_id += 1
            self.tracks.append(track)
            result.born.append(track)
            result.observed.append(track)

    def _correct(self, track: Track, det: np.ndarray, colour: np.ndarray, t: float) -> None:
        """Move the track to its blob; a blob shrinking under someone standing (fading) says nothing of speed."""
        still = np.hypot(track.vx, track.vy) < STILL * track.tall  # before this step: standing
        track.partial = float(det[3]) < (FADING if still else PARTIAL) * track.tall
        dt = t - track.last_t
        if track.partial and still:
            track.vx, track.vy = 0.5 * track.vx, 0.5 * track.vy
        elif dt > 0:
            vx, vy = (det[0] - track.x) / dt, (det[1] - track.y) / dt
            gain = 1.0 if track.hits == 1 else VELOCITY_GAIN
            track.vx += gain * (vx - track.vx)
            track.vy += gain * (vy - track.vy)
        track.x, track.y = float(det[0]), float(det[1])
        track.blob = (float(det[0]), float(det[1]), float(det[2]), float(det[3]))
        track.tall = max(float(det[3]), track.tall * TALL_FADE)
        if not track.partial:  # a part of someone tells neither their size nor their colours
            track.w += SIZE_GAIN * (det[2] - track.w)
            track.h += SIZE_GAIN * (det[3] - track.h)
            track.colour += (1.0 if track.hits == 1 else COLOUR_GAIN) * (colour - track.colour)
        track.last_t = t
        track.hits += 1
        track.observed = True
        track.held_since = None


def _parent(det: np.ndarray, boxes: dict[int, tuple[float, float, float, float]]) -> int | None:
    """The track whose last box held this new blob's centre: two people parting after a merge."""
    for track_id, (x, y, w, h) in boxes.items():
        if x - 0.1 * w <= det[0] <= x + 1.1 * w and y - 0.1 * h <= det[1] <= y + 1.1 * h:
            return track_id
    return None
