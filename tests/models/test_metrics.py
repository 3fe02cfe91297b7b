"""Metrics checked against their definitions on small cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.metrics import brier, pr_auc, precision_at, roc_auc, summary


def brute_force_auc(labels: list[int], scores: list[float]) -> float:
    pairs = [(p, n) for p, n in itertools.product(
        [s for s, y in zip(scores, labels) if y], [s for s, y in zip(scores, labels) if not y])]
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=2, max_size=30))
def test_auc_matches_the_pairwise_definition_with_ties(rows: list[tuple[bool, int]]) -> None:
    labels = [int(y) for y, _ in rows]
    scores = [float(s) for _, s in rows]
    if 0 < sum(labels) < len(labels):
        assert roc_auc(np.array(labels), np.array(scores)) == pytest.approx(brute_force_auc(labels, scores))
    else:
        assert np.isnan(roc_auc(np.array(labels), np.array(scores)))


def test_average_precision_and_precision_at_k() -> None:
    labels = np.array([1, 0, 1, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    assert pr_auc(labels, scores) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert precision_at(labels, scores, 0.4) == pytest.approx(0.5)  # top 2: one churner


def test_brier_and_summary() -> None:
    labels = np.array([1, 0])
    assert brier(labels, np.array([1.0, 0.0])) == 0.0
    assert brier(labels, np.array([0.0, 1.0])) == 1.0
    result = summary(np.array([1, 0, 0, 0]), np.array([0.9, 0.1, 0.2, 0.3]), np.array([0.9, 0.1, 0.2, 0.3]))
    assert result["auc"] == 1.0 and result["churn_rate"] == 0.25 and result["n_customers"] == 4
    assert result["lift_at_10pct"] == pytest.approx(4.0)
