"""The federation's wire protocol: Flower message kinds, record names, keys and the training defaults.

The ServerApp (server/federation) and the store's ClientApp (edge_agent/client_app.py)
both spell every key from here, so a key cannot drift between the two sides, and
every training default has one value: the run config's defaults
(server/federation/settings.py, and server/flower_app/pyproject.toml, checked
against them by a test) and the store's fallbacks both come from `DEFAULTS`.

Plain strings and numbers: no Flower import (models/ stays free of it).

One exchange is one message to every sampled store and its reply. A federation
of N rounds takes N + 2 of them (see docs/federation.md):

1. `query.stats`: per-feature moments for the shared normalisation (skipped on a resume);
2. `train`, once per round: local epochs from the global weights; from round 2 on, the
   reply also carries the evaluation of the weights it started from (the previous
   round's result) in its `evaluation` record, so evaluating costs no exchange;
3. `query.calibrate`: the final weights' evaluation, which is both the last round's
   metrics and the histograms for the shared calibration;
4. `train.personalise` (optional): fine-tune the head locally, report whether it helps.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    """A message kind: Flower's category (`train`, `evaluate`, `query`) and our action within it."""

    category: str
    action: str = ""

    @property
    def type(self) -> str:
        """The message type on the wire (`query.stats`, `train`, ...)."""
        return f"{self.category}.{self.action}" if self.action else self.category


STATS = Kind("query", "stats")
TRAIN = Kind("train")
CALIBRATE = Kind("query", "calibrate")
PERSONALISE = Kind("train", "personalise")
EVALUATE = Kind("evaluate")  # not sent any more; a store still answers it for servers of earlier releases


class Record:
    """Names of the records inside a message's content."""

    CONFIG = "config"  # server → store: what to do (Config keys)
    ARRAYS = "arrays"  # both ways: the trainable weights
    METRICS = "metrics"  # store → server: the answer (Metric keys); exactly one per reply, as Flower's FedAvg needs
    EVALUATION = "evaluation"  # store → server, in a training reply: the incoming weights' evaluation
    STORE = "store"  # store → server: the store id it claims (a label; the node is the identity)


class Config:
    """Keys of the `config` record the server sends."""

    AS_OF_DAY = "as-of-day"
    HORIZON_DAYS = "horizon-days"
    LOCAL_EPOCHS = "local-epochs"
    LEARNING_RATE = "learning-rate"
    BATCH_SIZE = "batch-size"
    SEED = "seed"
    FEATURE_MEAN = "feature-mean"
    FEATURE_STD = "feature-std"
    PROXIMAL_MU = "proximal-mu"
    SERVER_ROUND = "server-round"  # the round number (Flower's strategies set it under this name)
    EVALUATE_INCOMING = "evaluate-incoming"  # true: evaluate the weights received before training on them
    CALIBRATION_SLOPE = "calibration-slope"
    CALIBRATION_INTERCEPT = "calibration-intercept"
    PERSONALISE_EPOCHS = "personalise-epochs"
    CLIPPING_NORM = "clipping_norm"  # Flower's differential-privacy wrapper sends it (its spelling)


class Metric:
    """Keys of the metric records a store answers with."""

    EXAMPLES = "num-examples"  # the weight of a store's answer (FedAvg's weighted_by_key)
    UNIT_WEIGHT = "unit-weight"  # 1.0 from every store: the weight under differential privacy
    # moments (query.stats)
    COUNT = "count"
    SUM = "sum"
    SUM_SQ = "sum-sq"
    # training
    TRAIN_LOSS = "train-loss"
    TRAIN_SECONDS = "train-seconds"  # the local epochs alone, measured by the store
    PREPARE_SECONDS = "prepare-seconds"  # reading the database and building (or loading cached) rows
    EVALUATE_SECONDS = "evaluate-seconds"  # evaluating the weights received
    STARTUP_SECONDS = "startup-seconds"  # the ClientApp process from its start until the trainer is loaded
    # evaluation (query.calibrate, the `evaluation` record of a training reply)
    LOSS = "loss"
    AUC = "auc"
    AUC_DAYS = "auc-days"
    AUC_EXAMPLES = "auc-examples"
    CHURN_RATE = "churn-rate"
    HIST_CHURNED = "hist-churned"
    HIST_STAYED = "hist-stayed"
    CALIBRATION_CHURNED = "calibration-churned"
    CALIBRATION_STAYED = "calibration-stayed"
    # personalisation
    AUC_GLOBAL = "auc-global"
    AUC_PERSONAL = "auc-personal"
    HELPS = "helps"
    # pooled by the server
    MEAN_STORE_AUC = "mean-store-auc"
    POOLED_EXAMPLES = "examples"


TIMINGS = (Metric.STARTUP_SECONDS, Metric.PREPARE_SECONDS, Metric.EVALUATE_SECONDS, Metric.TRAIN_SECONDS)


class StoreKey:
    """Keys of the `store` record."""

    STORE_ID = "store-id"


class Node:
    """Keys of a SuperNode's `--node-config`: the store box's own settings and limits."""

    STORE_DB = "store-db"
    THREADS = "threads"
    MAX_TRAIN_ROWS = "max-train-rows"
    MAX_LOCAL_EPOCHS = "max-local-epochs"
    BATCH_SIZE = "batch-size"
    MODELS_DIR = "models-dir"
    CACHE_DIR = "cache-dir"  # where the ClientApp keeps the store's training rows between messages


@dataclass(frozen=True)
class TrainingDefaults:
    """What a store does when the server does not say otherwise, and the run config's defaults."""

    local_epochs: int = 3
    learning_rate: float = 3e-3
    batch_size: int = 1024
    seed: int = 0
    personalise_epochs: int = 5


DEFAULTS = TrainingDefaults()

# Every Flower process we start (SuperLink, SuperNode) passes this to the SuperExec it starts:
# it looks for work (a ClientApp or ServerApp to launch) every 0.1 s instead of Flower's 1 s.
# It polls its own process's API on loopback, so the cost is local.
SUPEREXEC_ENV = {"FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.1"}
