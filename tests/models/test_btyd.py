"""BG/NBD and Pareto/NBD against the `lifetimes` package on the published CDNOW summary."""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np
import pytest

from models.btyd import Summaries, fit_btyd


@pytest.fixture(scope="module")
def cdnow() -> Summaries:
    """The 2,357-customer CDNOW sample's calibration summaries (weeks), as lifetimes ships them."""
    path = resources.files("lifetimes") / "datasets" / "cdnow_customers_summary.csv"
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    x = np.array([float(r["frequency"]) for r in rows])
    return Summaries(x, np.array([float(r["recency"]) for r in rows]), np.array([float(r["T"]) for r in rows]))


@pytest.mark.parametrize(("kind", "reference"), [("bg_nbd", "BetaGeoFitter"), ("pareto_nbd", "ParetoNBDFitter")])
def test_fit_and_predictions_match_lifetimes(cdnow: Summaries, kind: str, reference: str) -> None:
    import pandas as pd
    from lifetimes import BetaGeoFitter, ParetoNBDFitter

    fitter = {"BetaGeoFitter": BetaGeoFitter, "ParetoNBDFitter": ParetoNBDFitter}[reference]()
    frequency, recency, age = (pd.Series(v) for v in (cdnow.x, cdnow.t_x, cdnow.T))
    fitter.fit(frequency, recency, age)
    ours = fit_btyd(kind, cdnow)
    np.testing.assert_allclose(ours.params, list(fitter.params_.values), rtol=2e-3)
    alive = np.asarray(fitter.conditional_probability_alive(frequency, recency, age))
    np.testing.assert_allclose(ours.p_alive(cdnow), alive, atol=1e-4)
    if kind == "pareto_nbd":
        silent = np.asarray(fitter.conditional_probability_of_n_purchases_up_to_time(0, 39, frequency, recency, age))
    else:
        r, a = fitter.params_["r"], fitter.params_["alpha"]
        silent = (1 - alive) + alive * ((a + age) / (a + age + 39)) ** (r + frequency)
    np.testing.assert_allclose(ours.p_no_purchase(cdnow, 39), np.asarray(silent), atol=1e-4)


def test_published_cdnow_parameters(cdnow: Summaries) -> None:
    """Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426 (weeks)."""
    assert fit_btyd("bg_nbd", cdnow).params == pytest.approx((0.243, 4.414, 0.793, 2.426), rel=5e-3)


def test_no_purchase_is_likelier_the_longer_the_silence(cdnow: Summaries) -> None:
    model = fit_btyd("pareto_nbd", cdnow)
    silent = Summaries(np.array([3.0, 3.0]), np.array([30.0, 5.0]), np.array([38.0, 38.0]))
    recent, long_ago = model.p_no_purchase(silent, 39)
    assert long_ago > recent
