"""Classical churn baselines, scored on exactly the same customers as the model.

- recency: rank by days since the last visit (what most retailers do first);
- RFM logistic regression: log recency, log frequency, log monetary;
- BG/NBD (Fader, Hardie & Lee 2005): the standard probabilistic model of
  non-contractual buying; the churn score is its probability of no purchase in
  the horizon, P(dead) + P(alive)·P(no purchase | alive).

Each is fitted on the training set's stacked cutoffs and applied to the test
customers, so baseline and model see the same information.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .labels import LabelledSet
from .schema import FEATURE_INDEX

RFM_COLUMNS = ("recency_log", "visits_365_rate", "spend_365_rate")
Scorer = Callable[[LabelledSet], np.ndarray]


def recency_scores(data: LabelledSet) -> np.ndarray:
    return data.facts["recency_days"].astype(np.float64)


@dataclass
class RfmLogistic:
    """Logistic regression on standardised log-RFM features."""

    weights: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @staticmethod
    def _columns(data: LabelledSet) -> np.ndarray:
        x = data.values[:, [FEATURE_INDEX[c] for c in RFM_COLUMNS]].astype(np.float64)
        return np.nan_to_num(x)

    @classmethod
    def fit(cls, data: LabelledSet) -> RfmLogistic:
        x = cls._columns(data)
        mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
        features = torch.tensor((x - mean) / std)
        y = torch.tensor(data.labels, dtype=torch.float64)
        w = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([w], max_iter=200, line_search_fn="strong_wolfe")
        loss_fn = nn.BCEWithLogitsLoss()

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = loss_fn(features @ w[:-1] + w[-1], y) + 1e-4 * (w[:-1] ** 2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        return cls(w.detach().numpy(), mean, std)

    def __call__(self, data: LabelledSet) -> np.ndarray:
        z = (self._columns(data) - self.mean) / self.std
        return 1.0 / (1.0 + np.exp(-(z @ self.weights[:-1] + self.weights[-1])))


@dataclass
class BgNbd:
    """BG/NBD with parameters (r, alpha, a, b); time in days."""

    r: float
    alpha: float
    a: float
    b: float
    horizon_days: int

    @staticmethod
    def _summaries(data: LabelledSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x repeat visits, t_x days from first to last visit, T days from first visit to cutoff)."""
        x = np.maximum(data.facts["visit_days_total"] - 1, 0)
        big_t = data.facts["tenure_days"]
        t_x = np.maximum(big_t - data.facts["recency_days"], 0)
        return x, t_x, big_t

    @classmethod
    def fit(cls, data: LabelledSet, horizon_days: int) -> BgNbd:
        x, t_x, big_t = (torch.tensor(v, dtype=torch.float64) for v in cls._summaries(data))
        log_params = torch.tensor([0.0, np.log(10.0), 0.0, 0.0], dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([log_params], max_iter=300, line_search_fn="strong_wolfe")
        repeat = (x > 0).double()

        def negative_log_likelihood() -> torch.Tensor:
            r, alpha, a, b = torch.exp(log_params)
            part1 = torch.lgamma(r + x) - torch.lgamma(r) + r * torch.log(alpha)
            part2 = torch.lgamma(a + b) + torch.lgamma(b + x) - torch.lgamma(b) - torch.lgamma(a + b + x)
            part3 = -(r + x) * torch.log(alpha + big_t)
            part4 = torch.log(a) - torch.log(torch.clamp(b + x - 1, min=1e-9)) - (r + x) * torch.log(alpha + t_x)
            mixed = torch.where(repeat > 0, torch.logaddexp(part3, part4), part3)
            return -(part1 + part2 + mixed).mean()

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = negative_log_likelihood()
            loss.backward()
            return loss

        optimizer.step(closure)
        r, alpha, a, b = (float(v) for v in torch.exp(log_params.detach()))
        return cls(r, alpha, a, b, horizon_days)

    def __call__(self, data: LabelledSet) -> np.ndarray:
        x, t_x, big_t = self._summaries(data)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            odds = np.where(
                x > 0,
                self.a / np.maximum(self.b + x - 1, 1e-9) * ((self.alpha + big_t) / (self.alpha + t_x)) ** (self.r + x),
                0.0,
            )
            alive = 1.0 / (1.0 + odds)
            silent_if_alive = ((self.alpha + big_t) / (self.alpha + big_t + self.horizon_days)) ** (self.r + x)
        return np.nan_to_num((1 - alive) + alive * silent_if_alive, nan=1.0)


def fit_baselines(train: LabelledSet, horizon_days: int) -> dict[str, Scorer]:
    """Every baseline, fitted on `train`, as name → scoring function."""
    return {
        "recency": recency_scores,
        "rfm_logistic": RfmLogistic.fit(train),
        "bg_nbd": BgNbd.fit(train, horizon_days),
    }
