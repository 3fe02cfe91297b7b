"""Federation over local store databases, for backtests and experiments.

Two engines run the same ServerApp logic and the Flower App's declared
ClientApp: "deployment" (the default of `churn-server backtest --mode
federated`) over a real SuperLink and one SuperNode per database on this
machine, exactly as the stores run it; "in-process" on an in-process grid (no
SuperLink, no SuperNodes), much faster, for tests and quick experiments.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from models.days import day_date
from models.export import INPUT_NAME, OUTPUT_NAME, curve_at
from models.network import SURVIVAL_HORIZONS
from models.scoring import ChurnModel
from models.training import TorchChurnModel

from .deployment import LocalDeployment
from .in_process import InProcessGrid
from .rounds import FederationOutcome, run_federation
from .runner import SuperLinkConnection, client_app_component, federate
from .settings import FederationSettings


def federate_in_process(db_paths: list[Path], settings: FederationSettings) -> FederationOutcome:
    """The deployed ServerApp and ClientApp code, run in this process over local databases."""
    grid = InProcessGrid(client_app_component(), db_paths)
    return run_federation(grid, settings)


ENGINES = ("deployment", "in-process")


def federated_predictor(db_paths: list[Path], as_of_day: int, horizon_days: int, rounds: int = 5,
                        engine: str = "deployment", **overrides: Any) -> ChurnModel:
    """For `churn-server backtest --mode federated`: train by federation, return the released model."""
    as_of = day_date(as_of_day - 1).isoformat()
    with tempfile.TemporaryDirectory(prefix="federated-backtest-") as work:
        settings = FederationSettings(
            as_of=as_of, state_dir=str(Path(work) / "state"), horizon_days=horizon_days, num_server_rounds=rounds,
            min_train_nodes=len(db_paths), min_available_nodes=len(db_paths),
            node_wait_seconds=120.0 if engine == "deployment" else 0.0, **overrides,
        )
        if engine == "in-process":
            return TorchChurnModel(federate_in_process(db_paths, settings).model)
        if engine != "deployment":
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}")
        with LocalDeployment(db_paths, Path(work) / "flower") as deployment:
            summary = federate(settings, SuperLinkConnection(deployment.address, insecure=True), retries=0,
                               flwr_home=Path(work) / "flwr-cli")
        return OnnxScorer((Path(summary["release_dir"]) / "model.onnx").read_bytes())


class OnnxScorer:
    """The released graph itself (normalisation and calibration inside), as scoring uses a model."""

    def __init__(self, model: bytes):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def _run(self, output: str, values: np.ndarray) -> np.ndarray:
        (result,) = self.session.run([output], {INPUT_NAME: np.ascontiguousarray(values, dtype=np.float32)})
        return np.asarray(result, dtype=np.float64)

    def predict(self, values: np.ndarray) -> np.ndarray:
        return self._run(OUTPUT_NAME, values).reshape(-1) if len(values) else np.zeros(0)

    def expected_visits(self, values: np.ndarray, days: int) -> np.ndarray:
        if not len(values):
            return np.zeros(0)
        return curve_at(self._run("expected_visits", values), SURVIVAL_HORIZONS, float(days))
