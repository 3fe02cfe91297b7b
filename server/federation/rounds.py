"""One federation from start to release: normalisation, rounds, calibration, export.

`run_federation` takes any Flower Grid: the real one inside the ServerApp (a
SuperLink and the stores' SuperNodes), or the in-process grid of backtests and
tests, so both run exactly this code.

1. Shared normalisation: each store sends per-feature moments (count, sum,
   sum of squares); the server adds them up. No per-customer value leaves.
   It cannot ride on the first training message: the network clamps and fills
   its normalised inputs, so a round trained before the shared normalisation
   exists could not be converted to it.
2. Rounds of FedAvg or FedProx (strategy.py), one exchange each (the previous
   round's evaluation rides on the training reply), optionally with Flower's
   client-side clipping and server-side Gaussian noise, the privacy budget
   tracked by Flower's RDP accountant. After every round the global model is
   checkpointed; a restarted federation resumes after the last checkpoint.
3. Shared calibration: stores send histograms of the final model's held-out
   logits; the server fits Platt scaling on the pooled histogram. The same
   replies are the last round's evaluation.
4. Export: `model.onnx` + `manifest.json` in the state folder, and a summary
   with the time each step took.
5. Optional personalisation: each store fine-tunes the head on its own data,
   keeps the result, and reports whether it helps.

Every exchange goes through QuickGrid (a 0.2 s poll for replies, not Flower's 3 s).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from logging import INFO, WARNING
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid, NeighboringRelation, PrivacyConfig, RdpAccountant, SamplingMethod
from flwr.serverapp.strategy import DifferentialPrivacyClientSideFixedClipping
from flwr.supercore import log

from models.export import write_model_dir
from models.federated import CHECK_DAYS, auc_from_histogram, load_trainable, platt_from_histogram, trainable_arrays
from models.flower_protocol import CALIBRATE, PERSONALISE, STATS, Config, Metric, Record
from models.network import ChurnNet, NetworkConfig, NormStats
from models.schema import FEATURE_NAMES

from ..errors import FederationError
from .checkpoints import Checkpoint, CheckpointStore
from .quick_grid import QuickGrid
from .reply_checks import active_release_auc, checked_replies, metrics_of, node_of, release_gate, store_names
from .settings import SUMMARY_FILE, FederationSettings
from .strategy import BoundedFedAvg, RoundKeeper, wait_for_nodes


@dataclass
class FederationOutcome:
    model: ChurnNet
    rounds: list[dict[str, Any]]
    release_dir: Path
    manifest: dict[str, Any]
    resumed_from: int
    privacy: dict[str, Any] | None
    personalisation: dict[str, dict[str, float]] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)  # seconds of each step, and the exchanges made


def _to_record(arrays: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({name: Array(np.asarray(value)) for name, value in arrays.items()})


def _from_record(record: ArrayRecord) -> dict[str, np.ndarray]:
    return dict(zip(record.keys(), record.to_numpy_ndarrays()))


def _base_config(settings: FederationSettings, norm: NormStats | None) -> ConfigRecord:
    config: dict[str, Any] = {
        Config.AS_OF_DAY: settings.as_of_day,
        Config.HORIZON_DAYS: settings.horizon_days,
        Config.LOCAL_EPOCHS: settings.local_epochs,
        Config.LEARNING_RATE: settings.learning_rate,
        Config.BATCH_SIZE: settings.batch_size,
        Config.SEED: settings.seed,
    }
    if norm is not None:
        config[Config.FEATURE_MEAN] = [float(v) for v in norm.mean]
        config[Config.FEATURE_STD] = [float(v) for v in norm.std]
    return ConfigRecord(config)


def _send_all(grid: Grid, settings: FederationSettings, kind: str, content: RecordDict, minimum: int) -> list[Message]:
    """Send one message to every connected store (waiting boundedly for `minimum` of them); the replies."""
    nodes = wait_for_nodes(grid, minimum, settings.node_wait_seconds)
    if len(nodes) < minimum:
        raise FederationError(f"{len(nodes)} store(s) connected after {settings.node_wait_seconds:.0f} s, {minimum} needed")
    messages = [Message(content=content, message_type=kind, dst_node_id=node) for node in nodes]
    replies = list(grid.send_and_receive(messages, timeout=settings.round_timeout_seconds))
    for failed in (r for r in replies if r.has_error()):
        log(WARNING, "A store could not answer %s: %s", kind, failed.error.reason)
    return replies


def _ask_all(grid: Grid, settings: FederationSettings, kind: str, content: RecordDict, minimum: int) -> list[Message]:
    """`_send_all`, and the replies that pass their checks; FederationError with fewer than `minimum`."""
    good = checked_replies(kind, _send_all(grid, settings, kind, content, minimum), settings.reply_limits)
    if len(good) < minimum:
        raise FederationError(f"only {len(good)} store(s) answered {kind} usably, {minimum} needed")
    return good


def shared_normalisation(grid: Grid, settings: FederationSettings) -> NormStats:
    """Add up the stores' feature moments into one normalisation."""
    content = RecordDict({Record.CONFIG: _base_config(settings, None)})
    replies = _ask_all(grid, settings, STATS.type, content, settings.min_train_nodes)
    metrics = [metrics_of(r) for r in replies]
    count = np.sum([np.asarray(m[Metric.COUNT]) for m in metrics], axis=0)
    total = np.sum([np.asarray(m[Metric.SUM]) for m in metrics], axis=0)
    squares = np.sum([np.asarray(m[Metric.SUM_SQ]) for m in metrics], axis=0)
    log(INFO, "Shared normalisation from %d stores, %d training rows", len(replies),
        int(sum(float(m[Metric.EXAMPLES]) for m in metrics)))
    return NormStats.from_moments(count, total, squares)


