"""What a store's reply must be before the federation uses it, and what a model must be before it is released.

A store box is one node of the federation, and a broken or hostile one can
answer anything: NaN or Inf weights, weights a million times too large,
arrays of another shape, NaN moments, a claim of 10^9 examples, a histogram
that outweighs every other store, or another store's id. So:

- a store is the node Flower authenticated (`src_node_id`); the store id in a
  reply is only a label, and two nodes claiming one label are shown apart;
- a reply must be finite and shaped like what was asked, and a training
  update may move the weights by at most `max-update-norm`; a reply that is
  not is refused with its reason (the round goes on without it);
- no store weighs more than `max-weight-ratio` times the lower median of the
  round's stores (examples in averages, counts in moments, histogram mass);
- a model whose pooled held-out AUC is not a number of at least
  `release-min-auc`, or falls below the active release's by more than
  `release-auc-margin`, is not released.

Pure functions over Flower messages; strategy.py and rounds.py call them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from logging import WARNING
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Message, MetricRecord
from flwr.supercore import log

from models.flower_protocol import STATS, Metric, Record, StoreKey

from ..errors import FederationError

Check = Callable[[Message], None]


class Refused(Exception):
    """A reply the federation must not use; the message says why."""


@dataclass(frozen=True)
class ReplyLimits:
    max_update_norm: float = 50.0  # L2 distance from the weights sent; honest updates measure about 1 to 3
    max_weight_ratio: float = 4.0  # a store weighs at most this many times the round's lower median
    max_examples: int = 50_000_000


def node_of(message: Message) -> int:
    return int(message.metadata.src_node_id)


def store_names(replies: Iterable[Message]) -> dict[int, str]:
    """Node → the store id it claims, as a label; a label two nodes claim names both nodes."""
    claims: dict[int, str] = {}
    for message in replies:
        record = message.content.config_records.get(Record.STORE)
        claim = str(record[StoreKey.STORE_ID])[:80] if record is not None and StoreKey.STORE_ID in record else ""
        claims[node_of(message)] = claim or f"node {node_of(message)}"
    taken = [claim for claim in claims.values()]
    return {node: claim if taken.count(claim) == 1 else f"{claim} (node {node})" for node, claim in claims.items()}


def metrics_of(message: Message, name: str = Record.METRICS) -> dict[str, Any]:
    """The reply's metric record `name` (its answer, or the evaluation a training reply carries)."""
    record = message.content.metric_records.get(name)
    if not isinstance(record, MetricRecord):
        raise Refused(f"no {name!r} metric record")
    return dict(record)


def _only_records(message: Message, allowed: set[str]) -> None:
    """Flower's averaging takes exactly one metric record: any other would spoil the round for every store."""
    extra = set(message.content.metric_records) - allowed
    if extra:
        raise Refused(f"unexpected metric records {sorted(extra)}")


def _number(metrics: dict[str, Any], key: str, low: float = -math.inf, high: float = math.inf) -> float:
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Refused(f"{key} is not a finite number")
    if not low <= value <= high:
        raise Refused(f"{key} = {value:g} is outside [{low:g}, {high:g}]")
    return float(value)


def _vector(metrics: dict[str, Any], key: str, length: int | None = None, non_negative: bool = False) -> np.ndarray:
    value = metrics.get(key)
    if not isinstance(value, list) or not value or (length is not None and len(value) != length):
        raise Refused(f"{key} is not a list of {length or 'some'} numbers")
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 1 or not np.all(np.isfinite(array)) or (non_negative and np.any(array < 0)):
        raise Refused(f"{key} holds values that are not finite{' or not positive' if non_negative else ''}")
    return array


def _all_finite(metrics: dict[str, Any]) -> None:
    for key, value in metrics.items():
        if isinstance(value, list):
            _vector(metrics, key)
        else:
            _number(metrics, key)


def _examples(metrics: dict[str, Any], limits: ReplyLimits) -> float:
    return _number(metrics, Metric.EXAMPLES, 0, limits.max_examples)


