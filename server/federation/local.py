"""Federation in this process, over local store databases: for backtests and experiments.

It runs the deployed ServerApp logic and the Flower App's declared ClientApp,
on the in-process grid (no SuperLink, no SuperNodes).
"""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from models.training import predict

from .in_process import InProcessGrid
from .rounds import FederationOutcome, run_federation
from .runner import client_app_component
from .settings import FederationSettings


def federate_in_process(db_paths: list[Path], settings: FederationSettings) -> FederationOutcome:
    """The deployed ServerApp and ClientApp code, run in this process over local databases."""
    grid = InProcessGrid(client_app_component(), db_paths)
    return run_federation(grid, settings)


def federated_predictor(db_paths: list[Path], as_of_day: int, horizon_days: int, rounds: int = 5, **overrides: Any):  # type: ignore[no-untyped-def]
    """For `churn-server backtest --mode federated`: train by federation, return a scorer."""
    as_of = (date(1970, 1, 1) + timedelta(days=as_of_day - 1)).isoformat()
    with tempfile.TemporaryDirectory(prefix="federated-backtest-") as state:
        settings = FederationSettings(
            as_of=as_of, state_dir=state, horizon_days=horizon_days, num_server_rounds=rounds,
            min_train_nodes=len(db_paths), min_available_nodes=len(db_paths), node_wait_seconds=0.0, **overrides,
        )
        model = federate_in_process(db_paths, settings).model

    def score(values: np.ndarray) -> np.ndarray:
        return predict(model, values)

    return score
