"""The store's Flower ClientApp: a thin adapter from Flower messages to StoreTrainer.

The SuperNode on the store box runs it with `--node-config
'store-db="/var/lib/churn/store.db"'` (and optionally `threads=2
max-train-rows=50000 cache-dir="/var/lib/churn/cache" models-dir="/var/lib/churn/models"`).
Message kinds and keys: models/flower_protocol.py.

- `query.stats`: feature moments for the shared normalisation;
- `train`: local epochs from the global weights (FedProx when asked); when the
  server asks (`evaluate-incoming`), the reply also carries the evaluation of
  the weights received, measured before training on them;
- `query.calibrate`: loss, AUC and logit histograms of the final weights, for
  the last round's metrics and the shared calibration;
- `train.personalise`: fine-tune the head locally, report whether it helps;
- `evaluate`: as `query.calibrate` (servers of earlier releases send it).

Flower starts a fresh process for every message, so this module imports only
Flower's message types: the store's rows (numpy, from the node's cache:
training_rows.py) and the trainer (torch) are imported by the handlers that
need them; the moments query never loads torch. Every reply says how long the store spent on what
(`startup-seconds`, `prepare-seconds`, `evaluate-seconds`, `train-seconds`),
so the server can tell the stores' work from the federation's overhead.

Client-side clipping for differential privacy (Flower's `fixedclipping_mod`)
applies to `train` whenever the server sends a clipping norm.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod

from models.flower_protocol import (
    CALIBRATE, DEFAULTS, PERSONALISE, STATS, Config, Metric, Node, Record, StoreKey,
)

if TYPE_CHECKING:
    import numpy as np

    from models.normalisation import NormStats

    from .federated_store import StoreTrainer
    from .training_rows import LocalSettings, StoreRows

ERROR_CODE = 4242
CLIENTAPP_COMMAND = "flwr-clientapp"  # what a SuperNode's SuperExec starts for each message


def process_age() -> float | None:
    """Seconds since this process started (Linux), None where that cannot be read."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rpartition(")")[2].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def clip_when_asked(msg: Message, context: Context, call_next: Any) -> Message:
    """Flower's client-side clipping, only for training messages that carry a norm."""
    config = msg.content.config_records.get(Record.CONFIG) if msg.content.config_records else None
    if msg.metadata.message_type.startswith("train") and config is not None and Config.CLIPPING_NORM in config:
        return fixedclipping_mod(msg, context, call_next)  # type: ignore[no-any-return]
    return call_next(msg, context)  # type: ignore[no-any-return]


app = ClientApp(mods=[clip_when_asked])


def _settings(config: ConfigRecord, node_config: dict[str, Any]) -> LocalSettings:
    """The server's request, bounded by what this device can afford (its node config)."""
    from .training_rows import LocalSettings, cache_folder

    epochs = int(config.get(Config.LOCAL_EPOCHS, DEFAULTS.local_epochs))  # type: ignore[arg-type]
    if Node.MAX_LOCAL_EPOCHS in node_config:
        epochs = min(epochs, int(node_config[Node.MAX_LOCAL_EPOCHS]))
    batch_size = node_config.get(Node.BATCH_SIZE, config.get(Config.BATCH_SIZE, DEFAULTS.batch_size))
    return LocalSettings(
        as_of_day=int(config[Config.AS_OF_DAY]),  # type: ignore[arg-type]
        horizon_days=int(config[Config.HORIZON_DAYS]),  # type: ignore[arg-type]
        local_epochs=epochs,
        learning_rate=float(config.get(Config.LEARNING_RATE, DEFAULTS.learning_rate)),  # type: ignore[arg-type]
        batch_size=int(batch_size),  # type: ignore[arg-type]
        seed=int(config.get(Config.SEED, DEFAULTS.seed)),  # type: ignore[arg-type]
        threads=int(node_config[Node.THREADS]) if Node.THREADS in node_config else None,
        max_train_rows=int(node_config[Node.MAX_TRAIN_ROWS]) if Node.MAX_TRAIN_ROWS in node_config else None,
        cache_dir=cache_folder(node_config),
    )


def _timing() -> dict[str, float]:
    """How long the process took to get here (starting, Flower's imports, fetching the message, ours),
    when Flower started it for this message; nothing when the app runs inside another process (in-process
    federations of backtests and tests)."""
    age = process_age() if Path(sys.argv[0]).name == CLIENTAPP_COMMAND else None
    return {} if age is None else {Metric.STARTUP_SECONDS: age}


def _store_db(context: Context) -> str:
    from .training_rows import StoreUnavailable

    if Node.STORE_DB not in context.node_config:
        raise StoreUnavailable(f"the SuperNode's --node-config lacks {Node.STORE_DB}")
    return str(context.node_config[Node.STORE_DB])


def _rows(msg: Message, context: Context) -> tuple[StoreRows, dict[str, float]]:
    """The store's rows, without the network (numpy only): for the moments query."""
    from .training_rows import StoreRows

    timing = _timing()
    rows = StoreRows(_store_db(context), _settings(msg.content[Record.CONFIG], dict(context.node_config)))
    return rows, {**timing, Metric.PREPARE_SECONDS: rows.prepare_seconds}


