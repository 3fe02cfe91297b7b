"""The released churn model on the store box: an onnxruntime session behind a small interface.

No torch here: the box's daemon and `edge-agent score` stay light. The model
directory is checked (manifest, sha256, feature schema) before it is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from models.export import ModelFileError, curve_at, read_manifest


class OnnxChurnModel:
    """A verified model directory, ready to predict calibrated churn probabilities."""

    def __init__(self, model_dir: str | Path, threads: int = 1):
        import onnxruntime as ort  # loaded by the commands that score, not by every command

        self.directory = Path(model_dir)
        if not self.directory.is_dir():
            raise ModelFileError(f"{self.directory}: no such model directory")
        self.manifest: dict[str, Any] = read_manifest(self.directory)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(self.directory / self.manifest["model_file"]), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelFileError(f"{self.directory}: the graph does not load ({exc})") from exc
        self.input_name = self.manifest["input"]
        self.output_name = self.manifest.get("output", "probability")
        self.curve_days = np.asarray(self.manifest.get("survival_horizons", []), dtype=np.float64)

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def horizon_days(self) -> int:
        return int(self.manifest["horizon_days"])

    def predict(self, values: np.ndarray) -> np.ndarray:
        """Calibrated P(no visit in the release horizon)."""
        if len(values) == 0:
            return np.zeros(0)
        features = np.ascontiguousarray(values, dtype=np.float32)
        return self.session.run([self.output_name], {self.input_name: features})[0].astype(np.float64)

    def expected_visits(self, values: np.ndarray, days: int) -> np.ndarray:
        """Expected visit days in the next `days` days, interpolated between the graph's horizons."""
        if len(values) == 0:
            return np.zeros(0)
        if not len(self.curve_days):
            raise ModelFileError(f"{self.directory}: this model has no expected-visits curve")
        features = np.ascontiguousarray(values, dtype=np.float32)
        (curve,) = self.session.run(["expected_visits"], {self.input_name: features})
        return curve_at(curve, self.curve_days, float(days))


    def check_outputs(self, values: np.ndarray) -> None:
        """Run the graph on `values` and demand a finite number for every customer in every output.

        Every output, not only `probability`: a graph may carry more, and one that yields NaN or fails at
        run time must be refused before it is activated, however little data the canary had.
        """
        features = np.ascontiguousarray(values, dtype=np.float32)
        try:
            outputs = self.session.run(None, {self.input_name: features})
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelFileError(f"{self.directory.name}: the graph fails on a test prediction "
                                 f"({' '.join(str(exc).split())[:200]})") from exc
        for meta, output in zip(self.session.get_outputs(), outputs):
            array = np.asarray(output)
            if array.shape[:1] != (len(features),):
                raise ModelFileError(f"{self.directory.name}: output {meta.name} has {array.shape[:1]} rows "
                                     f"for {len(features)} customers")
            if np.issubdtype(array.dtype, np.number) and not np.all(np.isfinite(array)):
                raise ModelFileError(f"{self.directory.name}: output {meta.name} is not a finite number "
                                     "on a test prediction")


def probe_batch(feature_count: int, seed: int = 0) -> np.ndarray:
    """Feature rows for a test prediction when the store has none: zeros, ones and plausible magnitudes."""
    rng = np.random.default_rng(seed)
    rows = [np.zeros(feature_count), np.ones(feature_count), np.full(feature_count, 30.0),
            rng.uniform(0, 365, feature_count), rng.exponential(50, feature_count)]
    return np.vstack(rows)
