"""What a store does in the federation, free of Flower types.

On its rows (training_rows.py: its censored next-visit windows at cutoffs
through its history before the federation's as-of, a tenth of its customers
held out, and the feature moments for the shared normalisation), it answers
the questions that need the network: a local training update, an evaluation
on its held-out customers (likelihood, and AUC where a whole horizon was
seen), histograms of their logits (for the pooled AUC and the shared
calibration), and a personalised head.
Nothing per customer leaves: weights, counts, sums and histograms only. torch is imported here, in the
ClientApp's process, never in the store box's daemon.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.federated import CHECK_DAYS, load_trainable, logit_histogram, trainable_arrays
from models.flower_protocol import Metric
from models.metrics import roc_auc
from models.network import ChurnNet, NetworkConfig, NormStats
from models.schema import FEATURE_NAMES
from models.training import TrainingConfig, calibration_rows, predict_logits, train_epochs, validation_loss

from .training_rows import LocalSettings, StoreRows, StoreUnavailable

__all__ = ["LocalSettings", "StoreTrainer", "StoreUnavailable"]


class StoreTrainer:
    """One store's side of every federation message that needs the network."""

    def __init__(self, db_path: str | Path, settings: LocalSettings):
        self.settings = settings
        if settings.threads:
            torch.set_num_threads(settings.threads)
        rows = StoreRows(db_path, settings)
        self.store_id, self.train_rows, self.holdout = rows.store_id, rows.train_rows, rows.holdout
        self.prepare_seconds = rows.prepare_seconds

    def _model(self, weights: dict[str, np.ndarray] | None, norm: NormStats) -> ChurnNet:
        torch.manual_seed(self.settings.seed)
        model = ChurnNet(len(FEATURE_NAMES), NetworkConfig(), self.settings.horizon_days)
        model.set_normalisation(norm)
        if weights is not None:
            load_trainable(model, weights)
        return model

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
        return arrays, {Metric.EXAMPLES: len(self.train_rows), Metric.TRAIN_LOSS: float(loss),
                        Metric.TRAIN_SECONDS: time.perf_counter() - started}

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
            Metric.EXAMPLES: len(self.holdout),
            Metric.LOSS: validation_loss(model, self.holdout),
            Metric.AUC: auc if np.isfinite(auc) else 0.5,
            Metric.AUC_DAYS: check_days,
            Metric.AUC_EXAMPLES: len(labels),
            Metric.CHURN_RATE: float(labels.mean()) if len(labels) else 0.0,
            Metric.HIST_CHURNED: positive.tolist(),
            Metric.HIST_STAYED: negative.tolist(),
            Metric.CALIBRATION_CHURNED: calibration[0].tolist(),
            Metric.CALIBRATION_STAYED: calibration[1].tolist(),
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
        return {Metric.EXAMPLES: len(labels), Metric.AUC_GLOBAL: auc_global, Metric.AUC_PERSONAL: auc_local,
                Metric.HELPS: float(auc_local > auc_global)}
