"""The federation's settings: parsed once from Flower's run config, with defaults and checks.

Keys use Flower's kebab-case (`num-server-rounds`, `proximal-mu`, ...) and can
be overridden with `churn-server federate --set key=value`. The training
defaults are models/flower_protocol.py's, which the stores fall back on too;
server/flower_app/pyproject.toml lists every key with these defaults
(`flower_app_config()` renders that table; a test keeps the file equal to it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.days import day_after
from models.flower_protocol import DEFAULTS

if TYPE_CHECKING:
    from .reply_checks import ReplyLimits

STRATEGIES = ("fedavg", "fedprox")
SUMMARY_FILE = "federation.json"  # what the ServerApp writes when it is done


class FederationSettingsError(Exception):
    """A run config that cannot drive a federation; the message names the key."""


@dataclass(frozen=True)
class FederationSettings:
    as_of: str
    state_dir: str
    chain: str = "default"
    horizon_days: int = 90
    num_server_rounds: int = 5
    strategy: str = "fedavg"
    proximal_mu: float = 0.0
    local_epochs: int = DEFAULTS.local_epochs
    learning_rate: float = DEFAULTS.learning_rate
    batch_size: int = DEFAULTS.batch_size
    seed: int = DEFAULTS.seed
    fraction_train: float = 1.0
    min_train_nodes: int = 2
    min_available_nodes: int = 2
    node_wait_seconds: float = 60.0
    round_timeout_seconds: float = 600.0
    dp_enabled: bool = False
    dp_noise_multiplier: float = 1.0
    dp_clipping_norm: float = 1.0
    dp_target_delta: float = 1e-5
    personalise: bool = False
    personalise_epochs: int = DEFAULTS.personalise_epochs
    max_update_norm: float = 50.0  # a training update moving the weights further is refused
    max_weight_ratio: float = 4.0  # no store weighs more than this times the round's lower median
    release_min_auc: float = 0.55  # no release whose pooled held-out AUC is below this (0.5: chance)
    release_auc_margin: float = 0.05  # no release whose held-out AUC is this far below the active one's
    active_model: str = ""  # the model directory in service (default: the state folder's newest release)

    def __post_init__(self) -> None:
        try:
            date.fromisoformat(self.as_of)
        except ValueError:
            raise FederationSettingsError(f"as-of {self.as_of!r} is not a date (YYYY-MM-DD)") from None
        if self.strategy not in STRATEGIES:
            raise FederationSettingsError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.strategy == "fedprox" and self.proximal_mu <= 0:
            raise FederationSettingsError("strategy fedprox needs proximal-mu > 0")
        for key in ("num_server_rounds", "local_epochs", "batch_size", "min_train_nodes", "min_available_nodes"):
            if getattr(self, key) < 1:
                raise FederationSettingsError(f"{key.replace('_', '-')} must be at least 1")
        if self.min_available_nodes < self.min_train_nodes:
            raise FederationSettingsError("min-available-nodes must be at least min-train-nodes")
        if not 0 < self.fraction_train <= 1:
            raise FederationSettingsError("fraction-train must be in (0, 1]")
        if self.dp_enabled and (self.dp_noise_multiplier <= 0 or self.dp_clipping_norm <= 0):
            raise FederationSettingsError("dp-noise-multiplier and dp-clipping-norm must be positive")
        if not (self.max_update_norm > 0 and self.max_weight_ratio >= 1 and 0 <= self.release_auc_margin < 1
                and 0 <= self.release_min_auc <= 1):
            raise FederationSettingsError("max-update-norm must be positive, max-weight-ratio at least 1, "
                                          "release-auc-margin in [0, 1) and release-min-auc in [0, 1]")

    @classmethod
    def from_run_config(cls, raw: Mapping[str, Any]) -> FederationSettings:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            name = key.replace("-", "_")
            if name not in known:
                raise FederationSettingsError(f"unknown run config key {key!r}")
            kind = known[name].type
            try:
                if kind == "bool":
                    values[name] = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
                elif kind == "int":
                    values[name] = int(value)
                elif kind == "float":
                    values[name] = float(value)
                else:
                    values[name] = str(value)
            except (TypeError, ValueError):
                raise FederationSettingsError(f"run config {key} = {value!r} is not a {kind}") from None
        missing = [f.name for f in fields(cls) if f.name not in values and f.default is MISSING]
        if missing:
            raise FederationSettingsError(f"run config lacks {', '.join(m.replace('_', '-') for m in missing)}")
        return cls(**values)

    def as_run_config(self) -> dict[str, Any]:
        return {key.replace("_", "-"): value for key, value in asdict(self).items()}

    @property
    def as_of_day(self) -> int:
        """First day after as-of (the boundary everything before is visible)."""
        return day_after(self.as_of)

    @property
    def fingerprint(self) -> str:
        """Identity of the training problem: what a checkpoint may be resumed into.

        The number of rounds and the waiting limits are left out, so a
        federation can be resumed with more rounds or longer timeouts.
        """
        identity = {
            k: v for k, v in asdict(self).items()
            if k not in {"num_server_rounds", "node_wait_seconds", "round_timeout_seconds", "state_dir",
                         "personalise", "personalise_epochs", "min_available_nodes", "max_update_norm",
                         "max_weight_ratio", "release_min_auc", "release_auc_margin", "active_model"}
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    @property
    def reply_limits(self) -> ReplyLimits:
        from .reply_checks import ReplyLimits  # flwr: only where replies are checked

        return ReplyLimits(self.max_update_norm, self.max_weight_ratio)


def flower_app_config() -> dict[str, Any]:
    """The `[tool.flwr.app.config]` table of server/flower_app/pyproject.toml: every run config key with its
    default ("" for the ones each run must give)."""
    return {f.name.replace("_", "-"): "" if f.default is MISSING else f.default for f in fields(FederationSettings)}


def render_flower_app_config() -> str:
    """That table as TOML, to paste into the Flower App's pyproject.toml when a setting or default changes."""
    lines = ["[tool.flwr.app.config]"]
    for key, value in flower_app_config().items():
        text = ("true" if value else "false") if isinstance(value, bool) else json.dumps(value)
        lines.append(f"{key} = {text}")
    return "\n".join(lines) + "\n"
