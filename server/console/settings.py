"""The console's settings: parsed once from the command line, passed to the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from ..errors import ConsoleError
from .data_quality import DataQualityRules
from .sessions import LoginLimits


@dataclass(frozen=True)
class ConsoleSettings:
    retrain_below: float = 0.40  # live precision under this raises the retrain signal (see decay.py)
    decay_min_outcomes: int = 30  # outcomes a period needs before its precision can raise the signal
    session_hours: float = 12.0
    stale_after_seconds: float = 300.0  # an online store silent this long is shown as silent
    poll_seconds: float = 1.0  # how often /api/events looks for changes
    public_origins: tuple[str, ...] = ()  # e.g. https://console.acme.example behind a reverse proxy
    login_limits: LoginLimits = field(default_factory=LoginLimits)
    data_quality: DataQualityRules = field(default_factory=DataQualityRules)  # the late-export and jump alarms

    def __post_init__(self) -> None:
        if not 0 < self.retrain_below < 1:
            raise ConsoleError("--retrain-below must be a share between 0 and 1, e.g. 0.4")
        if self.session_hours <= 0:
            raise ConsoleError("--session-hours must be positive")
        for origin in self.public_origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
                raise ConsoleError(f"--public-origin {origin!r} must be scheme://host[:port], "
                                   "e.g. https://console.acme.example")

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(hours=self.session_hours)

    @property
    def origins(self) -> frozenset[str]:
        return frozenset(origin.rstrip("/").lower() for origin in self.public_origins)
