"""The numeric side of federation: what a store computes and what the server combines.

No Flower here (this is the part both the Flower apps and the in-process
federation share). A store never sends a row: it sends trainable weights,
per-feature moments (count, sum, sum of squares), and histograms of its
held-out predictions, from which the server fits the calibration and computes
the chain-wide AUC exactly up to the binning.
"""

from __future__ import annotations

import numpy as np
import torch

from .network import ChurnNet

LOGIT_EDGES = np.linspace(-12.0, 12.0, 241)  # 0.1-wide logit bins, open-ended at both sides
# Rounds and releases are judged by the pooled held-out AUC at min(horizon, CHECK_DAYS): a horizon the
# stores' histories can show even when the release horizon is longer than any window seen.
CHECK_DAYS = 90


def trainable_arrays(model: ChurnNet) -> dict[str, np.ndarray]:
    """The parameters that federated averaging combines (buffers stay out: normalisation
    and calibration are set once for the federation, and DP noise must never touch them)."""
    return {name: p.detach().cpu().numpy().copy() for name, p in model.named_parameters()}


def load_trainable(model: ChurnNet, arrays: dict[str, np.ndarray]) -> None:
    expected = dict(model.named_parameters())
    if set(arrays) != set(expected):
        raise ValueError(f"weights for {sorted(arrays)} do not fit the network {sorted(expected)}")
    with torch.no_grad():
        for name, parameter in expected.items():
            parameter.copy_(torch.from_numpy(np.asarray(arrays[name], dtype=np.float32)))


def logit_histogram(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(churner counts, stayer counts) per logit bin."""
    bins = np.clip(np.searchsorted(LOGIT_EDGES, logits) - 1, 0, len(LOGIT_EDGES) - 2)
    positive = np.bincount(bins[labels > 0.5], minlength=len(LOGIT_EDGES) - 1)
    negative = np.bincount(bins[labels <= 0.5], minlength=len(LOGIT_EDGES) - 1)
    return positive.astype(np.float64), negative.astype(np.float64)


def auc_from_histogram(positive: np.ndarray, negative: np.ndarray) -> float:
    """AUC of binned scores (pairs in the same bin count half)."""
    total_pos, total_neg = positive.sum(), negative.sum()
    if total_pos == 0 or total_neg == 0:
        return float("nan")
    below = np.concatenate([[0.0], np.cumsum(negative)[:-1]])
    return float((positive * (below + 0.5 * negative)).sum() / (total_pos * total_neg))


def platt_from_histogram(positive: np.ndarray, negative: np.ndarray) -> tuple[float, float]:
    """Platt scaling fitted on bin centres weighted by the pooled counts."""
    centres = torch.tensor((LOGIT_EDGES[:-1] + LOGIT_EDGES[1:]) / 2, dtype=torch.float64)
    pos = torch.tensor(positive, dtype=torch.float64)
    neg = torch.tensor(negative, dtype=torch.float64)
    if float(pos.sum()) == 0 or float(neg.sum()) == 0:
        return 1.0, 0.0
    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([params], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        z = params[0] * centres + params[1]
        loss = (pos * torch.nn.functional.softplus(-z) + neg * torch.nn.functional.softplus(z)).sum()
        loss = loss / (pos.sum() + neg.sum())
        loss.backward()
        return loss

    optimizer.step(closure)
    slope, intercept = (float(v) for v in params.detach())
    return (slope, intercept) if np.isfinite(slope) and slope > 0 else (1.0, 0.0)
