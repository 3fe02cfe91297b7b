"""Ranking and calibration metrics for churn scores, in plain numpy.

Both sides need them (a store reports its evaluation to the federation, the
server backtests), so they live here rather than behind a heavy dependency.
"""

from __future__ import annotations

import numpy as np


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(values)]])
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return ranks


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random churner scores above a random stayer (ties count half)."""
    labels = np.asarray(labels, dtype=bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pr_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision: the mean of precision at each churner's rank."""
    labels = np.asarray(labels, dtype=bool)
    if labels.sum() == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    hits = labels[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def brier(labels: np.ndarray, probabilities: np.ndarray) -> float:
    return float(np.mean((np.asarray(probabilities, dtype=np.float64) - np.asarray(labels, dtype=np.float64)) ** 2))


def precision_at(labels: np.ndarray, scores: np.ndarray, share: float = 0.1) -> float:
    """Churn rate among the top `share` of customers by score."""
    labels = np.asarray(labels, dtype=np.float64)
    k = max(1, int(round(len(labels) * share)))
    top = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")[:k]
    return float(labels[top].mean())


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def summary(labels: np.ndarray, scores: np.ndarray, probabilities: np.ndarray | None = None) -> dict[str, float]:
    """The backtest's headline numbers; Brier only where scores are probabilities."""
    labels = np.asarray(labels, dtype=np.float64)
    churn_rate = float(labels.mean()) if len(labels) else float("nan")
    top = precision_at(labels, scores, 0.1) if len(labels) else float("nan")
    result = {
        "auc": roc_auc(labels, scores),
        "pr_auc": pr_auc(labels, scores),
        "precision_at_10pct": top,
        "lift_at_10pct": top / churn_rate if churn_rate else float("nan"),
        "churn_rate": churn_rate,
        "n_customers": int(len(labels)),
    }
    if probabilities is not None:
        result["brier"] = brier(labels, probabilities)
    return result
