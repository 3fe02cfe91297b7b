"""Releasing a trained network: `model.onnx` plus `manifest.json`, checkable without torch.

The graph has one input, `features` [n, F] (raw, NaN for unavailable), and
four outputs: `probability` [n], the calibrated probability of no visit in the
release horizon, and at the manifest's `survival_horizons` t [K]: `survival`
[n, K], P(no visit in the next t days); `lost` [n, K], P(gone for good within
t days); `expected_visits` [n, K], the expected visit days in the next t days. The manifest names the feature
schema the graph expects, the horizon its probabilities refer to, the metrics
it was released with and the sha256 of the graph; `read_manifest` (torch-free, used on the store box) refuses a directory
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
CURVE_NAMES = ("survival", "lost", "expected_visits")  # outputs after `probability`, each [n, K]
MODEL_KIND = "neural-pareto-nbd/1"  # what the network's outputs parameterise (models/network.py)


def curve_at(curve: Any, horizons: Any, day: float) -> Any:
    """Each row of a curve output ([n, K] at `horizons` days) read at `day`, linearly between columns."""
    import numpy as np

    at = np.asarray(horizons, dtype=np.float64)
    values = np.asarray(curve, dtype=np.float64)
    if len(at) == 1:
        return values[:, 0]
    right = int(np.clip(np.searchsorted(at, day), 1, len(at) - 1))
    left = right - 1
    weight = float(np.clip((day - at[left]) / (at[right] - at[left]), 0.0, 1.0))
    return values[:, left] * (1 - weight) + values[:, right] * weight


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

    class Released(torch.nn.Module):
        """Both outputs of the released graph, in their contract order."""

        def __init__(self, net: Any):
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> tuple[Any, Any, Any, Any]:
            return (self.net(x), *self.net.curves(x, self.net.survival_horizons))

    model.eval()
    released = Released(model).eval()
    example = torch.zeros(2, len(FEATURE_NAMES))
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # it reports optional packages it did not find
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            released,
            (example,),
            dynamo=True,
            verbose=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME, *CURVE_NAMES],
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
    if abs(float(model.horizon) - horizon_days) > 1e-6:
        raise ValueError(f"the network answers for {float(model.horizon):g} days, the manifest says {horizon_days}")
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
        "curve_outputs": list(CURVE_NAMES),
        "survival_horizons": [int(h) for h in model.survival_horizons.tolist()],
        "model_kind": MODEL_KIND,
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