def training_check(sent: dict[str, np.ndarray], limits: ReplyLimits) -> Check:
    """A training reply: the same arrays as sent, finite, not too far from them; finite metrics."""
    def check(reply: Message) -> None:
        _only_records(reply, {Record.METRICS, Record.EVALUATION})  # the evaluation is checked on its own
        records = list(reply.content.array_records.values())
        if len(records) != 1:
            raise Refused(f"{len(records)} array records, 1 expected")
        names = list(records[0].keys())
        if names != list(sent):
            raise Refused("its arrays are not the model's parameters")
        squared = 0.0
        for name, array in zip(names, records[0].to_numpy_ndarrays()):
            if array.shape != sent[name].shape:
                raise Refused(f"array {name} has shape {array.shape}, the model's is {sent[name].shape}")
            if not np.issubdtype(array.dtype, np.floating) or not np.all(np.isfinite(array)):
                raise Refused(f"array {name} is not finite")
            squared += float(np.sum((array.astype(np.float64) - sent[name]) ** 2))
        if not math.sqrt(squared) <= limits.max_update_norm:
            raise Refused(f"its update moves the weights by {math.sqrt(squared):.3g}, more than the "
                          f"{limits.max_update_norm:g} allowed")
        metrics = metrics_of(reply)
        _all_finite(metrics)
        _examples(metrics, limits)
        _number(metrics, Metric.TRAIN_LOSS)
        _number(metrics, Metric.UNIT_WEIGHT)
    return check


def evaluation_check(limits: ReplyLimits, name: str = Record.METRICS) -> Check:
    """An evaluation (a calibration reply, or the `evaluation` record of a training reply): finite loss,
    AUC and rates, two equal-length histograms."""
    def check(reply: Message) -> None:
        if name == Record.METRICS:
            _only_records(reply, {Record.METRICS})
        metrics = metrics_of(reply, name)
        _all_finite(metrics)
        _examples(metrics, limits)
        for key, high in ((Metric.LOSS, math.inf), (Metric.AUC, 1.0), (Metric.CHURN_RATE, 1.0)):
            if key in metrics:
                _number(metrics, key, 0.0, high)
        churned = _vector(metrics, Metric.HIST_CHURNED, non_negative=True)
        _vector(metrics, Metric.HIST_STAYED, len(churned), non_negative=True)
    return check


def moments_check(limits: ReplyLimits) -> Check:
    """Feature moments: per feature a count, a sum and a sum of squares, finite and consistent."""
    def check(reply: Message) -> None:
        _only_records(reply, {Record.METRICS})
        metrics = metrics_of(reply)
        count = _vector(metrics, Metric.COUNT, non_negative=True)
        total = _vector(metrics, Metric.SUM, len(count))
        squares = _vector(metrics, Metric.SUM_SQ, len(count), non_negative=True)
        examples = _examples(metrics, limits)
        if np.any(count > examples + 0.5):
            raise Refused("a feature count exceeds the examples it claims")
        spread = squares * np.maximum(count, 1) - total**2  # n * sum(x^2) - (sum x)^2 >= 0, up to rounding
        if np.any(spread < -1e-6 * np.maximum(1.0, squares * np.maximum(count, 1))):
            raise Refused("its sums of squares are smaller than its sums allow")
    return check


def finite_check(limits: ReplyLimits) -> Check:
    """Any other reply (personalisation): finite metrics."""
    def check(reply: Message) -> None:
        _all_finite(metrics_of(reply))
    return check


def usable(replies: Iterable[Message], check: Check, what: str) -> tuple[list[Message], dict[str, str]]:
    """The replies without errors that pass `check`, one per node; and the refused ones' reasons by store."""
    replies = [r for r in replies if not r.has_error()]
    names = store_names(replies)
    good: dict[int, Message] = {}
    refused: dict[str, str] = {}
    for reply in replies:
        node = node_of(reply)
        try:
            if node in good:
                raise Refused("a second reply from the same node")
            check(reply)
        except (Refused, KeyError, TypeError, ValueError) as exc:
            refused[names[node]] = f"{what}: " + (str(exc) if isinstance(exc, Refused) else
                                                  f"unreadable ({type(exc).__name__})")
            log(WARNING, "Refused a reply of node %s (%s): %s", node, names[node], refused[names[node]])
            continue
        good[node] = reply
    return list(good.values()), refused


