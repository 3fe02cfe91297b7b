"""Days as every feature, label and cutoff counts them: whole days since 1970-01-01.

Store databases keep store-local times in seconds since that epoch; a day number
is those seconds // 86400. "As-of" is the last day whose data is visible, so the
boundary before which everything is history is the day after it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

EPOCH = date(1970, 1, 1)
SECONDS_PER_DAY = 86400


def epoch_day(day: date | str) -> int:
    """The day number of a date (or an ISO date)."""
    return ((date.fromisoformat(day) if isinstance(day, str) else day) - EPOCH).days


def day_date(day: int) -> date:
    """The date of a day number."""
    return EPOCH + timedelta(days=int(day))


def local_seconds(local: datetime) -> int:
    """Store-local seconds since the epoch of a naive store-local time, as the store database keeps times."""
    return int((local - datetime(EPOCH.year, EPOCH.month, EPOCH.day)).total_seconds())


def local_time(seconds: int) -> datetime:
    """The naive store-local time of store-local seconds."""
    return datetime(EPOCH.year, EPOCH.month, EPOCH.day) + timedelta(seconds=int(seconds))


def day_after(as_of: date | str) -> int:
    """The as-of boundary as a day number: everything before the end of `as_of` is visible."""
    return epoch_day(as_of) + 1