def _trainer(msg: Message, context: Context) -> tuple[StoreTrainer, ConfigRecord, dict[str, float]]:
    """The store's trainer for this message, its config, and the timings so far."""
    from .federated_store import StoreTrainer  # torch: only once a message needs it

    timing = _timing()
    config = msg.content[Record.CONFIG]
    trainer = StoreTrainer(_store_db(context), _settings(config, dict(context.node_config)))
    return trainer, config, {**timing, Metric.PREPARE_SECONDS: trainer.prepare_seconds}


def _norm(config: ConfigRecord) -> NormStats:
    import numpy as np

    from models.normalisation import NormStats

    return NormStats(np.asarray(config[Config.FEATURE_MEAN], dtype=np.float32),
                     np.asarray(config[Config.FEATURE_STD], dtype=np.float32))


def _weights(msg: Message) -> dict[str, np.ndarray]:
    arrays = msg.content[Record.ARRAYS]
    return dict(zip(arrays.keys(), arrays.to_numpy_ndarrays()))


def _reply(msg: Message, trainer: StoreTrainer | StoreRows, metrics: dict[str, Any],
           arrays: dict[str, np.ndarray] | None = None, evaluation: dict[str, Any] | None = None) -> Message:
    # Every store weighs the same under differential privacy (Flower's accountant needs it).
    metrics = {**metrics, Metric.UNIT_WEIGHT: 1.0}
    content = RecordDict({Record.METRICS: MetricRecord(metrics),
                          Record.STORE: ConfigRecord({StoreKey.STORE_ID: trainer.store_id})})
    if arrays is not None:
        content[Record.ARRAYS] = ArrayRecord({name: Array(value) for name, value in arrays.items()})
    if evaluation is not None:
        content[Record.EVALUATION] = MetricRecord(evaluation)
    return Message(content=content, reply_to=msg)


def _guarded(handler: Any) -> Any:
    """A store that cannot take part answers with a clear error instead of crashing the node."""

    def wrapper(msg: Message, context: Context) -> Message:
        from .training_rows import StoreUnavailable

        try:
            return handler(msg, context)  # type: ignore[no-any-return]
        except StoreUnavailable as exc:
            return Message(Error(code=ERROR_CODE, reason=str(exc)), reply_to=msg)

    wrapper.__name__ = handler.__name__
    wrapper.__doc__ = handler.__doc__
    return wrapper


@app.query(STATS.action)
@_guarded
def stats(msg: Message, context: Context) -> Message:
    rows, timing = _rows(msg, context)
    count, total, squares = rows.moments()
    return _reply(msg, rows, {
        Metric.EXAMPLES: len(rows.train_rows), Metric.COUNT: count.tolist(), Metric.SUM: total.tolist(),
        Metric.SUM_SQ: squares.tolist(), **timing,
    })


@app.train()
@_guarded
def train(msg: Message, context: Context) -> Message:
    trainer, config, timing = _trainer(msg, context)
    weights, norm = _weights(msg), _norm(config)
    evaluation = None
    if bool(config.get(Config.EVALUATE_INCOMING, False)):
        started = time.perf_counter()
        evaluation = trainer.evaluate(weights, norm)
        timing[Metric.EVALUATE_SECONDS] = time.perf_counter() - started
    new_weights, metrics = trainer.train(weights, norm, float(config.get(Config.PROXIMAL_MU, 0.0)))  # type: ignore[arg-type]
    return _reply(msg, trainer, {**metrics, **timing}, new_weights, evaluation)


def _evaluate(msg: Message, context: Context) -> Message:
    trainer, config, timing = _trainer(msg, context)
    started = time.perf_counter()
    metrics = trainer.evaluate(_weights(msg), _norm(config))
    timing[Metric.EVALUATE_SECONDS] = time.perf_counter() - started
    return _reply(msg, trainer, {**metrics, **timing})


@app.query(CALIBRATE.action)
@_guarded
def calibrate(msg: Message, context: Context) -> Message:
    return _evaluate(msg, context)


@app.evaluate()
@_guarded
def evaluate(msg: Message, context: Context) -> Message:
    return _evaluate(msg, context)


@app.train(PERSONALISE.action)
@_guarded
def personalise(msg: Message, context: Context) -> Message:
    trainer, config, _ = _trainer(msg, context)
    models_dir = context.node_config.get(Node.MODELS_DIR)
    out_dir = Path(str(models_dir)) / "personal" if models_dir else None
    metrics = trainer.personalise(
        _weights(msg), _norm(config),
        (float(config[Config.CALIBRATION_SLOPE]), float(config[Config.CALIBRATION_INTERCEPT])),  # type: ignore[arg-type]
        int(config.get(Config.PERSONALISE_EPOCHS, DEFAULTS.personalise_epochs)), out_dir,  # type: ignore[arg-type]
    )
    return _reply(msg, trainer, metrics)
