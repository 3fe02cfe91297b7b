"""The store's Flower ClientApp: a thin adapter from Flower messages to StoreTrainer.

The SuperNode on the store box runs it with `--node-config
'store-db="/var/lib/churn/store.db"'` (and optionally `threads=2
max-train-rows=50000 models-dir="/var/lib/churn/models"`). Message types:

- `query.stats`: feature moments for the shared normalisation;
- `train`: local epochs from the global weights (FedProx when asked);
- `evaluate`: loss, AUC and a logit histogram on the newest labelled cutoff;
- `query.calibrate`: the same histogram, for the shared calibration;
- `train.personalise`: fine-tune the head locally, report whether it helps.

Client-side clipping for differential privacy (Flower's `fixedclipping_mod`)
applies to `train` whenever the server sends a clipping norm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod

from models.network import NormStats

from .federated_store import LocalSettings, StoreTrainer, StoreTrainingError

CLIPPING_KEY = "clipping_norm"  # what Flower's DP strategy wrapper sends
ERROR_CODE = 4242


def clip_when_asked(msg: Message, context: Context, call_next: Any) -> Message:
    """Flower's client-side clipping, only for training messages that carry a norm."""
    config = msg.content.config_records.get("config") if msg.content.config_records else None
    if msg.metadata.message_type.startswith("train") and config is not None and CLIPPING_KEY in config:
        return fixedclipping_mod(msg, context, call_next)  # type: ignore[no-any-return]
    return call_next(msg, context)  # type: ignore[no-any-return]


app = ClientApp(mods=[clip_when_asked])


def _settings(config: ConfigRecord, node_config: dict[str, Any]) -> LocalSettings:
    """The server's request, bounded by what this device can afford (its node config)."""
    defaults = LocalSettings(0, 0)
    epochs = int(config.get("local-epochs", defaults.local_epochs))
    if "max-local-epochs" in node_config:
        epochs = min(epochs, int(node_config["max-local-epochs"]))
    return LocalSettings(
        as_of_day=int(config["as-of-day"]),
        horizon_days=int(config["horizon-days"]),
        local_epochs=epochs,
        learning_rate=float(config.get("learning-rate", defaults.learning_rate)),
        batch_size=int(node_config.get("batch-size", config.get("batch-size", defaults.batch_size))),
        seed=int(config.get("seed", 0)),
        threads=int(node_config["threads"]) if "threads" in node_config else None,
        max_train_rows=int(node_config["max-train-rows"]) if "max-train-rows" in node_config else None,
    )


def _trainer(msg: Message, context: Context) -> tuple[StoreTrainer, ConfigRecord]:
    if "store-db" not in context.node_config:
        raise StoreTrainingError("the SuperNode's --node-config lacks store-db")
    config = msg.content["config"]
    return StoreTrainer(str(context.node_config["store-db"]), _settings(config, dict(context.node_config))), config


def _norm(config: ConfigRecord) -> NormStats:
    return NormStats(
        np.asarray(config["feature-mean"], dtype=np.float32), np.asarray(config["feature-std"], dtype=np.float32)
    )


def _weights(msg: Message) -> dict[str, np.ndarray]:
    arrays = msg.content["arrays"]
    return dict(zip(arrays.keys(), arrays.to_numpy_ndarrays()))


def _reply(msg: Message, trainer: StoreTrainer, metrics: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> Message:
    # Every store weighs the same under differential privacy (Flower's accountant needs it).
    metrics = {**metrics, "unit-weight": 1.0}
    content = RecordDict({"metrics": MetricRecord(metrics), "store": ConfigRecord({"store-id": trainer.store_id})})
    if arrays is not None:
        content["arrays"] = ArrayRecord({name: Array(value) for name, value in arrays.items()})
    return Message(content=content, reply_to=msg)


def _guarded(handler: Any) -> Any:
    """A store that cannot take part answers with a clear error instead of crashing the node."""

    def wrapper(msg: Message, context: Context) -> Message:
        try:
            return handler(msg, context)  # type: ignore[no-any-return]
        except StoreTrainingError as exc:
            return Message(Error(code=ERROR_CODE, reason=str(exc)), reply_to=msg)

    wrapper.__name__ = handler.__name__
    wrapper.__doc__ = handler.__doc__
    return wrapper


@app.query("stats")
@_guarded
def stats(msg: Message, context: Context) -> Message:
    trainer, _ = _trainer(msg, context)
    count, total, squares = trainer.moments()
    return _reply(msg, trainer, {
        "num-examples": len(trainer.train_rows), "count": count.tolist(), "sum": total.tolist(), "sum-sq": squares.tolist(),
    })


@app.train()
@_guarded
def train(msg: Message, context: Context) -> Message:
    trainer, config = _trainer(msg, context)
    new_weights, metrics = trainer.train(_weights(msg), _norm(config), float(config.get("proximal-mu", 0.0)))
    return _reply(msg, trainer, metrics, new_weights)


@app.evaluate()
@_guarded
def evaluate(msg: Message, context: Context) -> Message:
    trainer, config = _trainer(msg, context)
    return _reply(msg, trainer, trainer.evaluate(_weights(msg), _norm(config)))


@app.query("calibrate")
@_guarded
def calibrate(msg: Message, context: Context) -> Message:
    trainer, config = _trainer(msg, context)
    return _reply(msg, trainer, trainer.evaluate(_weights(msg), _norm(config)))


@app.train("personalise")
@_guarded
def personalise(msg: Message, context: Context) -> Message:
    trainer, config = _trainer(msg, context)
    models_dir = context.node_config.get("models-dir")
    out_dir = Path(str(models_dir)) / "personal" if models_dir else None
    metrics = trainer.personalise(
        _weights(msg), _norm(config),
        (float(config["calibration-slope"]), float(config["calibration-intercept"])),
        int(config.get("personalise-epochs", 5)), out_dir,
    )
    return _reply(msg, trainer, metrics)
