"""One store answering the federation with poison: the run goes on without it, and no broken model is released.

The real ServerApp and ClientApp code on the in-process grid (the arithmetic);
tests/integration/test_flower_security.py runs a poisoned store as a real SuperNode.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord

from edge_agent.client_app import app as client_app
from models.store_data import load_store_data
from models.survival import survival_set
from models.training import holdout_split
from server.federation import FederationError
from server.federation.in_process import InProcessGrid
from server.federation.rounds import run_federation
from tests.builders import federation_settings

POISONED = 103  # store-03's node
Tamper = Callable[[Message, Message, int], None]  # (request, reply, how many of its kind so far)


class PoisonedStore:
    """The real ClientApp; node 103's replies are tampered with by message type before they leave."""

    def __init__(self, tampers: dict[str, Tamper]) -> None:
        self.tampers = tampers
        self.seen: dict[str, int] = {}

    def __call__(self, message: Message, context: Any) -> Message:
        reply = client_app(message, context)
        kind = message.metadata.message_type
        if context.node_id == POISONED and kind in self.tampers:
            self.seen[kind] = self.seen.get(kind, 0) + 1
            self.tampers[kind](message, reply, self.seen[kind])
        return reply


def _arrays(reply: Message, change: Callable[[str, np.ndarray], np.ndarray]) -> None:
    record = reply.content["arrays"]
    reply.content["arrays"] = ArrayRecord({k: Array(np.asarray(change(k, v), dtype=np.float32))
                                           for k, v in zip(record.keys(), record.to_numpy_ndarrays())})


def _metrics(reply: Message, record: str = "metrics", **values: Any) -> None:
    metrics = reply.content[record]
    reply.content[record] = MetricRecord({**dict(metrics), **values})


def poisoned_training(_request: Message, reply: Message, count: int) -> None:
    """Round 1 NaN, round 2 a misshaped array, round 3 weights a million times too large."""
    if count == 1:
        _arrays(reply, lambda _k, v: np.full_like(v, np.nan))
    elif count == 2:
        _arrays(reply, lambda k, v: v[..., :1] if v.ndim > 1 and k.endswith("weight") else v)
    else:
        _arrays(reply, lambda _k, v: v * 1e6)


def spoofed_id(_request: Message, reply: Message, _count: int) -> None:
    reply.content["store"] = ConfigRecord({"store-id": "store-01"})


def test_nan_inf_misshaped_huge_updates_and_nan_moments_are_refused_and_a_good_model_released(
        chain_dbs: list[Path], tmp_path: Path) -> None:
    def stats(request: Message, reply: Message, count: int) -> None:
        spoofed_id(request, reply, count)
        _metrics(reply, **{"sum": [float("nan")] * len(reply.content["metrics"]["sum"])})  # type: ignore[arg-type]

    def train(request: Message, reply: Message, count: int) -> None:
        spoofed_id(request, reply, count)
        poisoned_training(request, reply, count)
        if "evaluation" in reply.content:  # the previous round's evaluation rides on this reply
            _metrics(reply, "evaluation", loss=float("inf"))

    def calibrate(request: Message, reply: Message, count: int) -> None:  # the last round's evaluation
        spoofed_id(request, reply, count)
        _metrics(reply, loss=float("inf"))

    store = PoisonedStore({"query.stats": stats, "train": train, "query.calibrate": calibrate})
    outcome = run_federation(InProcessGrid(store, chain_dbs), federation_settings(tmp_path, num_server_rounds=3))

    assert store.seen["train"] == 3, "the poisoned store was asked every round"
    for record in outcome.rounds:
        assert record["trained"] == ["store-01", "store-02"], "only the sound stores were averaged"
        (reason,) = record["refused"].values()
        assert set(record["refused"]) == {"store-01 (node 103)"}, "a store is its node, not the id it claims"
        assert reason.startswith("training: ") and "evaluation: loss is not a finite number" in reason, reason
        assert any(word in reason for word in ("not finite", "shape", "moves the weights")), reason
    assert outcome.manifest["metrics"]["auc"] > 0.85


def test_claims_of_a_billion_or_a_million_examples_are_refused_or_cut_and_never_release_a_broken_model(
        chain_dbs: list[Path], tmp_path: Path) -> None:
    rng = np.random.default_rng(3)

    def train(_request: Message, reply: Message, count: int) -> None:
        _arrays(reply, lambda _k, v: v + rng.normal(0, 0.3, v.shape))  # a harmful update within the norm bound
        _metrics(reply, **{"num-examples": 1_000_000_000 if count == 1 else 1_000_000})

    grid = InProcessGrid(PoisonedStore({"train": train}), chain_dbs)
    try:
        outcome = run_federation(grid, federation_settings(tmp_path, num_server_rounds=2))
    except FederationError as refused:  # the gate caught a model the poison spoiled: also sound
        assert "not released" in str(refused)
        return
    first, second = outcome.rounds
    assert "num-examples = 1e+09 is outside" in first["refused"]["store-03"]
    assert second["capped"]["store-03"].startswith("claimed num-examples 1e+06, counted ")
    honest = sorted(len(holdout_split(survival_set(load_store_data(db), federation_settings(tmp_path).as_of_day))[0])
                    for db in chain_dbs[:2])
    lower_median = sorted([*honest, 1_000_000])[1]
    assert float(second["capped"]["store-03"].rsplit(" ", 1)[1]) <= 4 * lower_median, "four times the lower median at most"
    assert outcome.manifest["metrics"]["auc"] > 0.7, "whatever was released is a sound model"


def test_a_model_clearly_worse_than_the_active_release_is_not_released(chain_dbs: list[Path], tmp_path: Path) -> None:
    active = tmp_path / "active"
    active.mkdir()
    (active / "manifest.json").write_text(json.dumps({"version": "fed-better", "created_at": "2026-01-01T00:00:00Z",
                                                      "metrics": {"auc": 0.999}}))
    with pytest.raises(FederationError, match="below the active release fed-better's 0.999"):
        run_federation(InProcessGrid(client_app, chain_dbs),
                       federation_settings(tmp_path / "state", num_server_rounds=1, active_model=str(active),
                                release_auc_margin=0.01))
    assert not (tmp_path / "state" / "release").exists() or not any((tmp_path / "state" / "release").iterdir())
