"""The store box's configuration: one TOML file, validated once at start, errors that name the key.

A box nobody watches must refuse a broken configuration at start, with a
message that says which key and what to do, rather than run for a month on a
default nobody chose. So unknown keys are errors, paths are checked, and
secrets come from files or the environment, never from the file itself.

The file may name a device profile: its `[camera]`, `[training]` and
`[daemon]` tables are the defaults, the file's own tables override them. A
bare name (`profile = "rpi4"`) is one of the profiles installed with the agent
(edge_agent/profiles), so the shipped example works wherever the package is
installed; a path (`profile = "/etc/churn/my-box.toml"`) is a profile of one's own.

Every table is a typed section down to its last key (edge_agent/config_tree.py),
and every relative path is relative to the file's folder, whoever reads it.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, PlainValidator, ValidationError, field_validator, model_validator

from models.contracts import ID_PATTERN, BrokerAddress, ContractError

from .config_tree import Section, explain, resolve_paths
from .footfall.settings import CameraSettings, SourceSpec
from .policy_sections import AlertsSection, PolicyTables, RiskSection

Tree = TypeVar("Tree", bound=BaseModel)
MIN_RETENTION_DAYS = 365 + 90 + 180  # features look back a year; labels and training cutoffs need the rest


class ConfigError(Exception):
    """A configuration that cannot run; the message names the key and the fix."""


class StoreSection(Section):
    chain: str = Field(pattern=ID_PATTERN)
    store_id: str = Field(pattern=ID_PATTERN)
    timezone: str = "UTC"
    data_dir: Path
    db: Path | None = None  # default: data_dir/store.db

    @property
    def db_path(self) -> Path:
        return self.db if self.db is not None else self.data_dir / "store.db"


class IngestSection(Section):
    drop_folder: Path | None = None  # default: data_dir/dropbox (done/ and failed/ inside)
    poll_seconds: float = Field(10.0, gt=0)
    settle_seconds: float = Field(3.0, ge=0)  # a file must stop growing this long before it is read


class ScoringSection(Section):
    daily_at: str | None = "06:00"  # store-local time
    every_minutes: float | None = Field(None, gt=0)
    lookback_days: int = Field(365, ge=30)

    @field_validator("daily_at")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError("must be HH:MM (24-hour)")
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> ScoringSection:
        if self.every_minutes is not None and "daily_at" in self.model_fields_set and self.daily_at is not None:
            raise ValueError("set either daily_at or every_minutes, not both")
        return self


class MqttSection(Section):
    url: str
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    password_file: Path | None = None
    password_env: str | None = None  # name of an environment variable holding the password
    client_id: str | None = None
    session_expiry_days: float = Field(7, gt=0)
    resend_after_seconds: float = Field(120, gt=0)
    drain_every_seconds: float = Field(5, gt=0)
    status_every_seconds: float = Field(60, gt=0)
    metrics_every_seconds: float = Field(300, gt=0)
    max_inflight: int = Field(20, ge=1)
    keepalive_seconds: int = Field(30, ge=5, le=3600)  # the console shows the box offline after 1.5 x this silence

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            address = BrokerAddress.parse(value)
        except ContractError as exc:
            raise ValueError(str(exc)) from None
        if address.password:
            raise ValueError("must not hold a password: use password_file or password_env")
        return value


class ModelsSection(Section):
    dir: Path | None = None  # default: data_dir/models
    public_key: Path | None = None  # the release signing key (PEM)
    fetch_releases: bool = True


class FederationSection(Section):
    enabled: bool = False
    superlink: str | None = None
    root_certificates: Path | None = None
    auth_private_key: Path | None = None
    insecure: bool = False
    port: int = Field(9094, ge=1, le=65535)

    @model_validator(mode="after")
    def _complete(self) -> FederationSection:
        if self.enabled:
            if not self.superlink:
                raise ValueError("enabled needs superlink = \"HOST:PORT\"")
            if not self.insecure and self.root_certificates is None:
                raise ValueError("enabled needs root_certificates (or insecure = true on a test bench)")
        return self


class TrainingSection(Section):
    """What this device can afford when the federation asks it to train."""

    threads: int = Field(2, ge=1)
    max_train_rows: int = Field(100_000, ge=1000)
    max_local_epochs: int = Field(5, ge=1)
    batch_size: int | None = Field(None, ge=16)


class RetentionSection(Section):
    transactions_days: int = Field(730, ge=MIN_RETENTION_DAYS)
    acked_outbox_days: float = Field(7, gt=0)
    run_at: str = "03:30"


class DaemonSection(Section):
    http_host: str = "127.0.0.1"
    http_port: int = Field(9464, ge=0, le=65535)
    log_file: Path | None = None  # default: JSON lines on stderr (journald)
    log_max_mb: float = Field(10, gt=0)
    log_backups: int = Field(5, ge=1)
    memory_alarm_mb: float = Field(250, gt=0)
    disk_alarm_free_mb: float = Field(500, gt=0)


def _camera_source(text: Any) -> Path | str:
    """A video file is a path (made absolute like the others); a stream URL or a device index stays text."""
    if isinstance(text, Path):
        return text
    if not isinstance(text, str) or not text:
        raise ValueError("must be a stream URL, a device index or a video file, as a string")
    return Path(text) if SourceSpec.parse(text).kind == "file" else text


class CameraEntry(CameraSettings):
    """One [[cameras]] table: the [camera] table with this camera's own keys on top, and its source."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    source: Annotated[Path | str, PlainValidator(_camera_source)]

    def settings(self) -> CameraSettings:
        return CameraSettings.model_validate(self.model_dump(exclude={"source"}))


