"""Which at-risk customers become alerts today: cooldown, a daily cap, and the control group.

Pure: it takes this run's candidates (from models.scoring) and what was
alerted before, and decides. Rules, from the alert-fatigue requirements:

- no new alert for a customer alerted within `cooldown_days` at the same or a
  higher level; a rise in level alerts at once;
- at most `weekly_budget` early warnings per store in any 7 days and at most
  `daily_cap` a day, the highest level and the most value at risk first; the
  rest go into one overflow summary, never dropped silently;
- lapsed customers (models/lapse.py) are a separate win-back list with its own
  budget (`winback_weekly_budget`) and cooldown (`winback_cooldown_days`);
- a configurable share of alerts per level is held out from action (the
  control group) when it is created, so the console can measure uplift; the
  choice is a hash of the alert id, so it is the same wherever it is made.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from .risk import LEVELS
from .scoring import ScoredCustomer


class AlertPolicyError(Exception):
    """An [alerts] configuration that cannot be used; the message names the key."""


@dataclass(frozen=True)
class AlertPolicy:
    cooldown_days: int = 14
    daily_cap: int = 200
    weekly_budget: int = 50  # early warnings per store in any 7 days: what the store team can act on
    winback_weekly_budget: int = 20
    winback_cooldown_days: int = 60
    control_share: dict[str, float] = field(default_factory=dict)  # level -> share held out
    outbox_quota_mb: float = 50.0

    def __post_init__(self) -> None:
        if self.cooldown_days < 0 or self.winback_cooldown_days < 0:
            raise AlertPolicyError("alerts.cooldown_days and alerts.winback_cooldown_days must be 0 or more")
        if self.daily_cap < 1:
            raise AlertPolicyError("alerts.daily_cap must be at least 1")
        if self.weekly_budget < 1 or self.winback_weekly_budget < 0:
            raise AlertPolicyError("alerts.weekly_budget must be at least 1, alerts.winback_weekly_budget 0 or more")
        for level, share in self.control_share.items():
            if level not in LEVELS:
                raise AlertPolicyError(f"unknown level alerts.control_share.{level}")
            if not 0 <= share < 1:
                raise AlertPolicyError(f"alerts.control_share.{level} must be in [0, 1)")
        if self.outbox_quota_mb <= 0:
            raise AlertPolicyError("alerts.outbox_quota_mb must be positive")

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> AlertPolicy:
        """From the policy keys of an `[alerts]` table (the store box's own keys are its business)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise AlertPolicyError(f"unknown key alerts.{unknown[0]} (known: {', '.join(sorted(known))})")
        values = dict(raw)
        if "control_share" in values:
            values["control_share"] = {str(k): float(v) for k, v in values["control_share"].items()}
        try:
            return cls(**values)
        except TypeError as exc:
            raise AlertPolicyError(f"alerts: {exc}") from None

    @property
    def quota_bytes(self) -> int:
        return int(self.outbox_quota_mb * 1024 * 1024)


@dataclass(frozen=True)
class PreviousAlert:
    level: str
    as_of_day: int


@dataclass(frozen=True)
class SentSoFar:
    """What the store has already sent: today, and in the 6 days before (per list)."""

    today: int = 0
    last_7_days: int = 0  # early warnings, today included
    winback_last_7_days: int = 0


@dataclass
class Selection:
    alerts: list[ScoredCustomer]
    overflow: list[ScoredCustomer]
    cooled: int  # not alerted again: same or lower level within the cooldown


def _priority(candidate: ScoredCustomer) -> tuple[int, float, int, str]:
    return (-LEVELS.index(candidate.level), -candidate.value_at_risk, -candidate.risk_score, candidate.customer_id)


def _cooled(candidate: ScoredCustomer, before: PreviousAlert | None, as_of_day: int, days: int) -> bool:
    return (
        before is not None
        and as_of_day - before.as_of_day < days
        and LEVELS.index(candidate.level) <= LEVELS.index(before.level)
    )


def select_alerts(
    candidates: list[ScoredCustomer],
    previous: dict[str, PreviousAlert],
    sent: SentSoFar,
    as_of_day: int,
    policy: AlertPolicy,
) -> Selection:
    """Apply each list's cooldown, then the weekly budgets and the daily cap, highest priority first."""
    fresh: dict[bool, list[ScoredCustomer]] = {False: [], True: []}
    cooled = 0
    for candidate in sorted(candidates, key=_priority):
        days = policy.winback_cooldown_days if candidate.lapsed else policy.cooldown_days
        if _cooled(candidate, previous.get(candidate.customer_id), as_of_day, days):
            cooled += 1
            continue
        fresh[candidate.lapsed].append(candidate)
    warn_room = max(0, policy.weekly_budget - sent.last_7_days)
    winback_room = max(0, policy.winback_weekly_budget - sent.winback_last_7_days)
    day_room = max(0, policy.daily_cap - sent.today)
    warnings = fresh[False][: min(warn_room, day_room)]
    winbacks = fresh[True][: min(winback_room, day_room - len(warnings))]
    chosen = {id(c) for c in warnings + winbacks}
    overflow = [c for c in fresh[False] + fresh[True] if id(c) not in chosen]
    return Selection(warnings + winbacks, overflow, cooled)


def in_control_group(alert_id: str, level: str, policy: AlertPolicy) -> bool:
    share = policy.control_share.get(level, 0.0)
    if share <= 0:
        return False
    bucket = int.from_bytes(hashlib.sha256(f"control\x1f{alert_id}".encode()).digest()[:8], "big") / 2**64
    return bucket < share


def pseudonymise(customer_id: str, key: bytes | None) -> str:
    """The reference that leaves the box: the id itself, or HMAC-SHA256 under the chain's key.

    The store can recompute it to find the customer; nobody without the key can
    go back from it to the loyalty number.
    """
    if key is None:
        return customer_id
    return hmac.new(key, customer_id.encode(), hashlib.sha256).hexdigest()[:32]
