"""The `[risk]` and `[alerts]` tables as typed sections, for the daemon and `edge-agent score --policy` alike.

The defaults and the rules that tie settings together belong to the policy
dataclasses in `models` (RiskConfig, AlertPolicy), which the central side's
backtest runs too; these sections take their defaults from there and check
each table by building the dataclass once, at load. The levels of
`[risk.actions]` and `[alerts.control_share]` are models.risk.LEVELS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, create_model, model_validator

from models.alerting import AlertPolicy, AlertPolicyError
from models.risk import DEFAULT_ACTIONS, LEVELS, Action, RiskConfig, RiskConfigError

from .config_tree import Section


class ActionSection(Section):
    """One rung of the action ladder: `[risk.actions.red]`."""

    name: str = Field(min_length=1)
    label: str | None = None  # default: the name
    cost: float = Field(ge=0)

    def action(self) -> Action:
        return Action(self.name, self.label or self.name, self.cost)


# A level left out keeps its default action (models.risk.DEFAULT_ACTIONS) or holds nobody out.
ActionsSection: type[Section] = create_model(
    "ActionsSection", __base__=Section, **{level: (ActionSection | None, None) for level in LEVELS})
ControlShareSection: type[Section] = create_model(
    "ControlShareSection", __base__=Section, **{level: (float | None, None) for level in LEVELS})


class _PolicyTable(Section):
    """A table whose policy dataclass is built once at load, so its rules are checked before the box runs."""

    def policy(self) -> Any:
        raise NotImplementedError

    @model_validator(mode="after")
    def _usable(self) -> _PolicyTable:
        try:
            self.policy()
        except (RiskConfigError, AlertPolicyError) as exc:
            raise ValueError(str(exc)) from None
        return self


class RiskSection(_PolicyTable):
    """`[risk]`: how probabilities become levels and actions (models/risk.py)."""

    level_by: str = RiskConfig.level_by
    purple_share: float = RiskConfig.purple_share
    red_share: float = RiskConfig.red_share
    alert_budgets: float = RiskConfig.alert_budgets
    yellow_budgets: float = RiskConfig.yellow_budgets
    thresholds: tuple[int, ...] = RiskConfig.thresholds
    actions: ActionsSection = ActionsSection()  # type: ignore[valid-type]
    cost_cap_share: float = RiskConfig.cost_cap_share
    alert_min_level: str = RiskConfig.alert_min_level
    max_lifetime_years: float = Field(RiskConfig.max_lifetime_years, gt=0)
    lapsed_after_gaps: float = RiskConfig.lapsed_after_gaps
    lapsed_min_days: int = RiskConfig.lapsed_min_days
    lapsed_after_days: int | None = RiskConfig.lapsed_after_days
    drift_window_days: int = RiskConfig.drift_window_days
    drift_ratio: float = RiskConfig.drift_ratio

    def policy(self) -> RiskConfig:
        own = {level: spec.action() for level, spec in self.actions if spec is not None}
        values: dict[str, Any] = {k: getattr(self, k) for k in type(self).model_fields if k != "actions"}
        return RiskConfig(**values, actions={**DEFAULT_ACTIONS, **own})


class AlertsSection(_PolicyTable):
    """`[alerts]`: cooldowns, budgets, the control group (models/alerting.py), and the pseudonymisation key."""

    cooldown_days: int = AlertPolicy.cooldown_days
    daily_cap: int = AlertPolicy.daily_cap
    weekly_budget: int = AlertPolicy.weekly_budget
    winback_weekly_budget: int = AlertPolicy.winback_weekly_budget
    winback_cooldown_days: int = AlertPolicy.winback_cooldown_days
    control_share: ControlShareSection = ControlShareSection()  # type: ignore[valid-type]
    outbox_quota_mb: float = AlertPolicy.outbox_quota_mb
    pseudonymise_key_file: Path | None = None  # customer_ref = HMAC of the loyalty id under this key

    def policy(self) -> AlertPolicy:
        shares = {level: share for level, share in self.control_share if share is not None}
        own = {"control_share", "pseudonymise_key_file"}
        values = {k: getattr(self, k) for k in type(self).model_fields if k not in own}
        return AlertPolicy(**values, control_share=shares)

    def pseudonymise_key(self) -> bytes | None:
        """The key's bytes; the path was made absolute against the configuration's folder when it was loaded."""
        return self.pseudonymise_key_file.read_bytes().strip() if self.pseudonymise_key_file else None


class PolicyTables(Section):
    """The tables of a policy file scoring reads; the file may be the box's whole configuration."""

    model_config = ConfigDict(extra="ignore")
    risk: RiskSection = RiskSection()
    alerts: AlertsSection = AlertsSection()
