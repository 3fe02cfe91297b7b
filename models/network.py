"""The churn network: normalisation, an MLP for tabular features, and a buy-till-you-die process per customer.

The network does not predict one fixed horizon. For each customer it outputs
the parameters of a purchase-and-dropout process, as Pareto/NBD does with
population-level parameters, here from the customer's own features:

- π, the probability they are still "alive" (not gone for good) today;
- λ, the rate of their visits while alive (visit days per day), uncertain
  around the network's estimate by a log-normal spread σ (nine fixed
  Gauss-Hermite nodes, so it exports to ONNX as plain arithmetic);
- μ, the rate at which an alive customer drops out.

From these, every question the product asks has a closed form: P(no visit in
the next t days) = S(t) for any t (including horizons longer than any label
window the history allows), P(lost within t days), and the expected visits in
the next t days (the customer's activity, set against their usual rhythm for
the early warning). Training maximises the exact likelihood of what each
customer did in the window after each cutoff: how many visit days, and when
the last one was (models/training.py), censored at as-of.

Normalisation, the release horizon, the survival horizons and the calibration
are buffers of the module, so the exported ONNX graph takes raw features (NaN
for unavailable) and returns the calibrated probability at the release horizon
plus the curves at fixed horizons: a store box needs nothing but the graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from .normalisation import NormStats

INPUT_CLIP = 5.0  # normalised inputs beyond ±5 sd are outliers on another store's scale
SURVIVAL_HORIZONS = (7, 14, 30, 60, 90, 180, 365)  # the graph's curve columns, in days
N_OUTPUTS = 4  # alive logit, log visit rate, log dropout rate, spread of the visit rate
RATE_PRIOR = 1 / 20  # visit days per day at a zero output: a visit every 20 days
DROPOUT_PRIOR = 1 / 365  # drop-outs per day at a zero output: a year's expected life
SPREAD_FLOOR = 0.05
# Bounds that keep every likelihood and curve finite whatever the weights (a noisy or poisoned
# update, an input far outside training): rates from one visit in 270 years to three a day,
# drop-outs from one in 2,700 years to one a day, spreads up to 3 (e^3 either way).
LOG_RATE_BOUNDS = (float(np.log(1e-5)), float(np.log(3.0)))
LOG_DROPOUT_BOUNDS = (float(np.log(1e-6)), 0.0)
ALIVE_LOGIT_BOUND = 15.0
SPREAD_CEILING = 3.0
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(9)  # E[f(Z)], Z ~ N(0, 1), as a weighted sum


@dataclass(frozen=True)
class NetworkConfig:
    """Small on purpose: a store has thousands of customers, not millions; (32, 16) matched
    wider bodies in backtests on simulated chains and on a real purchase log."""

    hidden: tuple[int, ...] = (32, 16)
    dropout: float = 0.1


class ChurnNet(nn.Module):
    """Raw features → each customer's purchase-and-dropout process; forward() gives churn at the horizon."""

    def __init__(self, n_features: int, config: NetworkConfig = NetworkConfig(), horizon_days: float = 90.0,
                 survival_horizons: Sequence[int] = SURVIVAL_HORIZONS):
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.register_buffer("calibration", torch.tensor([1.0, 0.0]))  # slope, intercept on the logit of S(H)
        self.register_buffer("horizon", torch.tensor(float(horizon_days)))
        self.register_buffer("survival_horizons", torch.tensor([float(h) for h in survival_horizons]))
        self.register_buffer("nodes", torch.tensor(_NODES, dtype=torch.float32))
        self.register_buffer("node_weights", torch.tensor(_WEIGHTS / _WEIGHTS.sum(), dtype=torch.float32))
        layers: list[nn.Module] = []
        width = n_features
        for size in config.hidden:
            layers += [nn.Linear(width, size), nn.SiLU(), nn.Dropout(config.dropout)]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, N_OUTPUTS)
        self.skip = nn.Linear(n_features, N_OUTPUTS, bias=False)  # a linear path: robust where data is thin
        with torch.no_grad():
            self.skip.weight.mul_(0.1)
        self.config = config

    def set_normalisation(self, stats: NormStats) -> None:
        self.feature_mean.copy_(torch.from_numpy(stats.mean))
        self.feature_std.copy_(torch.from_numpy(stats.std))

    def set_calibration(self, slope: float, intercept: float) -> None:
        self.calibration.copy_(torch.tensor([slope, intercept]))

    def set_horizon(self, days: float) -> None:
        self.horizon.fill_(float(days))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.feature_mean) / self.feature_std
        z = torch.where(torch.isnan(z), torch.zeros_like(z), z)
        return torch.clamp(z, -INPUT_CLIP, INPUT_CLIP)

    def process(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(alive logit [n, 1], log visit rate at each quadrature node [n, J], log dropout rate [n, 1])."""
        z = self.normalise(x)
        out = self.head(self.body(z)) + self.skip(z)
        spread = torch.clamp(functional.softplus(out[:, 3:4]) + SPREAD_FLOOR, max=SPREAD_CEILING)
        log_mean = torch.clamp(out[:, 1:2] + float(np.log(RATE_PRIOR)), *LOG_RATE_BOUNDS)
        log_rate = torch.clamp(log_mean + spread * self.nodes - spread**2 / 2, LOG_RATE_BOUNDS[0] - 10, LOG_RATE_BOUNDS[1])
        log_dropout = torch.clamp(out[:, 2:3] + float(np.log(DROPOUT_PRIOR)), *LOG_DROPOUT_BOUNDS)
        alive_logit = torch.clamp(out[:, 0:1] + 1.0, -ALIVE_LOGIT_BOUND, ALIVE_LOGIT_BOUND)
        return alive_logit, log_rate, log_dropout

    def log_likelihood(self, x: torch.Tensor, visits: torch.Tensor, last_visit: torch.Tensor,
                       window: torch.Tensor) -> torch.Tensor:
        """log P(what each customer did in the window after their cutoff), [n].

        `visits` visit days in a window of `window` days, the last at `last_visit`
        days after the cutoff (0 when there was none). An alive customer visits at
        rate λ and drops out at rate μ (Pareto/NBD's individual likelihood); a
        customer gone for good makes no visit.
        """
        alive_logit, log_rate, log_dropout = self.process(x)
        rate, dropout = torch.exp(log_rate), torch.exp(log_dropout)
        total = rate + dropout
        log_total = torch.log(total)
        count, last, span = visits.unsqueeze(1).to(x.dtype), last_visit.unsqueeze(1), window.unsqueeze(1)
        stayed = (count + 1) * log_rate - log_total - total * span
        silent = torch.clamp(total * (span - last), min=1e-9)
        left = count * log_rate + log_dropout - log_total - total * last + torch.log(-torch.expm1(-silent))
        alive = torch.logsumexp(torch.log(self.node_weights) + torch.logaddexp(stayed, left), dim=1)
        gone = torch.where(visits == 0, functional.logsigmoid(-alive_logit[:, 0]), torch.full_like(alive, -1e30))
        return torch.logaddexp(gone, functional.logsigmoid(alive_logit[:, 0]) + alive)

    def curves(self, x: torch.Tensor, days: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """At each of `days` [m]: (P(no visit), P(lost), expected visits), each [n, m]."""
        alive_logit, log_rate, log_dropout = self.process(x)
        alive = torch.sigmoid(alive_logit)  # [n, 1]
        rate = torch.exp(log_rate).unsqueeze(2)  # [n, J, 1]
        dropout = torch.exp(log_dropout).unsqueeze(2)  # [n, 1, 1]
        t = days.reshape(1, 1, -1)
        weights = self.node_weights.reshape(1, -1, 1)
        total = rate + dropout
        silent_if_alive = (weights * (dropout / total + rate / total * torch.exp(-total * t))).sum(1)
        no_visit = (1 - alive) + alive * silent_if_alive
        gone_by = (1 - alive) + alive * (1 - torch.exp(-dropout[:, :, 0] * days.reshape(1, -1)))
        visits = alive * (weights * rate).sum(1) * -torch.expm1(-dropout[:, :, 0] * days.reshape(1, -1)) / dropout[:, :, 0]
        return no_visit, gone_by, visits

    def churn_logit(self, x: torch.Tensor, days: float | None = None) -> torch.Tensor:
        """Uncalibrated logit of P(no visit in the next `days` days (default: the horizon)), [n]."""
        at = self.horizon.reshape(1) if days is None else torch.tensor([float(days)])
        no_visit, _, _ = self.curves(x, at)
        p = torch.clamp(no_visit[:, 0], 1e-6, 1 - 1e-6)
        return torch.log(p) - torch.log1p(-p)

    def survival(self, x: torch.Tensor) -> torch.Tensor:
        """P(no visit in the next t days) at the survival horizons, [n, len(SURVIVAL_HORIZONS)]."""
        return self.curves(x, self.survival_horizons)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Calibrated P(no visit in the next `horizon` days), [n]."""
        return torch.sigmoid(self.calibration[0] * self.churn_logit(x) + self.calibration[1])

    def head_parameters(self) -> list[nn.Parameter]:
        """The last layers, which a store may fine-tune on its own data."""
        return [*self.head.parameters(), *self.skip.parameters()]


def window_nll(model: ChurnNet, x: torch.Tensor, visits: torch.Tensor, last_visit: torch.Tensor,
               window: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of what customers did after their cutoffs (the training loss)."""
    return -model.log_likelihood(x, visits, last_visit, window).mean()
