"""The footfall tables: camera buckets and dwell, counter imports, camera gaps and camera status.

Camera buckets are *added* (each write brings what happened since the last
one); imported counter rows *replace* (re-importing a file changes nothing).
Both key on (source, bucket_start), so each source owns its own rows. The
upserts stay prepared SQL: their arithmetic on conflict is what makes a
restart mid-bucket lose and double nothing.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..store_db import StoreDatabase

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

CAMERA_STATUS_COLUMNS = ("source", "state", "detail", "frames", "gaps", "updated_at")


def add_buckets(conn: sqlite3.Connection, buckets: list[dict[str, Any]],
                dwell: list[tuple[str, int, int, int]]) -> None:
    """Add camera buckets (named parameters of _ADD_BUCKET) and their dwell histogram rows
    (source, bucket_start, dwell_from_seconds, tracks) to what is stored, inside the caller's transaction."""
    conn.executemany(_ADD_BUCKET, buckets)
    conn.executemany(_ADD_DWELL, dwell)


def record_gaps(conn: sqlite3.Connection, gaps: list[tuple[str, int, int, float, str]]) -> None:
    """(source, started_at, ended_at, seconds, reason) of finished camera gaps; a gap written again replaces itself."""
    conn.executemany(
        "INSERT OR REPLACE INTO camera_gaps(source, started_at, ended_at, seconds, reason) VALUES (?, ?, ?, ?, ?)",
        gaps)


def set_camera_status(conn: sqlite3.Connection, source: str, state: str, detail: str, frames: int, gaps: int,
                      updated_at: str) -> None:
    """The camera's latest state, replacing the previous one (status reports show only the latest)."""
    conn.execute(
        "INSERT OR REPLACE INTO camera_status(source, state, detail, frames, gaps, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)", (source, state, detail, frames, gaps, updated_at))


def camera_statuses(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every camera's latest state, for /health and the status (read through a read-only connection)."""
    rows = conn.execute(f"SELECT {', '.join(CAMERA_STATUS_COLUMNS)} FROM camera_status").fetchall()
    return [dict(zip(CAMERA_STATUS_COLUMNS, row)) for row in rows]


def net_entries_since(conn: sqlite3.Connection, source: str, since: int) -> int:
    """Entries minus exits of `source` from `since` on (store-local seconds), never below zero."""
    row = conn.execute(
        "SELECT coalesce(sum(entries - exits), 0) FROM footfall WHERE source = ? AND bucket_start >= ?",
        (source, since),
    ).fetchone()
    return max(0, int(row[0]))


def replace_counts(conn: sqlite3.Connection, rows: list[tuple[str, int, int, int, int, str]]) -> int:
    """Upsert (source, bucket_start, bucket_seconds, entries, exits, updated_at) rows inside the caller's
    transaction; returns how many were new or changed (a row already stored as it is is not rewritten)."""
    return max(conn.executemany(_REPLACE_COUNTS, rows).rowcount, 0)


def footfall_per_hour(store: StoreDatabase, since: int) -> dict[int, tuple[int, int]]:
    """Store-local hour start → (entries, exits) over every source, from `since` on."""
    return {hour: (entries, exits) for hour, entries, exits in store.conn.execute(
        "SELECT bucket_start - bucket_start % 3600, sum(entries), sum(exits) FROM footfall"
        " WHERE bucket_start >= ? GROUP BY 1", (since,))}


def camera_gaps_per_day(store: StoreDatabase, since: int) -> list[tuple[int, str, int, float]]:
    """(store-local epoch day, source, gaps, seconds) of the camera gaps started from `since` on."""
    return store.conn.execute(
        "SELECT started_at / 86400, source, count(*), sum(seconds) FROM camera_gaps WHERE started_at >= ?"
        " GROUP BY 1, 2 ORDER BY 1, 2", (since,)).fetchall()
