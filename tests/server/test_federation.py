"""The federation's protocol, run in-process over the real ServerApp and ClientApp code.

(Real SuperLink and SuperNode processes are exercised in tests/integration.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Message

from edge_agent.client_app import app as client_app
from edge_agent.federated_store import LocalSettings, StoreTrainer
from models.export import read_manifest
from models.network import NormStats
from models.schema import FEATURE_NAMES
from models.store_data import load_store_data
from models.survival import SurvivalSet, survival_set
from models.training import holdout_split
from server.federation import FederationError, FederationSettings
from server.federation.checkpoints import CheckpointStore
from server.federation.in_process import InProcessGrid
from server.federation.rounds import run_federation
from tests.builders import federation_settings

FEATURES, HISTOGRAM_BINS = len(FEATURE_NAMES), 240


class RecordingClient:
    """The real ClientApp, with every reply kept for inspection."""

    def __init__(self) -> None:
        self.replies: list[Message] = []

    def __call__(self, message: Message, context: Any) -> Message:
        reply = client_app(message, context)
        self.replies.append(reply)
        return reply


def test_federation_trains_calibrates_and_releases(chain_dbs: list[Path], tmp_path: Path) -> None:
    recorder = RecordingClient()
    outcome = run_federation(InProcessGrid(recorder, chain_dbs), federation_settings(tmp_path, num_server_rounds=3))
    assert [r["round"] for r in outcome.rounds] == [1, 2, 3]
    assert all(r["trained"] == ["store-01", "store-02", "store-03"] for r in outcome.rounds)
    assert all(r["evaluated"] == ["store-01", "store-02", "store-03"] for r in outcome.rounds)
    aucs = [r["metrics"]["auc"] for r in outcome.rounds]
    assert aucs[-1] > 0.85 and aucs[-1] >= aucs[0] - 0.01
    manifest = json.loads((outcome.release_dir / "manifest.json").read_text())
    assert manifest["training"]["mode"] == "federated" and manifest["metrics"]["auc"] > 0.85
    assert manifest["metrics"]["auc_last_round"] == aucs[-1]
    summary = json.loads((tmp_path / "federation.json").read_text())
    assert summary["release_dir"] == str(outcome.release_dir) and len(summary["rounds"]) == 3
    calibration = outcome.model.calibration.tolist()
    assert calibration != [1.0, 0.0], "a shared calibration was fitted"
    # One exchange per round, plus the normalisation before and the calibration after: no evaluation message.
    kinds = [reply.metadata.message_type for reply in recorder.replies]
    assert kinds == ["query.stats"] * 3 + ["train"] * 9 + ["query.calibrate"] * 3
    assert summary["timing"]["exchanges"] == 5
    for entry in summary["rounds"]:
        timing = entry["timing"]
        assert set(timing["train_seconds"]) == {"store-01", "store-02", "store-03"}
        assert timing["slowest_train_seconds"] == max(timing["train_seconds"].values())
        assert timing["overhead_seconds"] == pytest.approx(timing["round_wall_seconds"] - timing["slowest_train_seconds"])


def test_a_rounds_metrics_are_the_evaluation_of_that_rounds_weights(chain_dbs: list[Path], tmp_path: Path) -> None:
    """Round 1's evaluation comes back with round 2's training replies, measured before training: it is
    exactly what each store says of round 1's checkpointed weights."""
    chosen = federation_settings(tmp_path, num_server_rounds=2)
    outcome = run_federation(InProcessGrid(client_app, chain_dbs), chosen)
    folder = CheckpointStore(tmp_path, chosen.fingerprint)
    first = folder.latest()
    assert first is not None
    with np.load(folder.folder / "round-0001.npz") as archive:
        weights = {k: archive[k] for k in archive.files if not k.startswith("__")}
    for db in chain_dbs:
        trainer = StoreTrainer(db, LocalSettings(chosen.as_of_day, chosen.horizon_days))
        own = trainer.evaluate(weights, first.norm)
        assert outcome.rounds[0]["per_store_auc"][trainer.store_id] == pytest.approx(own["auc"], abs=1e-9)
    assert outcome.rounds[0]["metrics"]["auc"] != outcome.rounds[1]["metrics"]["auc"]