def shared_calibration(grid: Grid, settings: FederationSettings, weights: dict[str, np.ndarray], norm: NormStats,
                       strategy: RoundKeeper, last_round: int) -> tuple[float, float, float]:
    """(slope, intercept, pooled held-out AUC at the check horizon) from the stores' logit histograms of the
    final weights, which are also recorded as round `last_round`'s evaluation.

    The calibration is fitted at the horizon itself; when no store saw a whole horizon before as-of
    the histograms are empty and the likelihood's own calibration stands (slope 1, intercept 0)."""
    content = RecordDict({Record.ARRAYS: _to_record(weights), Record.CONFIG: _base_config(settings, norm)})
    replies = _send_all(grid, settings, CALIBRATE.type, content, 1)
    good = strategy.evaluated(last_round, replies)  # checked and bounded as a round's evaluation
    metrics = [metrics_of(r) for r in good]
    if not metrics:
        raise FederationError(f"only 0 store(s) answered {CALIBRATE.type} usably, 1 needed")

    def pooled(key: str) -> np.ndarray:
        return np.sum([np.asarray(m[key]) for m in metrics if key in m], axis=0)

    slope, intercept = platt_from_histogram(pooled(Metric.CALIBRATION_CHURNED), pooled(Metric.CALIBRATION_STAYED))
    return slope, intercept, auc_from_histogram(pooled(Metric.HIST_CHURNED), pooled(Metric.HIST_STAYED))


def _strategy(settings: FederationSettings) -> tuple[RoundKeeper, BoundedFedAvg, Any]:
    """(the strategy to start, its FedAvg core, the DP wrapper or None)."""
    dp = settings.dp_enabled
    bounded = BoundedFedAvg(
        node_wait_seconds=settings.node_wait_seconds,
        proximal_mu=settings.proximal_mu if settings.strategy == "fedprox" else 0.0,
        exact_sample=dp,
        weighted_by_key=Metric.UNIT_WEIGHT if dp else Metric.EXAMPLES,
        fraction_train=settings.fraction_train,
        min_train_nodes=settings.min_train_nodes,
        min_evaluate_nodes=1,
        min_available_nodes=settings.min_train_nodes,
    )
    wrapper = None
    if dp:
        accountant = RdpAccountant(PrivacyConfig(
            target_delta=settings.dp_target_delta,
            population_size=settings.min_available_nodes,
            neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
            sampling_method=SamplingMethod.NO_AMPLIFICATION,
        ))
        wrapper = DifferentialPrivacyClientSideFixedClipping(
            bounded, settings.dp_noise_multiplier, settings.dp_clipping_norm, settings.min_train_nodes,
            accountant=accountant,
        )
    return RoundKeeper(wrapper or bounded, bounded, settings.min_train_nodes, settings.reply_limits), bounded, wrapper


def _privacy(wrapper: Any) -> dict[str, Any] | None:
    spent = wrapper.privacy_spent() if wrapper is not None else None
    if spent is None:
        return None
    return {"epsilon": spent.epsilon, "delta": spent.delta, "releases": spent.num_releases,
            "noise_multiplier": wrapper.noise_multiplier, "clipping_norm": wrapper.clipping_norm}


def personalisation_round(grid: Grid, settings: FederationSettings, weights: dict[str, np.ndarray], norm: NormStats,
                          calibration: tuple[float, float]) -> dict[str, dict[str, float]]:
    config = _base_config(settings, norm)
    config[Config.CALIBRATION_SLOPE], config[Config.CALIBRATION_INTERCEPT] = calibration
    config[Config.PERSONALISE_EPOCHS] = settings.personalise_epochs
    content = RecordDict({Record.ARRAYS: _to_record(weights), Record.CONFIG: config})
    replies = _ask_all(grid, settings, PERSONALISE.type, content, 1)
    names = store_names(replies)
    return {names[node_of(r)]: {k: float(v) for k, v in metrics_of(r).items()} for r in replies}


