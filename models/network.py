"""The churn network: normalisation, an MLP for tabular features, and calibration, in one module.

Normalisation and calibration are buffers of the module, so the exported ONNX
graph takes raw features (NaN for unavailable) and returns calibrated
probabilities: a store box needs nothing but the graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

INPUT_CLIP = 5.0  # normalised inputs beyond ±5 sd are outliers on another store's scale


@dataclass(frozen=True)
class NetworkConfig:
    """Small on purpose: a store has thousands of customers, not millions; in backtests
    (32, 16) with dropout 0.2 matched or beat (64, 32) and (128, 64), and every MLP
    beat the linear model by 0.007-0.009 AUC on the recently active."""

    hidden: tuple[int, ...] = (32, 16)
    dropout: float = 0.2


@dataclass
class NormStats:
    """Per-feature mean and standard deviation, ignoring NaN.

    Built from moments (count, sum, sum of squares) so that a federation can
    add up the moments of its stores without any store revealing a value.
    """

    mean: np.ndarray
    std: np.ndarray

    @staticmethod
    def moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        finite = np.isfinite(values)
        x = np.where(finite, values, 0.0).astype(np.float64)
        return finite.sum(axis=0).astype(np.float64), x.sum(axis=0), (x**2).sum(axis=0)

    @classmethod
    def from_moments(cls, count: np.ndarray, total: np.ndarray, squares: np.ndarray) -> NormStats:
        safe = np.maximum(count, 1.0)
        mean = np.where(count > 0, total / safe, 0.0)
        var = np.where(count > 1, squares / safe - mean**2, 1.0)
        std = np.sqrt(np.maximum(var, 0.0))
        return cls(mean.astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32))

    @classmethod
    def fit(cls, values: np.ndarray) -> NormStats:
        return cls.from_moments(*cls.moments(values))


class ChurnNet(nn.Module):
    """Raw features → calibrated churn probability."""

    def __init__(self, n_features: int, config: NetworkConfig = NetworkConfig()):
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.register_buffer("calibration", torch.tensor([1.0, 0.0]))  # slope, intercept on the logit
        layers: list[nn.Module] = []
        width = n_features
        for size in config.hidden:
            layers += [nn.Linear(width, size), nn.SiLU(), nn.Dropout(config.dropout)]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 1)
        self.skip = nn.Linear(n_features, 1, bias=False)  # a linear path: robust where data is thin
        self.config = config

    def set_normalisation(self, stats: NormStats) -> None:
        self.feature_mean.copy_(torch.from_numpy(stats.mean))
        self.feature_std.copy_(torch.from_numpy(stats.std))

    def set_calibration(self, slope: float, intercept: float) -> None:
        self.calibration.copy_(torch.tensor([slope, intercept]))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.feature_mean) / self.feature_std
        z = torch.where(torch.isnan(z), torch.zeros_like(z), z)
        return torch.clamp(z, -INPUT_CLIP, INPUT_CLIP)

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        """Uncalibrated logit (what training optimises)."""
        z = self.normalise(x)
        return (self.head(self.body(z)) + self.skip(z)).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.calibration[0] * self.logit(x) + self.calibration[1])

    def head_parameters(self) -> list[nn.Parameter]:
        """The last layers, which a store may fine-tune on its own data."""
        return [*self.head.parameters(), *self.skip.parameters()]
