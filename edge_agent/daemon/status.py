"""What the box says about itself: its cameras as their pipelines last recorded them."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ..store_db import StoreDbError, open_store_db_readonly
from ..store_queries.footfall import camera_statuses


def camera_states(db_path: Path) -> list[dict[str, Any]]:
    """Each camera's last state (streaming, reconnecting, ...), read-only; none if the database cannot be read."""
    try:
        conn = open_store_db_readonly(db_path)
        try:
            return camera_statuses(conn)
        finally:
            conn.close()
    except (sqlite3.Error, StoreDbError):
        return []
