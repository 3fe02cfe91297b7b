"""Footfall: people in and out of the store, counted on the box from its door camera.

Only counts leave this package (into the store database's footfall tables):
no frame, crop or mask is ever written to disk or sent anywhere.

The names below load their module on first use: the daemon and the CLI read
camera settings without paying for OpenCV (about 40 MB resident), which only
the camera child process needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOME = {
    "FootfallPipeline": "pipeline", "FootfallResult": "pipeline", "run_footfall": "pipeline",
    "CameraSettings": "settings", "CameraSettingsError": "settings", "FootfallError": "settings",
    "camera_settings": "settings", "load_camera_settings": "settings", "SourceSpec": "settings",
    "CameraStatus": "source", "FrameReader": "source", "FramesReader": "source",
    "FootfallStorage": "storage",
}
__all__ = [
    "CameraSettings", "CameraSettingsError", "CameraStatus", "FootfallError", "FootfallPipeline", "FootfallResult",
    "FootfallStorage", "FrameReader", "FramesReader", "SourceSpec", "camera_settings", "load_camera_settings",
    "run_footfall",
]

if TYPE_CHECKING:
    from .pipeline import FootfallPipeline, FootfallResult, run_footfall
    from .settings import (
        CameraSettings, CameraSettingsError, FootfallError, SourceSpec, camera_settings, load_camera_settings,
    )
    from .source import CameraStatus, FrameReader, FramesReader
    from .storage import FootfallStorage


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
