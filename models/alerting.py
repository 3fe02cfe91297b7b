"""Which at-risk customers become alerts today: cooldown, a daily cap, and the control group.

Pure: it takes this run's candidates (from models.scoring) and what was
alerted before, and decides. Rules, from the alert-fatigue requirements:

- no new alert for a customer alerted within `cooldown_days` at the same or a
  higher level; a rise in level alerts at once;
- at most `daily_cap` alerts per store per day, the riskiest first; the rest
  go into one overflow summary, never dropped silently;
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
    control_share: dict[str, float] = field(default_factory=dict)  # level -> share held out
    outbox_quota_mb: float = 50.0

    def __post_init__(self) -> None:
        if self.cooldown_days < 0:
            raise AlertPolicyError("alerts.cooldown_days must be 0 or more")
        if self.daily_cap < 1:
            raise AlertPolicyError("alerts.daily_cap must be at least 1")
        for level, share in self.control_share.items():
            if level not in LEVELS:
                raise AlertPolicyError(f"unknown level alerts.control_share.{level}")
            if not 0 <= share < 1:
                raise AlertPolicyError(f"alerts.control_share.{level} must be in [0, 1)")
        if self.outbox_quota_mb <= 0:
            raise AlertPolicyError("alerts.outbox_quota_mb must be positive")

    @classmethod
    def from_mapping(cls, raw: dict[str, Any]) -> AlertPolicy:
        known = {"cooldown_days", "daily_cap", "control_share", "outbox_quota_mb", "pseudonymise_key_file"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise AlertPolicyError(f"unknown key alerts.{unknown[0]} (known: {', '.join(sorted(known))})")
        values = {k: v for k, v in raw.items() if k != "pseudonymise_key_file"}
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


@dataclass
class Selection:
    alerts: list[ScoredCustomer]
    overflow: list[ScoredCustomer]
    cooled: int  # not alerted again: same or lower level within the cooldown


def select_alerts(
    candidates: list[ScoredCustomer],
    previous: dict[str, PreviousAlert],
    alerted_today: int,
    as_of_day: int,
    policy: AlertPolicy,
) -> Selection:
    """Apply cooldown then the daily cap, riskiest first."""
    fresh, cooled = [], 0
    for candidate in sorted(candidates, key=lambda c: (-c.risk_score, c.customer_id)):
        before = previous.get(candidate.customer_id)
        if (
            before is not None
            and as_of_day - before.as_of_day < policy.cooldown_days
            and LEVELS.index(candidate.level) <= LEVELS.index(before.level)
        ):
            cooled += 1
            continue
        fresh.append(candidate)
    room = max(0, policy.daily_cap - alerted_today)
    return Selection(fresh[:room], fresh[room:], cooled)


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
