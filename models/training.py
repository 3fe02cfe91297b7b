"""Training the churn network on what customers did after each cutoff: early-stopped and, where it can be, calibrated.

`fit` is the whole recipe for one dataset (a store alone, or the pooled
chain). `train_epochs` is the inner loop, shared with the federated client,
which adds a FedProx term when the server asks for one. The loss is the
censored likelihood of models/network.py: every row counts, however short the
window after its cutoff, and no horizon is needed to train.

Early stopping watches the likelihood of a tenth of the customers held out
(all their rows: a customer's cutoffs are near-copies of each other). The
probability at the release horizon is then Platt-calibrated on the held-out
customers at the newest cutoffs whose window covers that horizon, which also
corrects a drift between the older cutoffs and today; when the history is too
short to see a whole horizon, the likelihood's own calibration stands.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .metrics import summary
from .network import ChurnNet, NetworkConfig, NormStats, window_nll
from .survival import SurvivalSet, holdout_split

CALIBRATION_CUTOFFS = 4  # the newest cutoffs whose window covers the horizon
MIN_CALIBRATION_ROWS = 200


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 30
    batch_size: int = 2048
    learning_rate: float = 3e-3
    weight_decay: float = 1e-3
    patience: int = 4
    seed: int = 0
    # torch intra-op threads: a network this small gains nothing from more, and on a busy
    # box (or two test workers on two cores) spinning threads cost up to five times the time
    threads: int | None = 1
    validation_share: float = 0.1


@dataclass
class TrainedModel:
    model: ChurnNet
    metrics: dict[str, float]  # on the held-out customers
    history: list[float] = field(default_factory=list)  # validation loss per epoch
    n_train: int = 0
    n_valid: int = 0


def _tensor(values: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values)).to(dtype)


def train_epochs(
    model: ChurnNet,
    rows: SurvivalSet,
    config: TrainingConfig,
    epochs: int,
    *,
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
    x, visits, last, window = _window_tensors(rows)
    generator = generator or torch.Generator().manual_seed(config.seed)
    mean_loss = float("nan")
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(visits), generator=generator)
        total, batches = 0.0, 0
        for begin in range(0, len(visits), config.batch_size):
            batch = order[begin : begin + config.batch_size]
            optimizer.zero_grad()
            loss = window_nll(model, x[batch], visits[batch], last[batch], window[batch])
            if proximal_mu > 0:
                loss = loss + proximal_mu / 2 * sum(((p - s) ** 2).sum() for p, s in zip(trainable, start))
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            batches += 1
        mean_loss = total / max(1, batches)
    model.eval()
    return mean_loss


def _window_tensors(rows: SurvivalSet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return (_tensor(rows.values), _tensor(rows.window_visits, torch.int64), _tensor(rows.last_visit),
            _tensor(rows.window_days))


@torch.no_grad()
def validation_loss(model: ChurnNet, rows: SurvivalSet) -> float:
    model.eval()
    return float(window_nll(model, *_window_tensors(rows)))


@torch.no_grad()
def predict_logits(model: ChurnNet, values: np.ndarray, batch: int = 65536, days: float | None = None) -> np.ndarray:
    """Uncalibrated churn logits at the model's horizon (or at `days`)."""
    model.eval()
    x = _tensor(values)
    if not len(x):
        return np.zeros(0)
    return torch.cat([model.churn_logit(x[i : i + batch], days) for i in range(0, len(x), batch)]).numpy().astype(np.float64)


@torch.no_grad()
def predict(model: ChurnNet, values: np.ndarray, batch: int = 65536) -> np.ndarray:
    """Calibrated probabilities of no visit in the model's horizon."""
    model.eval()
    x = _tensor(values)
    if not len(x):
        return np.zeros(0)
    return torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)]).numpy().astype(np.float64)


class TorchChurnModel:
    """A trained network behind the interface scoring uses (models/scoring.py's ChurnModel)."""

    def __init__(self, model: ChurnNet):
        self.model = model.eval()

    @property
    def horizon_days(self) -> int:
        return int(round(float(self.model.horizon)))

    def predict(self, values: np.ndarray) -> np.ndarray:
        return predict(self.model, values)

    @torch.no_grad()
    def expected_visits(self, values: np.ndarray, days: int) -> np.ndarray:
        if not len(values):
            return np.zeros(0)
        _, _, visits = self.model.curves(_tensor(values), torch.tensor([float(days)]))
        return visits[:, 0].numpy().astype(np.float64)


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


def calibration_rows(rows: SurvivalSet, horizon_days: int,
                     newest_cutoffs: int = CALIBRATION_CUTOFFS) -> tuple[np.ndarray, np.ndarray]:
    """(mask of rows at the newest cutoffs whose window covers the horizon, their churn labels)."""
    observed, _ = rows.churned_within(horizon_days)
    if not observed.any():
        return observed, np.zeros(0, dtype=np.float32)
    newest = np.unique(rows.cutoff[observed])[::-1][:newest_cutoffs]
    mask = observed & np.isin(rows.cutoff, newest)
    churned = (rows.event_days[mask] == 0) | (rows.event_days[mask] > horizon_days)
    return mask, churned.astype(np.float32)


def evaluate(model: ChurnNet, rows: SurvivalSet) -> dict[str, float]:
    """Likelihood of the held-out rows, and AUC/Brier at the horizon where a whole horizon was seen."""
    metrics: dict[str, float] = {"loss": validation_loss(model, rows)}
    mask, labels = calibration_rows(rows, int(model.horizon))
    if len(labels) and 0 < labels.mean() < 1:
        probabilities = predict(model, rows.values[mask])
        metrics.update(summary(labels, probabilities, probabilities))
    return metrics


def fit(
    rows: SurvivalSet,
    horizon_days: int,
    network: NetworkConfig = NetworkConfig(),
    config: TrainingConfig = TrainingConfig(),
    norm: NormStats | None = None,
) -> TrainedModel:
    """Train on 90% of the customers, stop early on the rest, calibrate at the horizon where it can be seen."""
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    train, valid = holdout_split(rows, config.validation_share, config.seed)
    model = ChurnNet(rows.values.shape[1], network, horizon_days)
    model.set_normalisation(norm or NormStats.fit(train.values))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    best, best_state, since_best, history = float("inf"), copy.deepcopy(model.state_dict()), 0, []
    for _ in range(config.epochs):
        train_epochs(model, train, config, 1, optimizer=optimizer, generator=generator)
        loss = validation_loss(model, valid)
        history.append(loss)
        if loss < best - 1e-5:
            best, best_state, since_best = loss, copy.deepcopy(model.state_dict()), 0
        else:
            since_best += 1
            if since_best >= config.patience:
                break
    model.load_state_dict(best_state)
    mask, labels = calibration_rows(valid, horizon_days)
    if len(labels) >= MIN_CALIBRATION_ROWS and 0 < labels.mean() < 1:
        model.set_calibration(*fit_platt(predict_logits(model, valid.values[mask]), labels))
    return TrainedModel(model, evaluate(model, valid), history, len(train), len(valid))
