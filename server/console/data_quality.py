"""Data quality per store: each input's recent days, and the two alarms the console raises from them.

Pure: given the days the centre stored for one store and input (input_days)
and what the store's latest metrics said (its local date, the input's last
export), decide whether the export is late or the quarantine rate jumped.

- **Export late**: an input the store normally sends (exported on at least
  `min_export_days` of the `baseline_days` before its today) has had no
  finished export for longer than `export_late_hours`. An input the store
  stopped sending longer ago than the baseline stops counting as normal, and
  its alarm ends: by then it was raised for weeks.
- **Quarantine jump**: today's share of quarantined rows (quarantined /
  (accepted + quarantined), with at least `min_rows` rows today) is at least
  `jump_ratio` times the store's own rate over the `trailing_days` before
  today, and at least `jump_points` above it.

Each alarm is a (name, text) pair shown with the store's other alarms.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ..errors import ConsoleError

INPUT_NAMES = {"pos": "POS", "events": "customer events", "identities": "identities", "footfall": "footfall counter"}


@dataclass(frozen=True)
class DataQualityRules:
    export_late_hours: float = 26.0  # a nightly export, plus two hours of slack
    baseline_days: int = 28
    min_export_days: int = 3
    trailing_days: int = 14
    jump_ratio: float = 3.0
    jump_points: float = 0.02
    min_rows: int = 50

    def __post_init__(self) -> None:
        if self.export_late_hours <= 0:
            raise ConsoleError("--export-late-hours must be positive")
        if self.jump_ratio < 1:
            raise ConsoleError("--quarantine-jump-ratio must be at least 1")
        if self.min_rows < 1 or self.trailing_days < 1 or self.baseline_days < 1 or self.min_export_days < 1:
            raise ConsoleError("data-quality day and row counts must be at least 1")


def rate(accepted: int, quarantined: int) -> float | None:
    total = accepted + quarantined
    return quarantined / total if total else None


def _days_before(today: str, days: int) -> str:
    return (date.fromisoformat(today) - timedelta(days=days)).isoformat()


def export_late(name: str, days: list[dict[str, Any]], last_export_at: str | None, today: str, now: datetime,
                rules: DataQualityRules) -> tuple[str, str] | None:
    """The export-late alarm of one input, or None."""
    since = _days_before(today, rules.baseline_days)
    exported = {d["day"] for d in days if since <= d["day"] < today and d["runs"] > d["failed"]}
    if len(exported) < rules.min_export_days or last_export_at is None:
        return None
    try:
        last = datetime.fromisoformat(last_export_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    hours = (now - last).total_seconds() / 3600
    if hours <= rules.export_late_hours:
        return None
    return (f"data_quality.{name}.export_late",
            f"no {INPUT_NAMES.get(name, name)} export for {hours:.0f} h (last {last_export_at[:16].replace('T', ' ')} "
            f"UTC; exported on {len(exported)} of the last {rules.baseline_days} days)")


def trailing_rate(days: list[dict[str, Any]], today: str, rules: DataQualityRules) -> float | None:
    since = _days_before(today, rules.trailing_days)
    window = [d for d in days if since <= d["day"] < today]
    return rate(sum(d["accepted"] for d in window), sum(d["quarantined"] for d in window))


def quarantine_jump(name: str, days: list[dict[str, Any]], today: str,
                    rules: DataQualityRules) -> tuple[str, str] | None:
    """The quarantine-jump alarm of one input, or None."""
    current = next((d for d in days if d["day"] == today), None)
    if current is None or current["accepted"] + current["quarantined"] < rules.min_rows:
        return None
    now_rate, usual = rate(current["accepted"], current["quarantined"]), trailing_rate(days, today, rules)
    if now_rate is None or usual is None:
        return None
    if now_rate < usual * rules.jump_ratio or now_rate - usual < rules.jump_points:
        return None
    return (f"data_quality.{name}.quarantine_jump",
            f"{now_rate:.1%} of today's {INPUT_NAMES.get(name, name)} rows quarantined "
            f"({current['quarantined']} of {current['accepted'] + current['quarantined']}), "
            f"usually {usual:.1%} (last {rules.trailing_days} days)")


def input_alarms(name: str, days: list[dict[str, Any]], last_export_at: str | None, today: str, now: datetime,
                 rules: DataQualityRules) -> list[tuple[str, str]]:
    found = [export_late(name, days, last_export_at, today, now, rules), quarantine_jump(name, days, today, rules)]
    return [alarm for alarm in found if alarm is not None]


def reported(latest_metrics: dict[str, Any]) -> tuple[str | None, dict[str, str | None]]:
    """(the store's today, each input's last export) from its latest metrics' data_quality (both absent from
    a box that does not report data quality)."""
    quality = latest_metrics.get("data_quality")
    if not isinstance(quality, dict):
        return None, {}
    inputs = quality.get("inputs") if isinstance(quality.get("inputs"), dict) else {}
    last = {str(name): figures.get("last_export_at") if isinstance(figures, dict) else None
            for name, figures in inputs.items()}
    today = quality.get("today")
    return (today if isinstance(today, str) else None), {k: v if isinstance(v, str) else None for k, v in last.items()}


def store_alarms(days_by_input: dict[str, list[dict[str, Any]]], latest_metrics: dict[str, Any], now: datetime,
                 rules: DataQualityRules) -> dict[str, str]:
    """Every data-quality alarm of one store, by name."""
    today, last_exports = reported(latest_metrics)
    if today is None:
        return {}
    names = sorted(set(days_by_input) | set(last_exports))
    return dict(alarm for name in names for alarm in input_alarms(
        name, days_by_input.get(name, []), last_exports.get(name), today, now, rules))


def store_view(days_by_input: dict[str, list[dict[str, Any]]], gaps: list[dict[str, Any]],
               latest_metrics: dict[str, Any], now: datetime, rules: DataQualityRules, days: int) -> dict[str, Any]:
    """One store's data-quality board: per input its last export, today, its usual rate, its last `days` days
    (each with its quarantine rate and reasons), the camera gaps per day, and the alarms."""
    today, last_exports = reported(latest_metrics)
    end = today or now.date().isoformat()
    since = _days_before(end, days - 1)
    inputs = []
    for name in sorted(set(days_by_input) | set(last_exports), key=lambda n: (n not in INPUT_NAMES, n)):
        history = days_by_input.get(name, [])
        current = next((d for d in history if d["day"] == end), None)
        inputs.append({
            "input": name, "label": INPUT_NAMES.get(name, name), "last_export_at": last_exports.get(name),
            "today_rate": rate(current["accepted"], current["quarantined"]) if current else None,
            "trailing_rate": trailing_rate(history, end, rules),
            "days": [{**d, "rate": rate(d["accepted"], d["quarantined"])} for d in history if d["day"] >= since],
        })
    return {"today": today, "days": days, "inputs": inputs,
            "camera_gaps": [g for g in gaps if g["day"] >= since],
            "alarms": store_alarms(days_by_input, latest_metrics, now, rules) if today else {}}