def checked_replies(kind: str, replies: Iterable[Message], limits: ReplyLimits) -> list[Message]:
    """The usable replies to the moments query or personalisation, their weights bounded in place.
    (Evaluations, in training replies and the calibration, are checked where they are recorded:
    strategy.RoundKeeper.evaluated.)"""
    if kind == STATS.type:
        good, _ = usable(replies, moments_check(limits), kind)
        cap_mass(good, (Metric.COUNT, Metric.SUM, Metric.SUM_SQ), limits)
    else:
        good, _ = usable(replies, finite_check(limits), kind)
    return good


def _cap(values: list[float], ratio: float) -> list[float]:
    """Each value at most `ratio` times the lower median: one store cannot outweigh the others by claiming."""
    if len(values) < 2:
        return values
    lower_median = sorted(values)[(len(values) - 1) // 2]
    ceiling = max(ratio * lower_median, 1.0)
    return [min(v, ceiling) for v in values]


def cap_weights(replies: list[Message], key: str, limits: ReplyLimits) -> dict[str, str]:
    """Bound each reply's averaging weight in place (under differential privacy every weight is 1);
    return, by store, the claims that were cut."""
    metrics = [r.content.metric_records[Record.METRICS] for r in replies]
    names = store_names(replies)
    claimed = [float(m[key]) for m in metrics]  # type: ignore[arg-type]
    used = [1.0] * len(metrics) if key == Metric.UNIT_WEIGHT else _cap(claimed, limits.max_weight_ratio)
    cut = {}
    for reply, record, before, after in zip(replies, metrics, claimed, used):
        record[key] = after
        if after < before:
            cut[names[node_of(reply)]] = f"claimed {key} {before:g}, counted {after:g}"
    return cut


def cap_mass(replies: list[Message], keys: tuple[str, ...], limits: ReplyLimits, name: str = Record.METRICS) -> None:
    """Scale down, in place, a store's histograms (or counts and sums) whose mass outweighs the others
    (in the metric record `name` of each reply)."""
    metrics = [r.content.metric_records[name] for r in replies]
    masses = [float(np.sum(m[keys[0]])) + (float(np.sum(m[keys[1]])) if keys[1] == Metric.HIST_STAYED else 0.0)  # type: ignore[arg-type]
              for m in metrics]
    for record, mass, capped in zip(metrics, masses, _cap(masses, limits.max_weight_ratio)):
        if mass > capped:
            for key in keys:
                record[key] = [float(v) * capped / mass for v in record[key]]


def active_release_auc(state: Path, active_model: str, version: str) -> tuple[str, float] | None:
    """(version, pooled held-out AUC) of the release in service: `active_model`, else this state folder's
    newest earlier release; None when there is none to compare with."""
    candidates = [Path(active_model)] if active_model else [p for p in (state / "release").glob("*")
                                                            if p.name != version]
    found = []
    for folder in candidates:
        try:
            manifest = json.loads((folder / "manifest.json").read_text())
            auc = float(manifest["metrics"]["auc"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if math.isfinite(auc):
            found.append((str(manifest.get("created_at", "")), str(manifest.get("version", folder.name)), auc))
    return max(found)[1:] if found else None


def release_gate(pooled_auc: float, minimum: float, margin: float, active: tuple[str, float] | None) -> None:
    """FederationError unless the model may be released (its pooled held-out AUC is what counts)."""
    if not math.isfinite(pooled_auc) or pooled_auc < minimum:
        raise FederationError(f"not released: the pooled held-out AUC {pooled_auc:.3f} is below {minimum:g}")
    if active is not None and pooled_auc < active[1] - margin:
        raise FederationError(f"not released: the pooled held-out AUC {pooled_auc:.3f} is below the active "
                              f"release {active[0]}'s {active[1]:.3f} by more than {margin:g}")
