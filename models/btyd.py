"""Buy-till-you-die models fitted the standard way: BG/NBD and Pareto/NBD.

Both describe a customer who buys at a Poisson rate while "alive" and drops out
unobserved; the rates vary across customers by gamma distributions whose four
population parameters are fitted by maximum likelihood on every customer's
summary at as-of, no labels needed:

- ``x``: repeat purchases (visit days after the first),
- ``t_x``: days from the first to the last visit,
- ``T``: days from the first visit to the end of the observation.

The probability of no purchase in the next ``t`` days is a ratio of two
likelihoods: the history extended by ``t`` silent days over the history as
observed, ``L(x, t_x, T + t) / L(x, t_x, T)``. It is exact for both models
and needs no other formula. Checked against the `lifetimes` package and its
published CDNOW parameters in tests/models/test_btyd.py.

References: Fader, Hardie & Lee (2005), "Counting your customers the easy way"
(BG/NBD); Schmittlein, Morrison & Colombo (1987) and Fader & Hardie (2005),
"A note on deriving the Pareto/NBD model and related expressions".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1


@dataclass(frozen=True)
class Summaries:
    """The BTYD summaries of a set of customers, in days."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray

    def extended(self, days: float) -> Summaries:
        return Summaries(self.x, self.t_x, self.T + days)


Parts = tuple[np.ndarray, np.ndarray, np.ndarray]


def _bg_nbd_parts(params: np.ndarray, s: Summaries) -> Parts:
    """(log of the common factor, log of "still alive", log of "dropped out after the last visit")."""
    r, alpha, a, b = params
    x, t_x, big_t = s.x, s.t_x, s.T
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    silent = -(r + x) * np.log(alpha + big_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        died = np.log(a) - np.log(np.maximum(b + x - 1, 1e-12)) - (r + x) * np.log(alpha + t_x)
    return common, silent, np.where(x > 0, died, -np.inf)


def _pareto_log_a0(params: np.ndarray, s: Summaries) -> np.ndarray:
    """log A0 of Fader & Hardie's note (equations 19 and 20), computed stably."""
    r, alpha, s_, beta = params
    x, t_x, big_t = s.x, s.t_x, s.T
    if alpha >= beta:
        low, high, second = beta, alpha, s_ + 1.0
    else:
        low, high, second = alpha, beta, r + x
    rsx = r + s_ + x
    gap = high - low
    with np.errstate(divide="ignore", invalid="ignore"):
        at_last = np.log(hyp2f1(rsx, second, rsx + 1.0, gap / (high + t_x))) - rsx * np.log(high + t_x)
        at_end = np.log(hyp2f1(rsx, second, rsx + 1.0, gap / (high + big_t))) - rsx * np.log(high + big_t)
        # log(exp(at_last) - exp(at_end)); at_last >= at_end since t_x <= T
        return at_last + np.log1p(-np.exp(np.minimum(at_end - at_last, 0.0)))


def _pareto_nbd_parts(params: np.ndarray, s: Summaries) -> Parts:
    r, alpha, s_, beta = params
    x, big_t = s.x, s.T
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s_ * np.log(beta)
    silent = -(r + x) * np.log(alpha + big_t) - s_ * np.log(beta + big_t)
    log_a0 = _pareto_log_a0(params, s)
    died = np.log(s_) - np.log(r + s_ + x) + log_a0
    return common, silent, np.where(np.isfinite(died), died, -np.inf)


_PARTS = {"bg_nbd": _bg_nbd_parts, "pareto_nbd": _pareto_nbd_parts}


def _log_likelihood(kind: str, params: np.ndarray, s: Summaries) -> np.ndarray:
    common, silent, died = _PARTS[kind](params, s)
    return common + np.logaddexp(silent, died)
# Starting points in units of the typical age (alpha and beta are times).
_STARTS = {"bg_nbd": (0.5, 0.3, 1.0, 2.0), "pareto_nbd": (0.5, 0.3, 0.5, 0.3)}


@dataclass(frozen=True)
class BtydModel:
    """A fitted BG/NBD or Pareto/NBD: (r, alpha, a, b) or (r, alpha, s, beta), time in days."""

    kind: str
    params: tuple[float, float, float, float]

    def log_likelihood(self, s: Summaries) -> np.ndarray:
        return _log_likelihood(self.kind, np.asarray(self.params), s)

    def p_no_purchase(self, s: Summaries, days: float) -> np.ndarray:
        """P(no purchase in the next `days` days | each customer's history)."""
        ratio = np.exp(self.log_likelihood(s.extended(days)) - self.log_likelihood(s))
        return np.clip(np.nan_to_num(ratio, nan=1.0), 0.0, 1.0)

    def p_alive(self, s: Summaries) -> np.ndarray:
        """P(still alive at the end of the observation | each customer's history)."""
        _, silent, died = _PARTS[self.kind](np.asarray(self.params), s)
        return np.exp(silent - np.logaddexp(silent, died))


def fit_btyd(kind: str, s: Summaries, max_customers: int = 200_000, seed: int = 0) -> BtydModel:
    """Maximum likelihood on every customer's summary (a random subset above `max_customers`)."""
    if kind not in _PARTS:
        raise ValueError(f"unknown BTYD model {kind!r}")
    if len(s.x) > max_customers:
        pick = np.random.default_rng(seed).choice(len(s.x), max_customers, replace=False)
        s = Summaries(s.x[pick], s.t_x[pick], s.T[pick])
    scale = max(1.0, float(np.median(s.T)))  # optimise in units of the typical age: better conditioned

    units = np.array([1.0, scale, 1.0, scale if kind == "pareto_nbd" else 1.0])

    def objective(log_params: np.ndarray) -> float:
        value = -float(np.mean(_log_likelihood(kind, np.exp(log_params) * units, s)))
        return value if np.isfinite(value) else 1e12

    start = np.log(np.array(_STARTS[kind]))
    result = minimize(objective, start, method="Nelder-Mead", options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-10})
    result = minimize(objective, result.x, method="L-BFGS-B")
    params = np.exp(result.x) * units
    return BtydModel(kind, tuple(float(v) for v in params))  # type: ignore[arg-type]