class Stopwatch:
    """Seconds of each step of a federation, and how many exchanges (messages to the stores) it made."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.exchanges = 0
        self._last = time.monotonic()

    def lap(self, step: str, exchanges: int = 0) -> None:
        now = time.monotonic()
        self.seconds[f"{step}_seconds"] = self.seconds.get(f"{step}_seconds", 0.0) + now - self._last
        self.exchanges += exchanges
        self._last = now

    def as_dict(self) -> dict[str, float]:
        return {**self.seconds, "exchanges": self.exchanges}


def run_federation(grid: Grid, settings: FederationSettings) -> FederationOutcome:
    """Run (or resume) the federation described by `settings` over `grid`."""
    grid = grid if isinstance(grid, QuickGrid) else QuickGrid(grid)
    clock = Stopwatch()
    torch.manual_seed(settings.seed)
    checkpoints = CheckpointStore(settings.state_path, settings.fingerprint)
    model = ChurnNet(len(FEATURE_NAMES), NetworkConfig(), settings.horizon_days)
    strategy, bounded, dp_wrapper = _strategy(settings)
    resumed = checkpoints.latest()
    if resumed is not None:
        log(INFO, "Resuming federation %s after round %d", settings.fingerprint, resumed.round)
        norm, start_round = resumed.norm, resumed.round
        strategy.restore(resumed.history)
        load_trainable(model, resumed.weights)
    else:
        norm, start_round = shared_normalisation(grid, settings), 0
        checkpoints.save(Checkpoint(0, trainable_arrays(model), norm, []))
        clock.lap("normalisation", exchanges=1)
    model.set_normalisation(norm)
    bounded.round_offset = start_round

    def checkpoint_after_round(server_round: int, arrays: ArrayRecord) -> None:
        if server_round == 0:
            return None  # the starting point is already saved
        number = server_round + start_round
        strategy.record(server_round).privacy = _privacy(dp_wrapper)
        checkpoints.save(Checkpoint(number, _from_record(arrays), norm, strategy.history()))
        log(INFO, "Checkpoint of round %d saved", number)
        return None

    remaining = settings.num_server_rounds - start_round
    weights = trainable_arrays(model)
    if remaining > 0:
        result = strategy.start(
            grid=grid,
            initial_arrays=_to_record(weights),
            num_rounds=remaining,
            timeout=settings.round_timeout_seconds,
            train_config=_base_config(settings, norm),
            evaluate_config=_base_config(settings, norm),
            evaluate_fn=checkpoint_after_round,
        )
        if result.arrays is not None and len(result.arrays):
            weights = _from_record(result.arrays)
        clock.lap("rounds", exchanges=remaining)
    load_trainable(model, weights)
    if not any(record.trained for record in strategy.rounds.values()):
        raise FederationError("no round gathered enough stores to train; nothing to release")

    last_round = max(strategy.rounds)
    slope, intercept, pooled_auc = shared_calibration(grid, settings, weights, norm, strategy, last_round)
    checkpoints.save(Checkpoint(last_round, weights, norm, strategy.history()))  # with the last round's evaluation
    clock.lap("calibration", exchanges=1)
    history = strategy.history()
    model.set_calibration(slope, intercept)
    version = f"fed-{settings.as_of}-r{settings.num_server_rounds}-{settings.fingerprint[:8]}"
    release_gate(pooled_auc, settings.release_min_auc, settings.release_auc_margin,
                 active_release_auc(settings.state_path, settings.active_model, version))
    release_dir = settings.state_path / "release" / version
    last = history[-1].get("metrics", {}) if history else {}
    manifest = write_model_dir(
        model, release_dir, version=version, horizon_days=settings.horizon_days,
        metrics={"auc": pooled_auc, "auc_days": min(settings.horizon_days, CHECK_DAYS),
                 "auc_last_round": last.get(Metric.AUC), "loss_last_round": last.get(Metric.LOSS)},
        training={"mode": "federated", "as_of": settings.as_of, "rounds": settings.num_server_rounds,
                  "strategy": settings.strategy, "fingerprint": settings.fingerprint,
                  "stores": sorted({s for entry in history for s in entry.get("trained", [])}),
                  "privacy": _privacy(dp_wrapper)},
    )
    clock.lap("export")
    personal = {}
    if settings.personalise:
        personal = personalisation_round(grid, settings, weights, norm, (slope, intercept))
        clock.lap("personalisation", exchanges=1)
    outcome = FederationOutcome(model, history, release_dir, manifest, start_round, _privacy(dp_wrapper), personal,
                                clock.as_dict())
    write_summary(settings, outcome)
    return outcome


def write_summary(settings: FederationSettings, outcome: FederationOutcome) -> Path:
    path = settings.state_path / SUMMARY_FILE
    summary = {
        "as_of": settings.as_of,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": settings.as_run_config(),
        "resumed_from_round": outcome.resumed_from,
        "rounds": outcome.rounds,
        "release_dir": str(outcome.release_dir),
        "manifest": outcome.manifest,
        "privacy": outcome.privacy,
        "personalisation": outcome.personalisation,
        "timing": outcome.timing,
    }
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(summary, indent=2, default=float) + "\n")
    os.replace(temporary, path)
    return path


