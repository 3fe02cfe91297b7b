"""Per-camera settings: the `[camera]` table of a device profile, validated once at start; and what a source names.

A typo in a profile must stop the box at start with the key named, not run for
a month with a default nobody chose, so unknown keys are errors. Only the
`[camera]` table is read: other tables in the same file belong to other parts
of the store box.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class FootfallError(Exception):
    """Footfall counting cannot run as asked; the message is the one-line reason."""


class CameraSettingsError(FootfallError):
    """A camera setting that is unknown or out of range; the message names the key."""


Point = tuple[float, float]


class CameraSettings(BaseModel):
    """What one door camera needs: where to count, how hard to look, how often to write."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("door", min_length=1, description="Camera name; footfall rows are stored under source `camera:<name>`.")
    line: tuple[float, float, float, float] | None = Field(
        None,
        description="Counting line X1,Y1,X2,Y2 in source-frame pixels; crossing to its right-hand side is an entry.",
    )
    queue_zone: tuple[Point, ...] | None = Field(
        None, description="Polygon [[x, y], ...] in source-frame pixels whose people are counted as queueing."
    )
    masks: tuple[tuple[Point, ...], ...] | None = Field(
        None,
        description="Polygons [[[x, y], ...], ...] in source-frame pixels where motion is not people (a wall, a screen, a door).",
    )
    resize_width: int = Field(
        192, ge=64, le=3840,
        description="Frames at least twice as wide are shrunk to this width for detection; people need ~20 pixels of height.",
    )
    fps_budget: float = Field(10.0, gt=0, le=120, description="At most this many frames per second are processed.")
    subtractor: Literal["mog2", "knn"] = Field("mog2", description="Background subtraction method.")
    mog2_var_threshold: float = Field(16.0, gt=0, description="MOG2 squared Mahalanobis distance for foreground.")
    knn_dist2_threshold: float = Field(400.0, gt=0, description="KNN squared distance for foreground.")
    detect_shadows: bool = Field(True, description="Mark shadows and leave them out of the blobs.")
    background_seconds: float = Field(
        120.0, gt=0, description="Background memory; someone standing still fades into it after about a tenth of this."
    )
    min_blob_area: int = Field(
        60, ge=1, description="Smallest blob kept, in pixels of a frame shrunk to 320 wide (scaled with resize_width)."
    )
    max_blob_fraction: float = Field(0.25, gt=0, le=1, description="Largest blob kept, as a share of the frame.")
    relearn_fraction: float = Field(
        0.5, gt=0, le=1, description="A frame with more foreground than this (lights on, camera moved) resets the background."
    )
    hysteresis: float = Field(
        0.04, ge=0, le=0.5, description="Half-width of the dead band around the line, as a share of the frame height."
    )
    min_track_age: int = Field(3, ge=1, description="Detections a track needs before its crossings count.")
    max_coast_seconds: float = Field(
        1.0, gt=0, description="How long a track survives without a detection (flicker, occlusion)."
    )
    handover_seconds: float = Field(
        10.0, ge=0, description="How long a lost track can be found again (same place, same colours) and keep its identity."
    )
    hog_confirm: bool = Field(False, description="Confirm tracks with OpenCV's HOG people detector where they are tall enough.")
    hog_min_height: int = Field(128, ge=64, description="Smallest blob height in source pixels that HOG is asked about.")
    bucket_seconds: int = Field(300, description="Length of a footfall bucket in seconds; divides an hour or a day.")
    flush_seconds: float = Field(30.0, gt=0, description="Buckets are written to the store database at least this often.")
    reconnect_initial_seconds: float = Field(0.5, gt=0, description="First wait before reopening a camera that dropped.")
    reconnect_max_seconds: float = Field(30.0, gt=0, description="Longest wait between reopening attempts.")

    @field_validator("bucket_seconds")
    @classmethod
    def _aligned_buckets(cls, value: int) -> int:
        if value < 60 or (3600 % value and 86400 % value):
            raise ValueError("must be at least 60 and divide 3600 or 86400 (buckets align to hours)")
        return value

    @field_validator("queue_zone")
    @classmethod
    def _polygon(cls, value: tuple[Point, ...] | None) -> tuple[Point, ...] | None:
        if value is not None and len(value) < 3:
            raise ValueError("needs at least 3 points")
        return value

    @field_validator("masks")
    @classmethod
    def _polygons(cls, value: tuple[tuple[Point, ...], ...] | None) -> tuple[tuple[Point, ...], ...] | None:
        if value is not None and any(len(polygon) < 3 for polygon in value):
            raise ValueError("each polygon needs at least 3 points")
        return value

    @field_validator("line")
    @classmethod
    def _line_has_length(cls, value: tuple[float, float, float, float] | None) -> tuple[float, float, float, float] | None:
        if value is not None and value[:2] == value[2:]:
            raise ValueError("its two ends are the same point")
        return value

    @model_validator(mode="after")
    def _backoff_order(self) -> CameraSettings:
        if self.reconnect_max_seconds < self.reconnect_initial_seconds:
            raise ValueError("reconnect_max_seconds must be at least reconnect_initial_seconds")
        return self

    @property
    def source_name(self) -> str:
        return f"camera:{self.name}"

    def with_overrides(self, **changes: Any) -> CameraSettings:
        """A copy with some settings replaced, validated like a file."""
        changes = {key: value for key, value in changes.items() if value is not None}
        return camera_settings({**self.model_dump(exclude_defaults=True), **changes})


@dataclass(frozen=True)
class SourceSpec:
    """What `--source` names: a file, a stream URL or a device index."""

    text: str
    kind: str  # "file", "url" or "device"

    @property
    def live(self) -> bool:
        return self.kind != "file"

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        if text.isdigit():
            return cls(text, "device")
        if "://" in text:
            return cls(text, "url")
        return cls(text, "file")

    def check(self) -> None:
        """A file that is not there is a mistake to report now, not a camera to wait for."""
        if self.kind == "file":
            path = Path(self.text)
            if not path.exists():
                raise FootfallError(f"{path}: no such video file")
            if not path.is_file():
                raise FootfallError(f"{path}: not a video file")


def camera_settings(table: dict[str, Any]) -> CameraSettings:
    """Validate a `[camera]` table; the error names the first bad key."""
    try:
        return CameraSettings.model_validate(table)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
        if error["type"] == "extra_forbidden":
            raise CameraSettingsError(f"unknown key camera.{key}") from None
        where = f"camera.{key}" if key else "camera"
        raise CameraSettingsError(f"{where}: {error['msg']}") from None


def load_camera_settings(path: Path) -> CameraSettings:
    """The `[camera]` table of a device profile (defaults if it has none)."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise CameraSettingsError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CameraSettingsError(f"{path}: not valid TOML ({exc})") from None
    table = raw.get("camera", {})
    if not isinstance(table, dict):
        raise CameraSettingsError(f"{path}: camera must be a table")
    try:
        return camera_settings(table)
    except CameraSettingsError as exc:
        raise CameraSettingsError(f"{path}: {exc}") from None


def parse_line(text: str) -> tuple[float, float, float, float]:
    """`X1,Y1,X2,Y2` from the command line."""
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise CameraSettingsError(f"--line must be X1,Y1,X2,Y2 (four numbers), got {text!r}")
    return values  # type: ignore[return-value]


def parse_override(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` with a TOML value (`resize_width=480`, `queue_zone=[[0,0],[9,0],[9,9]]`)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise CameraSettingsError(f"--set needs KEY=VALUE, got {text!r}")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()  # a bare word such as knn or a camera name
    return key.strip(), parsed
