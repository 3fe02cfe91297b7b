"""What a store does in the federation, free of Flower types.

It reads its own database read-only, builds its censored next-visit rows at
cutoffs through its history before the federation's as-of (kept between the
ClientApp's processes by training_rows.py), holds out a tenth of its
customers, and answers four questions: the moments of its features (for the
shared normalisation), a local training update, an evaluation on its
held-out customers (likelihood, and AUC where a whole horizon was seen), and
a histogram of their logits at the horizon (for the shared calibration).
Nothing per customer leaves: weights, counts, sums and histograms only. torch is imported here, in the
ClientApp's process, never in the store box's daemon.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.federated import CHECK_DAYS, load_trainable, logit_histogram, trainable_arrays
from models.flower_protocol import DEFAULTS, Metric
from models.metrics import roc_auc
from models.network import ChurnNet, NetworkConfig, NormStats
from models.schema import FEATURE_NAMES
from models.survival import SurvivalDataError
from models.training import (
    TrainingConfig, calibration_rows, holdout_split, predict_logits, train_epochs, validation_loss,
)

from .training_rows import RowsUnavailable, store_rows


class StoreTrainingError(Exception):
    """This store cannot take part as asked (no database, history too short...)."""


@dataclass(frozen=True)
class LocalSettings:
    """What the server asks of a store for one message, plus the box's own limits."""

    as_of_day: int
    horizon_days: int
    local_epochs: int = DEFAULTS.local_epochs
    learning_rate: float = DEFAULTS.learning_rate
    batch_size: int = DEFAULTS.batch_size
    seed: int = DEFAULTS.seed
    threads: int | None = None  # from the SuperNode's node config: the device's limit
    max_train_rows: int | None = None
    cache_dir: Path | None = None  # where the rows are kept between the ClientApp's processes


class StoreTrainer:
    """One store's side of every federation message."""

    def __init__(self, db_path: str | Path, settings: LocalSettings):
        started = time.perf_counter()
        self.settings = settings
        if settings.threads:
            torch.set_num_threads(settings.threads)
        try:
            rows, _ = store_rows(Path(db_path), settings.as_of_day, settings.seed, settings.cache_dir)
        except RowsUnavailable as exc:
            raise StoreTrainingError(str(exc)) from None
        self.store_id = str(rows.store[0])
        try:
            self.train_rows, self.holdout = holdout_split(rows, seed=settings.seed)
        except SurvivalDataError as exc:
            raise StoreTrainingError(f"store {self.store_id}: {exc}") from None
        if settings.max_train_rows and len(self.train_rows) > settings.max_train_rows:
            keep = np.random.default_rng(settings.seed).permutation(len(self.train_rows))[: settings.max_train_rows]
            self.train_rows = self.train_rows.subset(np.sort(keep))
        # Reading the database and building the cutoffs (or loading them from the cache): store work,
        # but not training (the server tells it apart from the federation's own overhead).
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