def test_no_row_leaves_a_store(chain_dbs: list[Path], tmp_path: Path) -> None:
    """Replies carry weights, moments and fixed-size histograms only, never a per-customer list."""
    recorder = RecordingClient()
    run_federation(InProcessGrid(recorder, chain_dbs), federation_settings(tmp_path))
    parameter_names = {name for name, _ in __import__("models.network", fromlist=["ChurnNet"]).ChurnNet(FEATURES).named_parameters()}
    for reply in recorder.replies:
        assert not reply.has_error()
        for record in reply.content.array_records.values():
            assert set(record.keys()) == parameter_names
        for record in reply.content.metric_records.values():
            for key, value in record.items():
                if isinstance(value, list):
                    assert len(value) in (FEATURES, HISTOGRAM_BINS), key
        for record in reply.content.config_records.values():
            assert set(record.keys()) == {"store-id"}


def test_shared_normalisation_equals_the_pooled_one(chain_dbs: list[Path], tmp_path: Path) -> None:
    outcome = run_federation(InProcessGrid(client_app, chain_dbs), federation_settings(tmp_path, num_server_rounds=1))
    day = federation_settings(tmp_path).as_of_day
    parts = []
    for db in chain_dbs:
        train, _ = holdout_split(survival_set(load_store_data(db), day))  # what each store trains on
        parts.append(train)
    pooled = NormStats.fit(SurvivalSet.concat(parts).values)
    np.testing.assert_allclose(outcome.model.feature_mean.numpy(), pooled.mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outcome.model.feature_std.numpy(), pooled.std, rtol=1e-4, atol=1e-5)


def test_an_offline_store_never_hangs_a_round(chain_dbs: list[Path], tmp_path: Path) -> None:
    """The minimum of 3 available stores is waited for boundedly (2 s), then the round goes on with the
    two that answer (a hang would end in pytest's timeout, not here)."""
    grid = InProcessGrid(client_app, chain_dbs)
    grid.offline.add(103)  # store-03's box went dark before the federation
    outcome = run_federation(grid, federation_settings(tmp_path, min_available_nodes=3, node_wait_seconds=2.0))
    assert [r["round"] for r in outcome.rounds] == [1, 2]
    assert all(r["trained"] == ["store-01", "store-02"] for r in outcome.rounds)


def test_too_few_stores_skip_the_round_and_nothing_is_released(chain_dbs: list[Path], tmp_path: Path) -> None:
    grid = InProcessGrid(client_app, chain_dbs)
    grid.fail(102)
    grid.fail(103)  # two stores answer training with errors
    with pytest.raises(FederationError, match="no round gathered enough stores"):
        run_federation(grid, federation_settings(tmp_path))
    checkpoints = CheckpointStore(tmp_path, federation_settings(tmp_path).fingerprint)
    history = checkpoints.latest().history  # type: ignore[union-attr]
    assert [r["skipped"] for r in history] == ["1 training replies, 2 needed"] * 2
    assert not (tmp_path / "release").exists()


def test_resume_after_the_last_checkpoint(chain_dbs: list[Path], tmp_path: Path) -> None:
    first = run_federation(InProcessGrid(client_app, chain_dbs), federation_settings(tmp_path, num_server_rounds=2))
    recorder = RecordingClient()
    second = run_federation(InProcessGrid(recorder, chain_dbs), federation_settings(tmp_path, num_server_rounds=3))
    assert (first.resumed_from, second.resumed_from) == (0, 2)
    assert [r["round"] for r in second.rounds] == [1, 2, 3]
    assert CheckpointStore(tmp_path, federation_settings(tmp_path).fingerprint).rounds() == [0, 1, 2, 3]
    kinds = [r.metadata.message_type for r in recorder.replies]
    assert "query.stats" not in kinds, "a resumed federation keeps its normalisation"
    assert kinds.count("train") == 3  # one round, three stores
    assert all(r["metrics"]["auc"] > 0.5 for r in second.rounds), "every round evaluated, the resumed one too"
    assert [r["metrics"] for r in second.rounds[:2]] == [r["metrics"] for r in first.rounds]


