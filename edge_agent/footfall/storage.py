"""The footfall tables of the store database: the only place their SQL lives.

Camera buckets are *added* (each write brings what happened since the last
one); imported counter rows *replace* (re-importing a file changes nothing).
Both key on (source, bucket_start), so each source owns its own rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from ..store_db import StoreDatabase, utc_now_iso, write_transaction
from .buckets import DAY, DWELL_EDGES, Bucket

_ADD_BUCKET = """
INSERT INTO footfall(source, bucket_start, bucket_seconds, entries, exits, frames, observed_seconds,
    gap_seconds, occupancy, occupancy_max, queue_person_seconds, queue_max, dwell_tracks,
    dwell_seconds, updated_at)
VALUES (:source, :start, :seconds, :entries, :exits, :frames, :observed_seconds, :gap_seconds,
    :occupancy, :occupancy_max, :queue_person_seconds, :queue_max, :dwell_tracks, :dwell_seconds, :now)
ON CONFLICT(source, bucket_start) DO UPDATE SET
    bucket_seconds = excluded.bucket_seconds,
    entries = entries + excluded.entries,
    exits = exits + excluded.exits,
    frames = frames + excluded.frames,
    observed_seconds = observed_seconds + excluded.observed_seconds,
    gap_seconds = gap_seconds + excluded.gap_seconds,
    occupancy = coalesce(excluded.occupancy, occupancy),
    occupancy_max = max(coalesce(occupancy_max, 0), coalesce(excluded.occupancy_max, 0)),
    queue_person_seconds = CASE WHEN excluded.queue_person_seconds IS NULL THEN queue_person_seconds
        ELSE coalesce(queue_person_seconds, 0) + excluded.queue_person_seconds END,
    queue_max = CASE WHEN excluded.queue_max IS NULL THEN queue_max
        ELSE max(coalesce(queue_max, 0), excluded.queue_max) END,
    dwell_tracks = dwell_tracks + excluded.dwell_tracks,
    dwell_seconds = dwell_seconds + excluded.dwell_seconds,
    updated_at = excluded.updated_at
"""

_ADD_DWELL = """
INSERT INTO footfall_dwell(source, bucket_start, dwell_from_seconds, tracks) VALUES (?, ?, ?, ?)
ON CONFLICT(source, bucket_start, dwell_from_seconds) DO UPDATE SET tracks = tracks + excluded.tracks
"""

_REPLACE_COUNTS = """
INSERT INTO footfall(source, bucket_start, bucket_seconds, entries, exits, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT(source, bucket_start) DO UPDATE SET
    bucket_seconds = excluded.bucket_seconds, entries = excluded.entries,
    exits = excluded.exits, updated_at = excluded.updated_at
WHERE bucket_seconds != excluded.bucket_seconds OR entries != excluded.entries OR exits != excluded.exits
"""


@dataclass(frozen=True)
class Gap:
    """A time the camera gave no frames, in store-local seconds."""

    start: float
    end: float
    reason: str

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)

    def as_dict(self) -> dict[str, object]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "seconds": round(self.seconds, 3), "reason": self.reason}


class FootfallStorage:
    """Writes footfall for one store database connection (one per thread)."""

    def __init__(self, store: StoreDatabase):
        self.conn: sqlite3.Connection = store.conn

    def add_buckets(
        self,
        source: str,
        buckets: Iterable[Bucket],
        *,
        with_queue: bool,
        gaps: Iterable[Gap] = (),
        status: tuple[str, str, int, int] | None = None,
    ) -> None:
        """Add camera buckets, record finished gaps and the camera's state, in one transaction."""
        now = utc_now_iso()
        rows, dwell = [], []
        for b in buckets:
            rows.append({
                "source": source, "start": b.start, "seconds": b.seconds, "entries": b.entries,
                "exits": b.exits, "frames": b.frames, "observed_seconds": b.observed_seconds,
                "gap_seconds": b.gap_seconds, "occupancy": b.occupancy, "occupancy_max": b.occupancy_max,
                "queue_person_seconds": b.queue_person_seconds if with_queue else None,
                "queue_max": b.queue_max if with_queue else None, "dwell_tracks": b.dwell_tracks,
                "dwell_seconds": b.dwell_seconds, "now": now,
            })
            dwell.extend((source, b.start, edge, n) for edge, n in zip(DWELL_EDGES, b.dwell) if n)
        with write_transaction(self.conn) as conn:
            conn.executemany(_ADD_BUCKET, rows)
            conn.executemany(_ADD_DWELL, dwell)
            conn.executemany(
                "INSERT OR REPLACE INTO camera_gaps(source, started_at, ended_at, seconds, reason)"
                " VALUES (?, ?, ?, ?, ?)",
                [(source, int(g.start), int(g.end), g.seconds, g.reason) for g in gaps],
            )
            if status is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO camera_status(source, state, detail, frames, gaps, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (source, *status, now),
                )

    def write_status(self, source: str, state: str, detail: str, frames: int, gaps: int) -> None:
        """The camera's state as soon as it changes (a camera reconnecting writes no buckets to carry it)."""
        with write_transaction(self.conn) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO camera_status(source, state, detail, frames, gaps, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (source, state, detail, frames, gaps, utc_now_iso()),
            )

    def net_since(self, source: str, since: int) -> int:
        """Entries minus exits of `source` from `since` on (to resume the day's occupancy)."""
        row = self.conn.execute(
            "SELECT coalesce(sum(entries - exits), 0) FROM footfall WHERE source = ? AND bucket_start >= ?",
            (source, since),
        ).fetchone()
        return max(0, int(row[0]))

    def net_today(self, source: str, now_local: float) -> int:
        return self.net_since(source, int(now_local // DAY) * DAY)


def replace_counts(conn: sqlite3.Connection, source: str, rows: list[tuple[int, int, int, int]]) -> int:
    """Upsert (bucket_start, bucket_seconds, entries, exits) rows inside the caller's
    transaction; returns how many were new or changed (the rest were already stored)."""
    now = utc_now_iso()
    cursor = conn.executemany(_REPLACE_COUNTS, [(source, *row, now) for row in rows])
    return max(cursor.rowcount, 0)
