"""What a store does in the federation, free of Flower types.

It reads its own database read-only, builds its labelled cutoffs at the
federation's as-of, and answers four questions: the moments of its features
(for the shared normalisation), a local training update, an evaluation on its
newest labelled cutoff (held out from its training), and a histogram of its
held-out logits (for the shared calibration). Nothing per customer leaves:
weights, counts, sums and histograms only. torch is imported here, in the
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

from models.federated import load_trainable, logit_histogram, trainable_arrays
from models.labels import LabelledSet, training_set
from models.metrics import log_loss, roc_auc
from models.network import ChurnNet, NetworkConfig, NormStats
from models.schema import FEATURE_NAMES
from models.store_data import load_store_data
from models.training import TrainingConfig, holdout_split, positive_weight, predict_logits, train_epochs


class StoreTrainingError(Exception):
    """This store cannot take part as asked (no database, history too short...)."""


@dataclass(frozen=True)
class LocalSettings:
    """What the server asks of a store for one message, plus the box's own limits."""

    as_of_day: int
    horizon_days: int
    local_epochs: int = 2
    learning_rate: float = 2e-3
    batch_size: int = 512
    seed: int = 0
    threads: int | None = None  # from the SuperNode's node config: the device's limit
    max_train_rows: int | None = None


_CACHE: OrderedDict[tuple[str, int, int], LabelledSet] = OrderedDict()
_CACHE_SIZE = 8


def _labelled(db_path: Path, as_of_day: int, horizon_days: int) -> LabelledSet:
    """The store's labelled cutoffs, cached: rounds in one process reuse them."""
    key = (str(db_path), as_of_day, horizon_days)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    if not db_path.exists():
        raise StoreTrainingError(f"store database {db_path} does not exist")
    data = load_store_data(db_path)
    labelled = training_set(data, as_of_day, horizon_days)
    if labelled.plan is not None and labelled.plan.horizon_days != horizon_days:
        raise StoreTrainingError(f"store {data.store_id}: {labelled.plan.note}")
    _CACHE[key] = labelled
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return labelled


class StoreTrainer:
    """One store's side of every federation message."""

    def __init__(self, db_path: str | Path, settings: LocalSettings):
        started = time.perf_counter()
        self.settings = settings
        if settings.threads:
            torch.set_num_threads(settings.threads)
        labelled = _labelled(Path(db_path), settings.as_of_day, settings.horizon_days)
        self.store_id = str(labelled.store[0])
        self.train_rows, self.holdout = holdout_split(labelled, settings.seed)
        if settings.max_train_rows and len(self.train_rows) > settings.max_train_rows:
            keep = np.random.default_rng(settings.seed).permutation(len(self.train_rows))[: settings.max_train_rows]
            self.train_rows = self.train_rows.subset(np.sort(keep))
        # Reading the database and building the cutoffs: store work, but not training (the
        # server tells it apart from the federation's own overhead; 0 when cached in-process).
        self.prepare_seconds = time.perf_counter() - started

    def _model(self, weights: dict[str, np.ndarray] | None, norm: NormStats) -> ChurnNet:
        torch.manual_seed(self.settings.seed)
        model = ChurnNet(len(FEATURE_NAMES), NetworkConfig())
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
        loss = train_epochs(
            model, self.train_rows.values, self.train_rows.labels, config, self.settings.local_epochs,
            pos_weight=positive_weight(self.train_rows.labels, config.max_pos_weight), proximal_mu=proximal_mu,
        )
        arrays = trainable_arrays(model)
        return arrays, {"num-examples": len(self.train_rows), "train-loss": float(loss),
                        "train-seconds": time.perf_counter() - started, "prepare-seconds": self.prepare_seconds}

    def evaluate(self, weights: dict[str, np.ndarray], norm: NormStats) -> dict[str, Any]:
        """Loss and AUC on the newest labelled cutoff, plus its logit histogram."""
        logits = predict_logits(self._model(weights, norm), self.holdout.values)
        labels = self.holdout.labels
        positive, negative = logit_histogram(logits, labels)
        probabilities = 1.0 / (1.0 + np.exp(-logits))
        return {
            "num-examples": len(labels),
            "loss": log_loss(labels, probabilities),
            "auc": roc_auc(labels, logits),
            "churn-rate": float(labels.mean()),
            "hist-churned": positive.tolist(),
            "hist-stayed": negative.tolist(),
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
        train_epochs(
            local, self.train_rows.values, self.train_rows.labels, config, epochs,
            pos_weight=positive_weight(self.train_rows.labels, config.max_pos_weight),
            parameters=local.head_parameters(),
        )
        labels = self.holdout.labels
        auc_global = roc_auc(labels, predict_logits(global_model, self.holdout.values))
        auc_local = roc_auc(labels, predict_logits(local, self.holdout.values))
        if out_dir is not None and auc_local > auc_global:
            from models.export import write_model_dir

            write_model_dir(local, out_dir, version=f"personal-{self.store_id}", horizon_days=self.settings.horizon_days,
                            metrics={"auc": auc_local, "auc_global": auc_global}, training={"mode": "personalised"})
        return {"num-examples": len(labels), "auc-global": auc_global, "auc-personal": auc_local,
                "helps": float(auc_local > auc_global)}
