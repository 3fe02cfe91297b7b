"""The released graph: same outputs as torch, normalisation inside, refused when tampered."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from edge_agent.onnx_model import OnnxChurnModel
from models.export import CURVE_NAMES, ModelFileError, read_manifest, write_model_dir
from models.store_data import load_store_data
from models.survival import SurvivalSet, survival_set
from models.training import TorchChurnModel, TrainingConfig, calibration_rows, fit, predict
from tests.models.helpers import day_number


@pytest.fixture(scope="module")
def trained(chain_dbs: list[Path]):  # type: ignore[no-untyped-def]
    data = SurvivalSet.concat([survival_set(load_store_data(p), day_number("2025-09-30")) for p in chain_dbs])
    return fit(data, 90, config=TrainingConfig(epochs=8)), data


def test_onnx_matches_torch_to_1e5_including_missing_values(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model, data = trained
    write_model_dir(model.model, tmp_path / "m", version="t1", horizon_days=90, metrics=model.metrics)
    onnx_model = OnnxChurnModel(tmp_path / "m")
    values = data.values[:2000].copy()
    values[::7, 3] = np.nan  # unavailable values take the same path in both
    values[::11, 0] = 1e6  # far outside the training range: clipped in both
    np.testing.assert_allclose(onnx_model.predict(values), predict(model.model, values), atol=1e-5, rtol=0)
    graph = onnx_model.session.run(list(CURVE_NAMES), {"features": values})
    with torch.no_grad():
        curves = model.model.curves(torch.from_numpy(values), model.model.survival_horizons)
    for name, from_graph, from_torch in zip(CURVE_NAMES, graph, curves):
        np.testing.assert_allclose(from_graph, from_torch.numpy(), atol=1e-4, rtol=1e-4, err_msg=name)
    # between the graph's horizons the box interpolates; at a horizon it reads the column itself
    at_60 = list(onnx_model.curve_days).index(60)
    np.testing.assert_allclose(onnx_model.expected_visits(values, 60), graph[2][:, at_60], rtol=1e-6)
    np.testing.assert_allclose(onnx_model.expected_visits(values, 60),
                               TorchChurnModel(model.model).expected_visits(values, 60), atol=1e-4, rtol=1e-4)


def test_the_graph_normalises_raw_features_itself(trained) -> None:  # type: ignore[no-untyped-def]
    model, data = trained
    net = model.model
    assert not torch.allclose(net.feature_mean, torch.zeros_like(net.feature_mean))
    raw = torch.from_numpy(data.values[:5])
    manual = (raw - net.feature_mean) / net.feature_std
    assert torch.allclose(net.normalise(raw), torch.nan_to_num(manual).clamp(-5, 5))


def test_calibrated_probabilities_match_the_churn_rate_of_the_newest_whole_horizons(trained) -> None:  # type: ignore[no-untyped-def]
    model, data = trained
    mask, labels = calibration_rows(data, 90)
    p = predict(model.model, data.values[mask])
    assert p.mean() == pytest.approx(labels.mean(), abs=0.03)
    assert model.metrics["auc"] > 0.8


def test_manifest_records_schema_hash_and_metrics(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    sixty = copy.deepcopy(model.model)
    sixty.set_horizon(60)
    manifest = write_model_dir(sixty, tmp_path / "m", version="t2", horizon_days=60, metrics=model.metrics)
    assert read_manifest(tmp_path / "m") == manifest
    assert manifest["horizon_days"] == 60 and manifest["metrics"]["auc"] == model.metrics["auc"]
    assert len(manifest["sha256"]) == 64 and manifest["feature_schema_version"] == "churn-features/3"
    assert manifest["curve_outputs"] == list(CURVE_NAMES) and 60 in manifest["survival_horizons"]
    with pytest.raises(ValueError, match="answers for 90 days"):
        write_model_dir(model.model, tmp_path / "wrong", version="t2", horizon_days=60, metrics={})


def test_tampered_or_foreign_models_are_refused(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model, _ = trained
    write_model_dir(model.model, tmp_path / "good", version="t3", horizon_days=90, metrics={})
    tampered = tmp_path / "tampered"
    shutil.copytree(tmp_path / "good", tampered)
    graph = tampered / "model.onnx"
    graph.write_bytes(graph.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelFileError, match="sha256 does not match"):
        OnnxChurnModel(tampered)
    foreign = tmp_path / "foreign"
    shutil.copytree(tmp_path / "good", foreign)
    manifest = json.loads((foreign / "manifest.json").read_text())
    manifest["feature_schema_version"] = "churn-features/0"
    (foreign / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="expects features 'churn-features/0'"):
        OnnxChurnModel(foreign)
    with pytest.raises(ModelFileError, match="no manifest.json"):
        OnnxChurnModel(tmp_path)
