"""Counts, occupancy, dwell and queue per time bucket: pure aggregation, no I/O.

Times are store-local wall-clock seconds since 1970 (the store database's
clock). Every quantity is kept so that two pieces of one bucket add up
(person-seconds rather than a mean, a histogram rather than a median): the
pipeline writes what happened since its last write and the database adds it,
so a restart in the middle of a bucket loses nothing and counts nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY = 86400
# Lower edges of the dwell-time bins, in seconds; the last bin is open-ended.
DWELL_EDGES = (0, 2, 5, 10, 30, 60, 120, 300, 600)
MAX_FRAME_STEP = 2.0  # a longer step between frames is a gap, not observation


def dwell_bin(seconds: float) -> int:
    """Index of the bin holding `seconds`."""
    index = 0
    for i, edge in enumerate(DWELL_EDGES):
        if seconds >= edge:
            index = i
    return index


def dwell_labels() -> list[str]:
    """Bin names in seconds: "0-2", "2-5", ..., "600+"."""
    upper = [str(e) for e in DWELL_EDGES[1:]] + [""]
    return [f"{lo}-{hi}" if hi else f"{lo}+" for lo, hi in zip(DWELL_EDGES, upper)]


@dataclass
class Bucket:
    start: int
    seconds: int
    entries: int = 0
    exits: int = 0
    frames: int = 0
    observed_seconds: float = 0.0
    gap_seconds: float = 0.0
    occupancy: int | None = None  # estimate at the bucket's last event
    occupancy_max: int = 0
    queue_person_seconds: float = 0.0
    queue_max: int = 0
    dwell: list[int] = field(default_factory=lambda: [0] * len(DWELL_EDGES))
    dwell_seconds: float = 0.0

    @property
    def dwell_tracks(self) -> int:
        return sum(self.dwell)

    def as_dict(self, with_queue: bool = True) -> dict[str, object]:
        observed = self.observed_seconds
        result: dict[str, object] = {
            "bucket_start": self.start,
            "bucket_seconds": self.seconds,
            "entries": self.entries,
            "exits": self.exits,
            "frames": self.frames,
            "observed_seconds": round(observed, 2),
            "gap_seconds": round(self.gap_seconds, 2),
            "occupancy": self.occupancy,
            "occupancy_max": self.occupancy_max,
            "dwell_tracks": self.dwell_tracks,
            "dwell_mean_seconds": round(self.dwell_seconds / self.dwell_tracks, 2) if self.dwell_tracks else None,
            "dwell_histogram": dict(zip(dwell_labels(), self.dwell)),
        }
        if with_queue:
            result["queue_mean"] = round(self.queue_person_seconds / observed, 3) if observed else None
            result["queue_max"] = self.queue_max
        return result


class BucketAggregator:
    """Accumulates events into buckets, twice: totals since start and what is not yet written.

    Occupancy is entries minus exits since store-local midnight, never below
    zero: counters drift, and the night's empty store is the one sure reset.
    """

    def __init__(self, bucket_seconds: int, occupancy: int = 0, keep: int = 2016):
        self.bucket_seconds = bucket_seconds
        self.occupancy = occupancy
        self.keep = keep  # buckets remembered for the report (a week of 5-minute buckets)
        self.day: int | None = None
        self.totals: dict[int, Bucket] = {}
        self.unwritten: dict[int, Bucket] = {}

    def _buckets(self, ts: float) -> tuple[Bucket, Bucket]:
        start = int(ts // self.bucket_seconds) * self.bucket_seconds
        day = start // DAY
        if self.day is not None and day != self.day:
            self.occupancy = 0
        self.day = day
        pair = []
        for table in (self.totals, self.unwritten):
            bucket = table.get(start)
            if bucket is None:
                bucket = table[start] = Bucket(start, self.bucket_seconds)
            pair.append(bucket)
        if len(self.totals) > self.keep:
            del self.totals[min(self.totals)]
        return pair[0], pair[1]

    def frame(self, ts: float, step: float, queue: int | None = None) -> None:
        """One processed frame; `step` is the time since the previous one."""
        step = step if 0 < step <= MAX_FRAME_STEP else 0.0
        for bucket in self._buckets(ts):
            bucket.frames += 1
            bucket.observed_seconds += step
            bucket.occupancy = self.occupancy
            bucket.occupancy_max = max(bucket.occupancy_max, self.occupancy)
            if queue is not None:
                bucket.queue_person_seconds += queue * step
                bucket.queue_max = max(bucket.queue_max, queue)

    def crossing(self, ts: float, direction: int) -> None:
        pair = self._buckets(ts)
        self.occupancy = max(0, self.occupancy + (1 if direction > 0 else -1))
        for bucket in pair:
            if direction > 0:
                bucket.entries += 1
            else:
                bucket.exits += 1
            bucket.occupancy = self.occupancy
            bucket.occupancy_max = max(bucket.occupancy_max, self.occupancy)

    def dwell(self, ts: float, seconds: float) -> None:
        index = dwell_bin(seconds)
        for bucket in self._buckets(ts):
            bucket.dwell[index] += 1
            bucket.dwell_seconds += seconds

    def gap(self, start: float, end: float) -> None:
        """Seconds without a camera, spread over the buckets they cover."""
        t = start
        while t < end:
            bucket_end = (int(t // self.bucket_seconds) + 1) * self.bucket_seconds
            piece = min(end, bucket_end) - t
            for bucket in self._buckets(t):
                bucket.gap_seconds += piece
            t += piece

    def take_unwritten(self) -> list[Bucket]:
        taken = sorted(self.unwritten.values(), key=lambda b: b.start)
        self.unwritten = {}
        return taken

    def give_back(self, buckets: list[Bucket]) -> None:
        """A write failed: keep these for the next one (merged with anything newer)."""
        for old in buckets:
            new = self.unwritten.get(old.start)
            if new is None:
                self.unwritten[old.start] = old
                continue
            new.entries += old.entries
            new.exits += old.exits
            new.frames += old.frames
            new.observed_seconds += old.observed_seconds
            new.gap_seconds += old.gap_seconds
            new.occupancy_max = max(new.occupancy_max, old.occupancy_max)
            new.queue_person_seconds += old.queue_person_seconds
            new.queue_max = max(new.queue_max, old.queue_max)
            new.dwell = [a + b for a, b in zip(new.dwell, old.dwell)]
            new.dwell_seconds += old.dwell_seconds
