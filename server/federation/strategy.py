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

A round is one exchange: there is no evaluation message. From round 2 on, a
training message asks each store to evaluate the weights it receives (the
previous round's result) before training on them, and the reply carries
that evaluation in its own record; it is recorded as the previous round's
metrics. The last round's model is evaluated by the calibration message that
follows the rounds (rounds.py), which needs those very histograms anyway.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
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
from models.flower_protocol import TIMINGS, Config, Metric, Record

AVERAGED = (Metric.EXAMPLES, Metric.UNIT_WEIGHT, Metric.TRAIN_LOSS)  # the training metrics every reply has

from .reply_checks import (
    ReplyLimits, cap_mass, cap_weights, evaluation_check, metrics_of, node_of, store_names, training_check, usable,
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


def store_timing(replies: list[Message]) -> dict[str, dict[str, float]]:
    """Per store: the seconds it reports for each step of its work, and the size of its reply."""
    timing: dict[str, dict[str, float]] = {key.replace("-", "_"): {} for key in TIMINGS}
    timing.update(array_bytes={}, message_bytes={})
    names = store_names(replies)
    for message in replies:
        store = names[node_of(message)]
        metrics = message.content.metric_records.get(Record.METRICS, {})
        for key in TIMINGS:
            value = metrics.get(key)
            if isinstance(value, (int, float)) and np.isfinite(value) and value >= 0:
                timing[key.replace("-", "_")][store] = float(value)
        timing["array_bytes"][store], timing["message_bytes"][store] = reply_bytes(message)
    return timing


def round_timing(wall_seconds: float, stores: dict[str, dict[str, float]]) -> dict[str, Any]:
    """A round's wall time, the slowest store's training, and the rest: the federation's overhead."""
    slowest = max(stores.get("train_seconds", {}).values(), default=None)
    return {"round_wall_seconds": wall_seconds, "slowest_train_seconds": slowest,
            "overhead_seconds": None if slowest is None else max(0.0, wall_seconds - slowest), **stores}


def _weights(metrics: list[Mapping[str, Any]], weight_key: str, limits: ReplyLimits) -> np.ndarray:
    """Each store's weight in a pooled evaluation: its examples, bounded like an update's (1 each under DP)."""
    if weight_key == Metric.UNIT_WEIGHT:
        return np.ones(len(metrics))
    claimed = np.array([float(m[Metric.EXAMPLES]) for m in metrics])
    lower_median = np.sort(claimed)[(len(claimed) - 1) // 2]
    return np.minimum(claimed, max(limits.max_weight_ratio * lower_median, 1.0)) if len(claimed) > 1 else claimed


def pooled_evaluation(metrics: list[Mapping[str, Any]], weight_key: str, limits: ReplyLimits) -> dict[str, float]:
    """Chain-wide metrics: histograms are summed (exact pooled AUC), losses weighted by examples."""
    weights = _weights(metrics, weight_key, limits)
    churned = np.sum([np.asarray(m[Metric.HIST_CHURNED]) for m in metrics], axis=0)
    stayed = np.sum([np.asarray(m[Metric.HIST_STAYED]) for m in metrics], axis=0)
    return {
        Metric.LOSS: float(np.average([float(m[Metric.LOSS]) for m in metrics], weights=weights)),
        Metric.CHURN_RATE: float(np.average([float(m[Metric.CHURN_RATE]) for m in metrics], weights=weights)),
        Metric.AUC: auc_from_histogram(churned, stayed),
        Metric.MEAN_STORE_AUC: float(np.mean([float(m[Metric.AUC]) for m in metrics])),
        Metric.POOLED_EXAMPLES: float(weights.sum()),
    }


@dataclass
class RoundRecord:
    """What happened in one round, for checkpoints and the console."""

    round: int
    trained: list[str] = field(default_factory=list)
    evaluated: list[str] = field(default_factory=list)
    failures: int = 0
    train_loss: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # the evaluation of the weights this round produced
    per_store_auc: dict[str, float] = field(default_factory=dict)
    skipped: str = ""
    refused: dict[str, str] = field(default_factory=dict)  # store -> why its reply was not used
    capped: dict[str, str] = field(default_factory=dict)  # store -> the weight it claimed and the one counted
    # The round's wall time as the server saw it, the slowest store's training, the overhead (the rest),
    # and per store what it reported (startup, prepare, evaluate and train seconds) and sent (bytes).
    timing: dict[str, Any] = field(default_factory=dict)
    privacy: dict[str, Any] | None = None  # the budget spent up to this round (differential privacy only)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> RoundRecord:
        """A record from a checkpoint's history (keys it does not know are left out)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in entry.items() if k in known})


class BoundedFedAvg(FedAvg):
    """FedAvg (or FedProx) whose sampling waits for stores with a deadline.

    Aggregation is Flower's own FedAvg.aggregate_train, untouched: Flower's
    privacy accountant requires exactly that averaging.
    """

    def __init__(self, *, node_wait_seconds: float, proximal_mu: float = 0.0, exact_sample: bool = False, **kwargs: Any):
        super().__init__(fraction_evaluate=0.0, arrayrecord_key=Record.ARRAYS, configrecord_key=Record.CONFIG, **kwargs)
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
        size = minimum if self.exact_sample else max(minimum, int(len(nodes) * fraction))
        return random.sample(nodes, min(size, len(nodes)))

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        nodes = self._sample(grid, server_round, self.fraction_train, self.min_train_nodes, "training")
        number = server_round + self.round_offset
        config[Config.SERVER_ROUND] = number
        config[Config.EVALUATE_INCOMING] = number > 1  # the weights sent are a finished round's result
        if self.proximal_mu > 0:
            config[Config.PROXIMAL_MU] = self.proximal_mu
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        return [Message(content=record, message_type=MessageType.TRAIN, dst_node_id=node) for node in nodes]

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        return []  # evaluation rides on the next training message, or on the calibration after the last round


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

    def restore(self, history: list[dict[str, Any]]) -> None:
        """The rounds of a checkpoint, so that a resumed federation completes the last one's evaluation."""
        for entry in history:
            record = RoundRecord.from_dict(entry)
            self.rounds[record.round] = record

    def history(self) -> list[dict[str, Any]]:
        return [self.rounds[number].as_dict() for number in sorted(self.rounds)]

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

    def evaluated(self, number: int, replies: list[Message], name: str = Record.METRICS) -> list[Message]:
        """Record the evaluation of round `number`'s weights carried by `replies` (their metric record
        `name`); return the usable ones."""
        carrying = [r for r in replies if r.has_error() or name in r.content.metric_records]
        if number < 1 or not carrying:
            return []
        record = self.rounds.setdefault(number, RoundRecord(number))
        good, refused = usable(carrying, evaluation_check(self.limits, name), "evaluation")
        self._refused(record, refused)
        record.failures += len(refused) + (sum(r.has_error() for r in carrying) if name == Record.METRICS else 0)
        if not good:
            return []
        cap_mass(good, (Metric.HIST_CHURNED, Metric.HIST_STAYED), self.limits, name)
        metrics = [metrics_of(m, name) for m in good]
        names = store_names(good)
        record.metrics = pooled_evaluation(metrics, self.bounded.weighted_by_key, self.limits)
        record.evaluated = sorted(names.values())
        record.per_store_auc = {names[node_of(m)]: float(e[Metric.AUC]) for m, e in zip(good, metrics)}
        return good

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        self._started[server_round] = time.monotonic()
        self._sent = {server_round: {name: np.asarray(value, dtype=np.float64)
                                     for name, value in zip(arrays.keys(), arrays.to_numpy_ndarrays())}}
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        return []  # see the module's docstring

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        record = self.record(server_round)
        self.evaluated(record.round - 1, replies, Record.EVALUATION)  # the weights this round started from
        check = training_check(self._sent.get(server_round, {}), self.limits)
        good, refused = usable(replies, check, "training")
        self._refused(record, refused)
        record.timing = store_timing(good)
        record.failures += len(replies) - len(good)
        for failed in (m for m in replies if m.has_error()):
            log(WARNING, "Store node %s failed training: %s", failed.metadata.src_node_id, failed.error.reason)
        for reply in good:  # what Flower averages: the weights and one metric record of the keys it averages
            reply.content.metric_records.pop(Record.EVALUATION, None)
            metrics = reply.content.metric_records[Record.METRICS]
            reply.content[Record.METRICS] = MetricRecord({key: metrics[key] for key in AVERAGED})
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
        if metrics is not None and Metric.TRAIN_LOSS in metrics:
            record.train_loss = float(metrics[Metric.TRAIN_LOSS])  # type: ignore[arg-type]
        return arrays, metrics

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        """No evaluation message is sent: this closes the round's clock."""
        record = self.record(server_round)
        record.timing = round_timing(self._elapsed(server_round), record.timing)
        return None
