"""What a store does in the federation, free of Flower types.

It reads its own database read-only, builds its censored next-visit rows at
cutoffs through its history before the federation's as-of, holds out a tenth
of its customers, and answers four questions: the moments of its features
(for the shared normalisation), a local training update, an evaluation on its
held-out customers (likelihood, and AUC where a whole horizon was seen), and
a histogram of their logits at the horizon (for the shared calibration).
Nothing per customer leaves: weights, counts, sums and histograms only. torch is imported here, in the
ClientApp's process, never in the store box's daemon.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.federated import CHECK_DAYS, load_trainable, logit_histogram, trainable_arrays
from models.metrics import roc_auc
from models.network import ChurnNet, NetworkConfig, NormStats
from models.schema import FEATURE_NAMES
from models.store_data import StoreDataError, load_store_data
from models.survival import SurvivalDataError, SurvivalSet, survival_set
from models.training import (
    TrainingConfig, calibration_rows, holdout_split, predict_logits, train_epochs, validation_loss,
)

MAX_ROWS = 100_000  # a uniform sample of the store's rows beyond this (see server/train.py)


class StoreTrainingError(Exception):
    """This store cannot take part as asked (no database, history too short...)."""


@dataclass(frozen=True)
class LocalSettings:
    """What the server asks of a store for one message, plus the box's own limits."""

    as_of_day: int
    horizon_days: int
    local_epochs: int = 3
    learning_rate: float = 3e-3
    batch_size: int = 1024
    seed: int = 0
    threads: int | None = None  # from the SuperNode's node config: the device's limit
    max_train_rows: int | None = None


_CACHE: OrderedDict[tuple[str, int, int], SurvivalSet] = OrderedDict()
_CACHE_SIZE = 8


def _rows(db_path: Path, as_of_day: int, seed: int) -> SurvivalSet:
    """The store's training rows, cached: rounds in one process reuse them."""
    key = (str(db_path), as_of_day, seed)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    if not db_path.exists():
        raise StoreTrainingError(f"store database {db_path} does not exist")
    try:
        rows = survival_set(load_store_data(db_path), as_of_day, max_rows=MAX_ROWS, seed=seed)
    except (StoreDataError, SurvivalDataError) as exc:
        raise StoreTrainingError(str(exc)) from None
    _CACHE[key] = rows
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return rows


class StoreTrainer:
    """One store's side of every federation message."""

    def __init__(self, db_path: str | Path, settings: LocalSettings):
        started = time.perf_counter()
        self.settings = settings
        if settings.threads:
            torch.set_num_threads(settings.threads)
        rows = _rows(Path(db_path), settings.as_of_day, settings.seed)
        self.store_id = str(rows.store[0])
        try:
            self.train_rows, self.holdout = holdout_split(rows, seed=settings.seed)
        except SurvivalDataError as exc:
            raise StoreTrainingError(f"store {self.store_id}: {exc}") from None
        if settings.max_train_rows and len(self.train_rows) > settings.max_train_rows:
            keep = np.random.default_rng(settings.seed).permutation(len(self.train_rows))[: settings.max_train_rows]
            self.train_rows = self.train_rows.subset(np.sort(keep))
        # Reading the database and building the cutoffs: store work, but not training (the
        # server tells it apart from the federation's own overhead; 0 when cached in-process).
        self.prepare_seconds = time.perf_counter() - started

    def _model(self, weights: dict[str, np.ndarray] | None, norm: NormStats) -> ChurnNet:
        torch.manual_seed(self.settings.seed)
        model = ChurnNet(len(FEATURE_NAMES), NetworkConfig(), self.settings.horizon_days)
        model.set_normalisation(norm)
        if weights is not None:
            load_trainable(model, weights)
        return model

    def moments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return NormStats.moments(self.train_rows.values)

    def train(self, weights: dict[str, np.ndarray], norm: NormStats, proximal_mu: float) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Local epochs from the global weights; FedProx when `proximal_mu` > 0.

        The reply carries how long the epochs took, so the server can tell training
        time from the federation's overhead.
        """
        started = time.perf_counter()
        model = self._model(weights, norm)
        config = TrainingConfig(learning_rate=self.settings.learning_rate, batch_size=self.settings.batch_size,
                                seed=self.settings.seed)
        loss = train_epochs(model, self.train_rows, config, self.settings.local_epochs, proximal_mu=proximal_mu)
        arrays = trainable_arrays(model)
        return arrays, {"num-examples": len(self.train_rows), "train-loss": float(loss),
                        "train-seconds": time.perf_counter() - started, "prepare-seconds": self.prepare_seconds}

    def evaluate(self, weights: dict[str, np.ndarray], norm: NormStats) -> dict[str, Any]:
        """Likelihood of the held-out customers; their AUC and logit histogram at the check horizon,
        min(horizon, 90 days), which a year of history can always show; and the histogram at the
        horizon itself for the shared calibration, empty when no whole horizon was seen."""
        model = self._model(weights, norm)
        check_days = min(self.settings.horizon_days, CHECK_DAYS)
        mask, labels = calibration_rows(self.holdout, check_days)
        logits = predict_logits(model, self.holdout.values[mask], days=check_days)
        positive, negative = logit_histogram(logits, labels)
        auc = roc_auc(labels, logits) if len(labels) else float("nan")
        at_horizon, horizon_labels = calibration_rows(self.holdout, self.settings.horizon_days)
        calibration = logit_histogram(predict_logits(model, self.holdout.values[at_horizon]), horizon_labels)
        return {
            "num-examples": len(self.holdout),
            "loss": validation_loss(model, self.holdout),
            "auc": auc if np.isfinite(auc) else 0.5,
            "auc-days": check_days,
            "auc-examples": len(labels),
            "churn-rate": float(labels.mean()) if len(labels) else 0.0,
            "hist-churned": positive.tolist(),
            "hist-stayed": negative.tolist(),
            "calibration-churned": calibration[0].tolist(),
            "calibration-stayed": calibration[1].tolist(),
        }

    def personalise(
        self, weights: dict[str, np.ndarray], norm: NormStats, calibration: tuple[float, float], epochs: int,
        out_dir: Path | None = None,
    ) -> dict[str, Any]:
        """Fine-tune only the head on this store's older cutoffs; compare on the newest.

        The personalised model stays on the box (written to `out_dir` when
        given); only the two AUCs leave.
        """
        global_model = self._model(weights, norm)
        global_model.set_calibration(*calibration)
        local = self._model(weights, norm)
        local.set_calibration(*calibration)
        config = TrainingConfig(learning_rate=self.settings.learning_rate / 2, batch_size=self.settings.batch_size,
                                seed=self.settings.seed)
        train_epochs(local, self.train_rows, config, epochs, parameters=local.head_parameters())
        mask, labels = calibration_rows(self.holdout, self.settings.horizon_days)
        auc_global = roc_auc(labels, predict_logits(global_model, self.holdout.values[mask]))
        auc_local = roc_auc(labels, predict_logits(local, self.holdout.values[mask]))
        if out_dir is not None and auc_local > auc_global:
            from models.export import write_model_dir

            write_model_dir(local, out_dir, version=f"personal-{self.store_id}", horizon_days=self.settings.horizon_days,
                            metrics={"auc": auc_local, "auc_global": auc_global}, training={"mode": "personalised"})
        return {"num-examples": len(labels), "auc-global": auc_global, "auc-personal": auc_local,
                "helps": float(auc_local > auc_global)}