class EdgeConfig(Section):
    profile: Path | None = None
    store: StoreSection
    ingest: IngestSection = IngestSection()
    scoring: ScoringSection = ScoringSection()
    risk: RiskSection = RiskSection()
    alerts: AlertsSection = AlertsSection()
    mqtt: MqttSection | None = None
    models: ModelsSection = ModelsSection()
    federation: FederationSection = FederationSection()
    training: TrainingSection = TrainingSection()
    camera: CameraSettings = CameraSettings()  # defaults for every camera
    cameras: list[CameraEntry] = Field(default_factory=list)
    retention: RetentionSection = RetentionSection()
    daemon: DaemonSection = DaemonSection()

    @model_validator(mode="before")
    @classmethod
    def _cameras_start_from_camera(cls, raw: Any) -> Any:
        """Each [[cameras]] table is validated whole: [camera] (profile, then file) under its own keys."""
        if not isinstance(raw, dict) or not isinstance(raw.get("cameras"), list):
            return raw
        defaults = raw.get("camera", {})
        if not isinstance(defaults, dict):
            return raw
        shared = {k: v for k, v in defaults.items() if k != "name"}
        return {**raw, "cameras": [{**shared, **e} if isinstance(e, dict) else e for e in raw["cameras"]]}

    @property
    def drop_folder(self) -> Path:
        return self.ingest.drop_folder or self.store.data_dir / "dropbox"

    @property
    def models_dir(self) -> Path:
        return self.models.dir or self.store.data_dir / "models"

    def camera_settings(self) -> list[tuple[str, CameraSettings]]:
        """(source, settings) per camera: profile defaults, then the file's [camera], then the camera's own keys."""
        return [(str(entry.source), entry.settings()) for entry in self.cameras]

    def mqtt_password(self) -> str | None:
        if self.mqtt is None:
            return None
        if self.mqtt.password_file is not None:
            return self.mqtt.password_file.read_text().strip()
        if self.mqtt.password_env:
            return os.environ.get(self.mqtt.password_env)
        return None


PROFILE_TABLES = ("camera", "training", "daemon")
PROFILES_DIR = Path(__file__).resolve().parent / "profiles"  # shipped as package data
PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def shipped_profiles() -> list[str]:
    """The names `profile = "NAME"` accepts."""
    return sorted(path.stem for path in PROFILES_DIR.glob("*.toml"))


