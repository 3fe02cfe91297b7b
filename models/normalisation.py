"""Per-feature normalisation from moments: numpy only, so a store can answer the federation's
moments query without loading torch (models/network.py keeps the statistics as buffers)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
