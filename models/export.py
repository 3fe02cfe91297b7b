"""Releasing a trained network: `model.onnx` plus `manifest.json`, checkable without torch.

The manifest names the feature schema the graph expects, the horizon its
probabilities refer to, the metrics it was released with and the sha256 of the
graph; `read_manifest` (torch-free, used on the store box) refuses a directory
whose graph does not match its manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .schema import FEATURE_NAMES, SCHEMA_VERSION

MANIFEST_SCHEMA = "retail.churn-model/1"
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
INPUT_NAME = "features"
OUTPUT_NAME = "probability"


class ModelFileError(Exception):
    """A model directory that is missing, corrupt or for another feature schema."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def onnx_bytes(model: Any) -> bytes:
    """The network (a models.network.ChurnNet) as an ONNX graph with a dynamic batch size."""
    import torch  # training side only: the store box never calls this

    model.eval()
    example = torch.zeros(2, len(FEATURE_NAMES))
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # it reports optional packages it did not find
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            verbose=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: torch.export.Dim("customers")},),
        )
    exporter_log.setLevel(level)
    return program.model_proto.SerializeToString()  # type: ignore[union-attr]


def write_model_dir(
    model: Any,
    out_dir: Path,
    *,
    version: str,
    horizon_days: int,
    metrics: dict[str, Any],
    training: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Export the network and write its manifest; returns the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    graph = out_dir / MODEL_FILE
    temporary = graph.with_suffix(".onnx.tmp")
    temporary.write_bytes(onnx_bytes(model))
    temporary.replace(graph)
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "version": version,
        # Microseconds: a box activates only a release newer than the one it runs (models/release.py).
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "feature_schema_version": SCHEMA_VERSION,
        "feature_names": list(FEATURE_NAMES),
        "horizon_days": horizon_days,
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
        "model_file": MODEL_FILE,
        "sha256": sha256_of(graph),
        "metrics": metrics,
        "training": training or {},
    }
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=float) + "\n")
    return manifest


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """The manifest of a model directory, after checking the graph's hash and the schema."""
    manifest_path = Path(model_dir) / MANIFEST_FILE
    if not manifest_path.exists():
        raise ModelFileError(f"{model_dir}: no {MANIFEST_FILE}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as exc:
        raise ModelFileError(f"{manifest_path}: not valid JSON ({exc})") from exc
    if manifest.get("schema") != MANIFEST_SCHEMA:
        raise ModelFileError(f"{manifest_path}: not a churn model manifest")
    if manifest.get("feature_schema_version") != SCHEMA_VERSION:
        raise ModelFileError(
            f"{model_dir}: model expects features {manifest.get('feature_schema_version')!r}, "
            f"this agent builds {SCHEMA_VERSION!r}"
        )
    graph = Path(model_dir) / manifest.get("model_file", MODEL_FILE)
    if not graph.exists():
        raise ModelFileError(f"{model_dir}: {graph.name} is missing")
    if sha256_of(graph) != manifest.get("sha256"):
        raise ModelFileError(f"{graph}: sha256 does not match the manifest (corrupt or tampered)")
    return manifest  # type: ignore[no-any-return]
