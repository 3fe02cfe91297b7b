"""When the next scheduled job runs: daily at a store-local time, or every N minutes. Pure."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def next_daily(now: datetime, at: str, zone: ZoneInfo) -> datetime:
    """The next store-local `at` (HH:MM) after `now` (an aware datetime), as an aware datetime."""
    local = now.astimezone(zone)
    hour, minute = (int(part) for part in at.split(":"))
    candidate = datetime.combine(local.date(), time(hour, minute), tzinfo=zone)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), time(hour, minute), tzinfo=zone)
    return candidate


def next_run(now: datetime, zone: ZoneInfo, daily_at: str | None, every_minutes: float | None,
             last_run: datetime | None) -> datetime:
    """The next run of a job with either schedule; a missed run (the box was off) runs at once."""
    if every_minutes is not None:
        if last_run is None:
            return now
        return last_run + timedelta(minutes=every_minutes)
    assert daily_at is not None
    upcoming = next_daily(now, daily_at, zone)
    latest_due = upcoming - timedelta(days=1)  # the most recent scheduled time, at or before now
    if last_run is None or last_run < latest_due:
        return now  # the box was off (or just installed) at the last scheduled time
    return upcoming
