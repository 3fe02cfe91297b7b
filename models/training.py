"""Training the churn network: imbalance-aware, early-stopped and calibrated on a held-out cutoff.

`fit` is the whole recipe for one dataset (a store alone, or the pooled
chain). `train_epochs` is the inner loop, shared with the federated client,
which adds a FedProx term when the server asks for one.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .labels import LabelError, LabelledSet
from .metrics import summary
from .network import ChurnNet, NetworkConfig, NormStats


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 60
    batch_size: int = 512
    learning_rate: float = 2e-3
    weight_decay: float = 1e-3
    patience: int = 8
    seed: int = 0
    threads: int | None = None  # torch intra-op threads; None leaves torch's default
    max_pos_weight: float = 10.0


@dataclass
class TrainedModel:
    model: ChurnNet
    metrics: dict[str, float]  # on the held-out cutoff, calibrated
    history: list[float] = field(default_factory=list)  # validation loss per epoch
    n_train: int = 0
    n_valid: int = 0


def positive_weight(labels: np.ndarray, cap: float) -> float:
    """Weight of a churner in the loss so both classes count about equally (capped)."""
    positives = float(labels.sum())
    negatives = float(len(labels) - positives)
    if positives == 0:
        return 1.0
    return float(min(cap, max(1.0, negatives / positives)))


def _tensor(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))


def train_epochs(
    model: ChurnNet,
    values: np.ndarray,
    labels: np.ndarray,
    config: TrainingConfig,
    epochs: int,
    *,
    pos_weight: float,
    proximal_mu: float = 0.0,
    optimizer: torch.optim.Optimizer | None = None,
    parameters: Sequence[nn.Parameter] | None = None,
    generator: torch.Generator | None = None,
) -> float:
    """Run `epochs` passes of minibatch training; return the last epoch's mean loss.

    With `proximal_mu > 0`, adds (mu/2)·||w − w_start||² (FedProx), keeping a
    store's update close to the global model it started from.
    """
    trainable = list(parameters) if parameters is not None else list(model.parameters())
    optimizer = optimizer or torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    start = [p.detach().clone() for p in trainable] if proximal_mu > 0 else []
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight))
    x, y = _tensor(values), _tensor(labels)
    generator = generator or torch.Generator().manual_seed(config.seed)
    mean_loss = float("nan")
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        total, batches = 0.0, 0
        for begin in range(0, len(y), config.batch_size):
            batch = order[begin : begin + config.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model.logit(x[batch]), y[batch])
            if proximal_mu > 0:
                loss = loss + proximal_mu / 2 * sum(((p - s) ** 2).sum() for p, s in zip(trainable, start))
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            batches += 1
        mean_loss = total / max(1, batches)
    model.eval()
    return mean_loss


@torch.no_grad()
def predict_logits(model: ChurnNet, values: np.ndarray, batch: int = 65536) -> np.ndarray:
    model.eval()
    x = _tensor(values)
    return torch.cat([model.logit(x[i : i + batch]) for i in range(0, len(x), batch)]).numpy().astype(np.float64) if len(x) else np.zeros(0)


@torch.no_grad()
def predict(model: ChurnNet, values: np.ndarray, batch: int = 65536) -> np.ndarray:
    """Calibrated probabilities."""
    model.eval()
    x = _tensor(values)
    return torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)]).numpy().astype(np.float64) if len(x) else np.zeros(0)


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Slope and intercept on the logit minimising log-loss (Platt scaling)."""
    x = torch.tensor(logits, dtype=torch.float64)
    y = torch.tensor(labels, dtype=torch.float64)
    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([params], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")
    loss_fn = nn.BCEWithLogitsLoss()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(params[0] * x + params[1], y)
        loss.backward()
        return loss

    optimizer.step(closure)
    slope, intercept = (float(v) for v in params.detach())
    if not np.isfinite(slope) or slope <= 0:  # a degenerate fit must not invert the ranking
        return 1.0, 0.0
    return slope, intercept


def holdout_split(data: LabelledSet, seed: int = 0) -> tuple[LabelledSet, LabelledSet]:
    """Hold out the newest cutoff (the most like tomorrow); with one cutoff, a random fifth."""
    newest = data.cutoff.max()
    valid = data.cutoff == newest
    if valid.all():
        valid = np.random.default_rng(seed).random(len(data)) < 0.2
    if valid.all() or not valid.any():
        raise LabelError("too few labelled customers to hold some out")
    return data.subset(~valid), data.subset(valid)


def fit(
    data: LabelledSet,
    network: NetworkConfig = NetworkConfig(),
    config: TrainingConfig = TrainingConfig(),
    norm: NormStats | None = None,
) -> TrainedModel:
    """Train on all but the newest cutoff, stop early and calibrate on the newest."""
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    train, valid = holdout_split(data, config.seed)
    model = ChurnNet(data.values.shape[1], network)
    model.set_normalisation(norm or NormStats.fit(train.values))
    weight = positive_weight(train.labels, config.max_pos_weight)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    valid_loss = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(weight))
    best, best_state, since_best, history = float("inf"), copy.deepcopy(model.state_dict()), 0, []
    for _ in range(config.epochs):
        train_epochs(model, train.values, train.labels, config, 1, pos_weight=weight,
                     optimizer=optimizer, generator=generator)
        with torch.no_grad():
            loss = float(valid_loss(torch.from_numpy(predict_logits(model, valid.values)).float(), _tensor(valid.labels)))
        history.append(loss)
        if loss < best - 1e-5:
            best, best_state, since_best = loss, copy.deepcopy(model.state_dict()), 0
        else:
            since_best += 1
            if since_best >= config.patience:
                break
    model.load_state_dict(best_state)
    model.set_calibration(*fit_platt(predict_logits(model, valid.values), valid.labels))
    probabilities = predict(model, valid.values)
    return TrainedModel(model, summary(valid.labels, probabilities, probabilities), history, len(train), len(valid))