def test_fedprox_keeps_updates_closer_to_the_global_model(chain_dbs: list[Path], tmp_path: Path) -> None:
    def first_round_drift(mu: float, folder: Path) -> float:
        recorder = RecordingClient()
        overrides = {"strategy": "fedprox", "proximal_mu": mu} if mu else {}
        chosen = federation_settings(folder, num_server_rounds=1, local_epochs=3, **overrides)
        run_federation(InProcessGrid(recorder, chain_dbs), chosen)
        start = CheckpointStore(folder, chosen.fingerprint)
        initial = np.load(start.folder / "round-0000.npz")
        update = next(r for r in recorder.replies if r.metadata.message_type == "train").content["arrays"]
        return float(sum(np.sum((v - initial[k]) ** 2) for k, v in zip(update.keys(), update.to_numpy_ndarrays())))

    assert first_round_drift(5.0, tmp_path / "prox") < 0.8 * first_round_drift(0.0, tmp_path / "avg")


def test_differential_privacy_reports_a_growing_budget(chain_dbs: list[Path], tmp_path: Path) -> None:
    outcome = run_federation(
        InProcessGrid(client_app, chain_dbs),
        federation_settings(tmp_path, dp_enabled=True, dp_noise_multiplier=1.0, dp_clipping_norm=2.0, min_train_nodes=3,
                 min_available_nodes=3, num_server_rounds=2,
                 release_min_auc=0.0),  # two noisy rounds: this measures the budget, not the model
    )
    budgets = [r["privacy"]["epsilon"] for r in outcome.rounds]
    assert 0 < budgets[0] < budgets[1]
    assert outcome.privacy is not None and outcome.privacy["releases"] == 2 and outcome.privacy["delta"] == 1e-5
    assert outcome.manifest["training"]["privacy"]["epsilon"] == budgets[-1]


def personalised(chain_dbs: list[Path], folder: Path, epochs: int, rounds: int = 2) -> dict[str, dict[str, float]]:
    """A federation with personalisation; each store box keeps its models under folder/boxes/STORE."""
    grid = InProcessGrid(client_app, chain_dbs)
    for context in grid.contexts.values():
        context.node_config["models-dir"] = str(folder / "boxes" / Path(str(context.node_config["store-db"])).stem)
    outcome = run_federation(grid, federation_settings(folder / "state", num_server_rounds=rounds, personalise=True,
                                            personalise_epochs=epochs))
    assert not list((folder / "state").rglob("personal*")), "a personal model never reaches the central side"
    return outcome.personalisation


def test_without_fine_tuning_the_personal_model_is_the_global_one_and_is_not_kept(chain_dbs: list[Path],
                                                                                   tmp_path: Path) -> None:
    reported = personalised(chain_dbs, tmp_path, epochs=0, rounds=1)
    assert set(reported) == {"store-01", "store-02", "store-03"}
    for store, result in reported.items():
        assert 0.5 < result["auc-global"] <= 1 and result["auc-personal"] == result["auc-global"]
        assert result["helps"] == 0.0 and result["num-examples"] > 0
        assert not (tmp_path / "boxes" / store / "personal").exists()


def test_a_box_keeps_its_personal_model_exactly_when_it_beats_the_global_one(chain_dbs: list[Path],
                                                                             tmp_path: Path) -> None:
    reported = personalised(chain_dbs, tmp_path, epochs=3)
    assert set(reported) == {"store-01", "store-02", "store-03"}
    for store, result in reported.items():
        kept = tmp_path / "boxes" / store / "personal"
        assert kept.exists() == (result["auc-personal"] > result["auc-global"]) == (result["helps"] == 1.0), result
        if kept.exists():  # the model on the box is the one whose AUCs the server was told
            manifest = read_manifest(kept)
            assert manifest["version"] == f"personal-{store}" and manifest["training"]["mode"] == "personalised"
            assert manifest["metrics"]["auc"] == pytest.approx(result["auc-personal"])
            assert manifest["metrics"]["auc_global"] == pytest.approx(result["auc-global"])


def test_bad_run_config_names_the_key() -> None:
    with pytest.raises(Exception, match="unknown run config key 'rounds'"):
        FederationSettings.from_run_config({"as-of": "2025-01-01", "state-dir": "/tmp/x", "rounds": 3})
    with pytest.raises(Exception, match="strategy fedprox needs proximal-mu"):
        FederationSettings.from_run_config({"as-of": "2025-01-01", "state-dir": "/tmp/x", "strategy": "fedprox"})
    with pytest.raises(Exception, match="as-of '' is not a date"):
        FederationSettings.from_run_config({"as-of": "", "state-dir": "/tmp/x"})
