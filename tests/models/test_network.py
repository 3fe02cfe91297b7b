"""The network's purchase-and-dropout process: its likelihood, its horizon-free answers, and that training recovers it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from models.network import DROPOUT_PRIOR, RATE_PRIOR, SPREAD_FLOOR, ChurnNet, NormStats
from models.survival import SurvivalSet
from models.training import TrainingConfig, fit, predict


def fixed_process(alive: float, rate: float, dropout: float, spread: float = SPREAD_FLOOR) -> ChurnNet:
    """A network that answers the same (π, λ, μ, σ) for every customer: weights zero, biases chosen."""
    net = ChurnNet(2)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.zero_()
        bias = net.head.bias
        bias[0] = math.log(alive / (1 - alive)) - 1.0
        bias[1] = math.log(rate / RATE_PRIOR)
        bias[2] = math.log(dropout / DROPOUT_PRIOR)
        bias[3] = math.log(math.expm1(spread - SPREAD_FLOOR)) if spread > SPREAD_FLOOR + 1e-6 else -30.0
    return net.eval()


def individual_likelihood(rate: float, dropout: float, visits: int, last: float, window: float) -> float:
    """Pareto/NBD's individual-level likelihood, written out."""
    total = rate + dropout
    return (rate ** (visits + 1) / total * math.exp(-total * window)
            + rate**visits * dropout / total * (math.exp(-total * last) - math.exp(-total * window)))


def test_likelihood_is_pareto_nbd_mixed_over_a_lognormal_rate_and_a_dropped_out_share() -> None:
    alive, rate, dropout, spread = 0.7, 0.08, 0.004, 0.6
    net = fixed_process(alive, rate, dropout, spread)
    cases = [(0, 0.0, 60.0), (3, 40.5, 60.0), (1, 2.5, 10.0), (12, 150.5, 200.0), (0, 0.0, 300.0)]
    x = torch.zeros(len(cases), 2)
    with torch.no_grad():
        got = net.log_likelihood(x, torch.tensor([c[0] for c in cases]), torch.tensor([c[1] for c in cases]),
                                 torch.tensor([c[2] for c in cases])).numpy()
    for (visits, last, window), value in zip(cases, got):
        def integrand(z: float) -> float:
            lam = rate * math.exp(spread * z - spread**2 / 2)
            return individual_likelihood(lam, dropout, visits, last, window) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

        mixed, _ = integrate.quad(integrand, -10, 10, limit=200)
        expected = alive * mixed + (1 - alive) * (visits == 0)
        assert value == pytest.approx(math.log(expected), rel=2e-3, abs=2e-3), (visits, last, window)


def simulate(alive: float, rate: float, dropout: float, spread: float, days: float, n: int, seed: int = 0
             ) -> np.ndarray:
    """Visits in the next `days` of n customers of the process (Monte Carlo)."""
    rng = np.random.default_rng(seed)
    is_alive = rng.random(n) < alive
    lam = rate * np.exp(spread * rng.standard_normal(n) - spread**2 / 2)
    life = np.where(is_alive, rng.exponential(1 / dropout, n), 0.0)
    return rng.poisson(lam * np.minimum(life, days))


def test_horizon_free_answers_agree_with_the_process_they_describe() -> None:
    alive, rate, dropout, spread = 0.6, 0.05, 0.01, 0.5
    net = fixed_process(alive, rate, dropout, spread)
    days = torch.tensor([0.0, 30.0, 90.0, 365.0, 5000.0])
    with torch.no_grad():
        no_visit, lost, expected = (c[0].numpy() for c in net.curves(torch.zeros(1, 2), days))
    assert no_visit[0] == pytest.approx(1.0, abs=1e-6) and np.all(np.diff(no_visit) < 0)
    assert lost[0] == pytest.approx(1 - alive, abs=1e-4) and np.all(np.diff(lost) > 0)
    assert lost[-1] == pytest.approx(1.0, abs=1e-3)
    assert expected[0] == pytest.approx(0.0, abs=1e-6) and np.all(np.diff(expected) > 0)
    for t, p_none, mean_visits in zip((30, 90, 365), no_visit[1:4], expected[1:4]):
        visits = simulate(alive, rate, dropout, spread, t, 400_000, seed=t)
        assert p_none == pytest.approx(np.mean(visits == 0), abs=0.005), t
        assert mean_visits == pytest.approx(visits.mean(), rel=0.02), t


def windows(feature: np.ndarray, alive: float, rates: np.ndarray, dropout: float, window: float,
            seed: int) -> SurvivalSet:
    """Rows of customers observed for `window` days after one cutoff: visit days, the last, the first."""
    rng = np.random.default_rng(seed)
    n = len(feature)
    is_alive = rng.random(n) < alive
    life = np.where(is_alive, rng.exponential(1 / dropout, n), 0.0)
    events, counts, lasts = np.zeros(n, np.int32), np.zeros(n, np.int32), np.zeros(n, np.float32)
    for i in range(n):
        times, t = [], 0.0
        while True:
            t += rng.exponential(1 / rates[i])
            if t >= min(life[i], window):
                break
            times.append(t)
        days = sorted({int(v) for v in times})
        counts[i] = len(days)
        if days:
            events[i], lasts[i] = days[0] + 1, days[-1] + 0.5
    return SurvivalSet(
        values=np.stack([feature, rng.standard_normal(n)], axis=1).astype(np.float32), event_days=events,
        window_days=np.full(n, int(window), np.int32), window_visits=counts, last_visit=lasts,
        cutoff=np.zeros(n, np.int32), customer=np.arange(n, dtype=np.int64), store=np.full(n, "s", dtype=object),
    )


def test_training_on_the_windows_recovers_who_comes_back() -> None:
    """Two kinds of customers (feature 0: a visit a week, 1: a visit a month); the trained network's
    P(no visit in 90 days) matches what each kind really does, beyond the windows it was trained on."""
    rng = np.random.default_rng(3)
    kind = (rng.random(6000) < 0.5).astype(np.float32)
    rates = np.where(kind > 0, 1 / 30, 1 / 7)
    parts = [windows(kind[i::3], 0.8, rates[i::3], 1 / 200, w, seed=i) for i, w in enumerate((40, 60, 80))]
    rows = SurvivalSet.concat(parts)
    trained = fit(rows, 90, config=TrainingConfig(epochs=40, patience=6, learning_rate=5e-3)).model
    probe = np.array([[0.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    p = predict(trained, probe)
    for k, rate in ((0, 1 / 7), (1, 1 / 30)):
        visits = simulate(0.8, rate, 1 / 200, 1e-6, 90, 200_000, seed=10 + k)
        assert p[k] == pytest.approx(np.mean(visits == 0), abs=0.04), k
    assert p[1] > p[0] + 0.05  # the truth: about 0.33 against 0.23


def test_normalisation_from_moments_ignores_missing_values() -> None:
    values = np.array([[1.0, np.nan], [3.0, 2.0], [5.0, np.nan]])
    stats = NormStats.fit(values)
    assert stats.mean.tolist() == pytest.approx([3.0, 2.0])
    assert stats.std[1] == 1.0  # one known value: no spread to speak of
