"""FedAvg / FedProx for stores that come and go: bounded waits, a minimum, and a record of each round.

Flower's FedAvg waits for `min_available_nodes` in an unbounded loop (one
second at a time, for ever): one store box that never comes back would hang the
federation. Here the wait has a deadline; a round that cannot gather its
minimum is skipped (the global model stays as it was) and the next one tries
again. Aggregation still uses Flower's own FedAvg code; FedProx is FedAvg plus
`proximal-mu` in the training config, which the stores add to their loss.
Before anything is aggregated, every reply goes through reply_checks: a
store is its authenticated node, a non-finite, misshaped or far-flung update
is refused with its reason, and no store's weight outgrows the others'.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from logging import INFO, WARNING
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.exception import InconsistentMessageReplies
from flwr.serverapp.strategy import FedAvg, Strategy
from flwr.supercore import log
from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

from models.federated import auc_from_histogram

from .reply_checks import (
    ReplyLimits, cap_mass, cap_weights, evaluation_check, node_of, store_names, training_check, usable,
)


def wait_for_nodes(grid: Grid, minimum: int, seconds: float, sleep: Callable[[float], None] = time.sleep) -> list[int]:
    """Connected node ids, waiting at most `seconds` for `minimum` of them."""
    deadline = time.monotonic() + seconds
    while True:
        nodes = list(grid.get_node_ids())
        if len(nodes) >= minimum or time.monotonic() >= deadline:
            return nodes
        log(INFO, "Waiting for stores: %d connected, %d needed.", len(nodes), minimum)
        sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def reply_bytes(message: Message) -> tuple[int, int]:
    """(bytes of the reply's arrays, bytes of the whole reply as Flower sends it: every object it is made of)."""
    arrays = sum(len(array.data) for record in message.content.array_records.values() for array in record.values())
    message_bytes = sum(len(part.deflate()) for part in get_all_nested_objects(message).values())
    return arrays, message_bytes


def reply_timing(replies: list[Message]) -> dict[str, dict[str, float]]:
    """Per store: the training and preparation time it reports, and the size of its reply."""
    timing: dict[str, dict[str, float]] = {"train_seconds": {}, "prepare_seconds": {}, "array_bytes": {}, "message_bytes": {}}
    names = store_names(replies)
    for message in replies:
        store = names[node_of(message)]
        metrics = next(iter(message.content.metric_records.values()), {})
        for key in ("train-seconds", "prepare-seconds"):
            if key in metrics:
                timing[key.replace("-", "_")][store] = float(metrics[key])  # type: ignore[arg-type]
        timing["array_bytes"][store], timing["message_bytes"][store] = reply_bytes(message)
    return timing


def pooled_evaluation(records: list[RecordDict], weight_key: str) -> MetricRecord:
    """Chain-wide metrics: histograms are summed (exact pooled AUC), losses weighted by examples."""
    metrics = [next(iter(r.metric_records.values())) for r in records]
    weights = np.array([float(m[weight_key]) for m in metrics])
    churned = np.sum([np.asarray(m["hist-churned"]) for m in metrics], axis=0)
    stayed = np.sum([np.asarray(m["hist-stayed"]) for m in metrics], axis=0)
    result = {
        "loss": float(np.average([float(m["loss"]) for m in metrics], weights=weights)),
        "churn-rate": float(np.average([float(m["churn-rate"]) for m in metrics], weights=weights)),
        "auc": auc_from_histogram(churned, stayed),
        "mean-store-auc": float(np.mean([float(m["auc"]) for m in metrics])),
        "examples": float(weights.sum()),
    }
    return MetricRecord(result)


@dataclass
class RoundRecord:
    """What happened in one round, for checkpoints and the console."""

    round: int
    trained: list[str] = field(default_factory=list)
    evaluated: list[str] = field(default_factory=list)
    failures: int = 0
    train_loss: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    per_store_auc: dict[str, float] = field(default_factory=dict)
    skipped: str = ""
    refused: dict[str, str] = field(default_factory=dict)  # store -> why its reply was not used
    capped: dict[str, str] = field(default_factory=dict)  # store -> the weight it claimed and the one counted
    # Wall seconds of the training phase and of the whole round (training + evaluation) as the
    # server saw them, and per store what it reported (train/prepare seconds) and sent (bytes).
    timing: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class BoundedFedAvg(FedAvg):
    """FedAvg (or FedProx) whose sampling waits for stores with a deadline.

    Aggregation is Flower's own FedAvg.aggregate_train, untouched: Flower's
    privacy accountant requires exactly that averaging.
    """

    def __init__(self, *, node_wait_seconds: float, proximal_mu: float = 0.0, exact_sample: bool = False, **kwargs: Any):
        super().__init__(evaluate_metrics_aggr_fn=pooled_evaluation, **kwargs)
        self.node_wait_seconds = node_wait_seconds
        self.proximal_mu = proximal_mu
        self.exact_sample = exact_sample  # DP accounting needs the same sample size every round
        self.round_offset = 0  # rounds done before a resume
        self.skipped: dict[int, str] = {}

    def _sample(self, grid: Grid, server_round: int, fraction: float, minimum: int, what: str) -> list[int]:
        nodes = wait_for_nodes(grid, max(minimum, self.min_available_nodes), self.node_wait_seconds)
        if len(nodes) < minimum:
            reason = f"{len(nodes)} store(s) connected, {minimum} needed for {what}"
            log(WARNING, "Round %s: skipping %s: %s", server_round + self.round_offset, what, reason)
            self.skipped[server_round + self.round_offset] = reason
            return []
        exact = self.exact_sample and what == "training"
        size = minimum if exact else max(minimum, int(len(nodes) * fraction))
        return random.sample(nodes, min(size, len(nodes)))

    def _messages(self, nodes: list[int], arrays: ArrayRecord, config: ConfigRecord, kind: str) -> list[Message]:
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        return [Message(content=record, message_type=kind, dst_node_id=node) for node in nodes]

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        nodes = self._sample(grid, server_round, self.fraction_train, self.min_train_nodes, "training")
        config["server-round"] = server_round + self.round_offset
        if self.proximal_mu > 0:
            config["proximal-mu"] = self.proximal_mu
        return self._messages(nodes, arrays, config, MessageType.TRAIN)

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        nodes = self._sample(grid, server_round, self.fraction_evaluate, self.min_evaluate_nodes, "evaluation")
        config["server-round"] = server_round + self.round_offset
        return self._messages(nodes, arrays, config, MessageType.EVALUATE)


class RoundKeeper(Strategy):
    """Wraps the strategy (FedAvg, or FedAvg inside Flower's DP wrapper) to enforce a
    minimum of successful training replies and to record each round."""

    def __init__(self, strategy: Strategy, bounded: BoundedFedAvg, min_train_replies: int,
                 limits: ReplyLimits = ReplyLimits()):
        self.strategy = strategy
        self.bounded = bounded
        self.min_train_replies = min_train_replies
        self.limits = limits
        self.rounds: dict[int, RoundRecord] = {}
        self._started: dict[int, float] = {}  # round -> when its training was configured
        self._sent: dict[int, dict[str, np.ndarray]] = {}  # round -> the global weights its training started from

    def _refused(self, record: RoundRecord, refused: dict[str, str]) -> None:
        for store, reason in refused.items():
            record.refused[store] = "; ".join(filter(None, (record.refused.get(store), reason)))

    def record(self, server_round: int) -> RoundRecord:
        number = server_round + self.bounded.round_offset
        entry = self.rounds.setdefault(number, RoundRecord(number))
        if number in self.bounded.skipped and not entry.skipped:
            entry.skipped = self.bounded.skipped[number]
        return entry

    def summary(self) -> None:
        self.strategy.summary()

    def _elapsed(self, server_round: int) -> float:
        return time.monotonic() - self._started.get(server_round, time.monotonic())

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        self._started[server_round] = time.monotonic()
        self._sent = {server_round: {name: np.asarray(value, dtype=np.float64)
                                     for name, value in zip(arrays.keys(), arrays.to_numpy_ndarrays())}}
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        record = self.record(server_round)
        check = training_check(self._sent.get(server_round, {}), self.limits)
        good, refused = usable(replies, check, "training")
        self._refused(record, refused)
        record.timing = {"train_wall_seconds": self._elapsed(server_round), **reply_timing(good)}
        record.failures += len(replies) - len(good)
        for failed in (m for m in replies if m.has_error()):
            log(WARNING, "Store node %s failed training: %s", failed.metadata.src_node_id, failed.error.reason)
        if len(good) < self.min_train_replies:
            if not record.skipped:
                record.skipped = f"{len(good)} training replies, {self.min_train_replies} needed"
            log(WARNING, "Round %s: %s; keeping the global model", record.round, record.skipped)
            return None, None
        record.capped.update(cap_weights(good, self.bounded.weighted_by_key, self.limits))
        try:
            arrays, metrics = self.strategy.aggregate_train(server_round, good)
        except InconsistentMessageReplies as exc:
            record.skipped = f"inconsistent replies: {exc}"
            return None, None
        if arrays is not None:
            record.trained = sorted(store_names(good).values())
        if metrics is not None and "train-loss" in metrics:
            record.train_loss = float(metrics["train-loss"])  # type: ignore[arg-type]
        return arrays, metrics

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        replies = list(replies)
        record = self.record(server_round)
        good, refused = usable(replies, evaluation_check(self.limits), "evaluation")
        self._refused(record, refused)
        record.timing["round_wall_seconds"] = self._elapsed(server_round)
        record.failures += len(replies) - len(good)
        if not good:
            return None
        cap_weights(good, self.bounded.weighted_by_key, self.limits)
        cap_mass(good, ("hist-churned", "hist-stayed"), self.limits)
        try:
            metrics = self.strategy.aggregate_evaluate(server_round, good)
        except InconsistentMessageReplies:
            return None
        names = store_names(good)
        record.evaluated = sorted(names.values())
        record.per_store_auc = {names[node_of(m)]: float(next(iter(m.content.metric_records.values()))["auc"])
                                for m in good}
        if metrics is not None:
            record.metrics = {k: float(v) for k, v in metrics.items()}  # type: ignore[arg-type]
        return metrics
