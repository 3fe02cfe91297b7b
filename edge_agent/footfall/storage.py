"""Writing footfall to the store database: camera buckets, their gaps and the camera's state, and counter rows.

Camera buckets are *added* (each write brings what happened since the last
one); imported counter rows *replace* (re-importing a file changes nothing).
The SQL is edge_agent/store_queries/footfall.py's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from ..store_db import StoreDatabase, utc_now_iso, write_transaction
from ..store_queries import footfall as queries
from .buckets import DAY, DWELL_EDGES, Bucket


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
            queries.add_buckets(conn, rows, dwell)
            queries.record_gaps(conn, [(source, int(g.start), int(g.end), g.seconds, g.reason) for g in gaps])
            if status is not None:
                queries.set_camera_status(conn, source, *status, now)

    def write_status(self, source: str, state: str, detail: str, frames: int, gaps: int) -> None:
        """The camera's state as soon as it changes (a camera reconnecting writes no buckets to carry it)."""
        with write_transaction(self.conn) as conn:
            queries.set_camera_status(conn, source, state, detail, frames, gaps, utc_now_iso())

    def net_since(self, source: str, since: int) -> int:
        """Entries minus exits of `source` from `since` on (to resume the day's occupancy)."""
        return queries.net_entries_since(self.conn, source, since)

    def net_today(self, source: str, now_local: float) -> int:
        return self.net_since(source, int(now_local // DAY) * DAY)


def replace_counts(conn: sqlite3.Connection, source: str, rows: list[tuple[int, int, int, int]]) -> int:
    """Upsert (bucket_start, bucket_seconds, entries, exits) rows inside the caller's
    transaction; returns how many were new or changed (the rest were already stored)."""
    now = utc_now_iso()
    return queries.replace_counts(conn, [(source, *row, now) for row in rows])
