"""Classical churn baselines, fitted the standard way and scored on exactly the same customers as the model.

- recency: rank by days since the last visit (what most retailers do first);
- RFM logistic regression: log recency, log frequency, log monetary, fitted on
  labelled cutoffs that end by as-of (the longest horizon the history allows);
- BG/NBD and Pareto/NBD (models/btyd.py): fitted at as-of on every customer's
  whole history, no labels needed, as their authors fit them; the churn score
  is each model's probability of no purchase in the horizon.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .btyd import Summaries, fit_btyd
from .features import visits_before
from .labels import LabelledSet
from .schema import FEATURE_INDEX
from .store_data import StoreData

RFM_COLUMNS = ("recency_log", "visits_365_rate", "spend_365_rate")
BASELINES = ("recency", "rfm_logistic", "bg_nbd", "pareto_nbd")
Scorer = Callable[[LabelledSet], np.ndarray]


def recency_scores(data: LabelledSet) -> np.ndarray:
    return data.facts["recency_days"].astype(np.float64)


class RfmLogistic:
    """Logistic regression on standardised log-RFM features."""

    def __init__(self, weights: np.ndarray, mean: np.ndarray, std: np.ndarray):
        self.weights, self.mean, self.std = weights, mean, std

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


def history_summaries(data: StoreData, as_of_day: int) -> Summaries:
    """(x, t_x, T) of every customer with a visit before as-of, the last observed day being as-of − 1."""
    visits = visits_before(data, as_of_day)
    n = data.n_customers
    count = np.bincount(visits.customer, minlength=n)
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    np.minimum.at(first, visits.customer, visits.day)
    np.maximum.at(last, visits.customer, visits.day)
    seen = count > 0
    return Summaries(
        (count[seen] - 1).astype(np.float64),
        (last[seen] - first[seen]).astype(np.float64),
        (as_of_day - 1 - first[seen]).astype(np.float64),
    )


def summaries_of(data: LabelledSet) -> Summaries:
    """The same summaries from a labelled set's facts (the customers it scores)."""
    tenure = data.facts["tenure_days"].astype(np.float64)
    return Summaries(
        np.maximum(data.facts["visit_days_total"] - 1, 0).astype(np.float64),
        np.maximum(tenure - data.facts["recency_days"], 0.0),
        np.maximum(tenure - 1, 0.0),
    )


def btyd_scorer(kind: str, histories: Sequence[StoreData], as_of_day: int, horizon_days: int) -> Scorer:
    """A BTYD model fitted on every customer of `histories` at as-of; scores P(no purchase in the horizon)."""
    pooled = [history_summaries(h, as_of_day) for h in histories]
    model = fit_btyd(kind, Summaries(*(np.concatenate([getattr(s, f) for s in pooled]) for f in ("x", "t_x", "T"))))
    return lambda data: model.p_no_purchase(summaries_of(data), horizon_days)


def fit_baselines(train: LabelledSet, histories: Sequence[StoreData], as_of_day: int,
                  horizon_days: int) -> dict[str, Scorer]:
    """Every baseline, as name → scoring function."""
    return {
        "recency": recency_scores,
        "rfm_logistic": RfmLogistic.fit(train),
        "bg_nbd": btyd_scorer("bg_nbd", histories, as_of_day, horizon_days),
        "pareto_nbd": btyd_scorer("pareto_nbd", histories, as_of_day, horizon_days),
    }