def profile_path(value: str, base: Path) -> Path:
    """A shipped profile by name, or a file by path (relative to the configuration's folder)."""
    if PROFILE_NAME.match(value):
        if value not in shipped_profiles():
            near = difflib.get_close_matches(value, shipped_profiles(), n=1)
            hint = f"did you mean {near[0]!r}?" if near else f"shipped: {', '.join(shipped_profiles())}"
            raise ConfigError(f"profile: no shipped profile named {value!r} ({hint}; or give a path to a .toml file)")
        return PROFILES_DIR / f"{value}.toml"
    return (base / value).resolve()


def _merge_profile(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    if "profile" not in raw:
        return raw
    if not isinstance(raw["profile"], str):
        raise ConfigError("profile: a shipped profile's name (rpi4) or a path to a .toml file")
    path = profile_path(raw["profile"], base)
    try:
        profile = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"profile: cannot read {path} ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"profile: {path} is not valid TOML ({exc})") from None
    unknown = sorted(set(profile) - set(PROFILE_TABLES))
    if unknown:
        raise ConfigError(f"profile {path}: unknown table [{unknown[0]}] (a profile holds {', '.join(PROFILE_TABLES)})")
    merged = dict(raw)
    merged["profile"] = str(path)
    for table in PROFILE_TABLES:
        if table in profile:
            merged[table] = {**profile[table], **raw.get(table, {})}
    return merged


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _typed(model: type[Tree], raw: dict[str, Any], path: Path) -> Tree:
    """The file's tables as `model`, every relative path in it made absolute against the file's folder."""
    try:
        return resolve_paths(model.model_validate(raw), Path(path).resolve().parent)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise ConfigError(f"{path}: {explain(exc, model, raw)}") from None


def load_config(path: Path) -> EdgeConfig:
    """Read, merge the profile, validate, and check what can be checked before starting."""
    raw = _read(path)
    try:
        raw = _merge_profile(raw, Path(path).resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    config = _typed(EdgeConfig, raw, path)
    try:
        check(config)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return config


def load_policy_tables(path: Path) -> PolicyTables:
    """The [risk] and [alerts] tables of a policy file (`edge-agent score --policy`), read as load_config reads them.

    The file may be the box's whole configuration: its other tables are left to load_config.
    """
    tables = _typed(PolicyTables, _read(path), path)
    try:
        _require_files([("alerts.pseudonymise_key_file", tables.alerts.pseudonymise_key_file)])
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return tables


def _require_files(required: list[tuple[str, Path | None]]) -> None:
    for key, value in required:
        if value is not None and not value.exists():
            raise ConfigError(f"{key}: {value} does not exist")


def check(config: EdgeConfig) -> None:
    """What the types cannot say: camera names and lines, files that must exist."""
    names = [c.name for c in config.cameras]
    if len(names) != len(set(names)):
        raise ConfigError("cameras: two cameras share a name")
    for entry, (_, settings) in zip(config.cameras, config.camera_settings()):
        if settings.line is None:
            raise ConfigError(f"cameras[{entry.name}]: no counting line: set line = [X1, Y1, X2, Y2]")
    required: list[tuple[str, Path | None]] = [("alerts.pseudonymise_key_file", config.alerts.pseudonymise_key_file)]
    if config.mqtt is not None:
        required += [("mqtt.ca_file", config.mqtt.ca_file), ("mqtt.password_file", config.mqtt.password_file),
                     ("mqtt.cert_file", config.mqtt.cert_file), ("mqtt.key_file", config.mqtt.key_file)]
        if config.mqtt.password_env and config.mqtt.password_env not in os.environ:
            raise ConfigError(f"mqtt.password_env: the environment has no {config.mqtt.password_env}")
        if config.models.fetch_releases and config.models.public_key is None:
            raise ConfigError("models.public_key: needed to verify releases (or set models.fetch_releases = false)")
    required += [("models.public_key", config.models.public_key)]
    if config.federation.enabled:
        required += [("federation.root_certificates", config.federation.root_certificates),
                     ("federation.auth_private_key", config.federation.auth_private_key)]
    _require_files(required)
