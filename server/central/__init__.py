"""The central database: what the stores sent, stored once, on SQLite or PostgreSQL."""

from .database import CentralDb, CentralDbError, driver_message, open_central_db, utc_now_iso
from .migrations import LATEST as SCHEMA_VERSION
from .reads import count_alerts, list_alerts, list_dead_letters, store_watermarks
from .rounds import RecordedRounds, read_summary_file, record_federation
from .writes import StoredAlerts, record_dead_letter, record_metrics, record_status, store_alerts

__all__ = [
    "SCHEMA_VERSION", "CentralDb", "CentralDbError", "StoredAlerts", "count_alerts", "driver_message", "list_alerts",
    "list_dead_letters", "open_central_db", "read_summary_file", "record_dead_letter", "record_federation",
    "record_metrics", "record_status", "RecordedRounds",
    "store_alerts", "store_watermarks", "utc_now_iso",
]
