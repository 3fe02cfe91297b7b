"""The store's training rows for one federation, kept between the ClientApp's processes.

Numpy only: a store answers the federation's moments query from here without loading torch
(federated_store.py trains on these rows).

Flower starts a fresh ClientApp process for every message, and each one needs
the same rows: the store's censored windows at weekly cutoffs before as-of,
which take far longer to build (features at every cutoff) than to read the
history they come from. So the rows are kept on disk, in the node's cache
folder (node config `cache-dir`, else `$FLWR_HOME/churn-cache` under a
SuperNode), under a key that covers everything they are built from:

- the history before as-of exactly as read from the database (a digest of
  every array `survival_set` sees), so a late ingest of older sales, a
  retention run or a different database gives another key, while today's
  sales (after as-of) do not disturb a running federation;
- as-of, the sampling seed and the row limit;
- the source of the `models` package, so new feature code never reads old rows.

Safely: the folder is the node's own (mode 0700), files are written to a
temporary name and renamed, read without pickle (plain arrays), and a file
that does not load or does not hang together is rebuilt. Only the newest few
entries are kept. Within one process an LRU keeps them in memory as before
(the in-process federation of tests and backtests).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

import models
from models.flower_protocol import DEFAULTS, Node
from models.normalisation import NormStats
from models.store_data import DAY, StoreData, StoreDataError, load_store_data
from models.survival import SurvivalDataError, SurvivalSet, holdout_split, survival_set

MAX_ROWS = 100_000  # a uniform sample of the store's rows beyond this (see server/train.py)
CACHE_ENTRIES = 3  # files kept in the cache folder (a federation needs one)
FORMAT = b"churn-training-rows/1"
_ARRAYS = ("values", "event_days", "window_days", "window_visits", "last_visit", "cutoff", "customer")
_MEMORY: OrderedDict[str, SurvivalSet] = OrderedDict()
_MEMORY_SIZE = 8
_CODE_DIGEST: list[bytes] = []


class StoreUnavailable(Exception):
    """This store cannot take part as asked (no database, history too short...); the message says why."""


@dataclass(frozen=True)
class LocalSettings:
    """What the server asks of a store for one message, plus the box's own limits."""

    as_of_day: int
    horizon_days: int
    local_epochs: int = DEFAULTS.local_epochs
    learning_rate: float = DEFAULTS.learning_rate
    batch_size: int = DEFAULTS.batch_size
    seed: int = DEFAULTS.seed
    threads: int | None = None  # from the SuperNode's node config: the device's limit
    max_train_rows: int | None = None
    cache_dir: Path | None = None  # where the rows are kept between the ClientApp's processes


def _feed(digest: Any, value: Any) -> None:
    """Feed `value` into `digest` unambiguously (type, length and content of every part)."""
    if is_dataclass(value) and not isinstance(value, type):
        digest.update(type(value).__name__.encode())
        for item in fields(value):
            digest.update(item.name.encode())
            _feed(digest, getattr(value, item.name))
    elif isinstance(value, np.ndarray):
        digest.update(f"{value.dtype.str}{value.shape}".encode())
        if value.dtype == object:
            for element in value.ravel():
                _feed(digest, str(element))
        else:
            digest.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (list, tuple)):
        digest.update(f"seq{len(value)}".encode())
        for element in value:
            _feed(digest, element)
    else:
        text = repr(value).encode()
        digest.update(f"{type(value).__name__}:{len(text)}:".encode() + text)


def _code_digest() -> bytes:
    """The source of the `models` package: the code the rows are built by."""
    if not _CODE_DIGEST:
        digest = hashlib.sha256()
        package = Path(models.__file__).resolve().parent
        for path in sorted(package.glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        _CODE_DIGEST.append(digest.digest())
    return _CODE_DIGEST[0]


def rows_key(seen: StoreData, as_of_day: int, seed: int, max_rows: int) -> str:
    """The cache key of the rows built from `seen` (the history before as-of)."""
    digest = hashlib.sha256(FORMAT)
    digest.update(_code_digest())
    _feed(digest, (as_of_day, seed, max_rows))
    _feed(digest, seen)
    return digest.hexdigest()


def cache_folder(node_config: dict[str, Any]) -> Path | None:
    """Where this node keeps rows: its `cache-dir`, else its Flower home's; None outside a SuperNode."""
    if node_config.get(Node.CACHE_DIR):
        return Path(str(node_config[Node.CACHE_DIR]))
    home = os.environ.get("FLWR_HOME")
    return Path(home) / "churn-cache" if home else None


def _write(folder: Path, key: str, rows: SurvivalSet) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    arrays = {name: getattr(rows, name) for name in _ARRAYS}
    stores = np.unique(rows.store.astype(str))
    arrays.update(store=stores, as_of_day=np.array([rows.as_of_day]), notes=np.array(rows.notes, dtype=str),
                  key=np.array([key]))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".rows-", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **arrays)
        os.replace(temporary, folder / f"rows-{key[:40]}.npz")
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    for old in sorted(folder.glob("rows-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)[CACHE_ENTRIES:]:
        old.unlink(missing_ok=True)


def _read(folder: Path, key: str) -> SurvivalSet | None:
    """The cached rows, or None when absent or unusable (then they are rebuilt and rewritten)."""
    path = folder / f"rows-{key[:40]}.npz"
    try:
        with np.load(path, allow_pickle=False) as archive:
            if str(archive["key"][0]) != key or len(archive["store"]) != 1:
                return None
            arrays = [archive[name] for name in _ARRAYS]
            n = len(arrays[1])
            if arrays[0].ndim != 2 or any(len(a) != n for a in arrays):
                return None
            store = np.full(n, str(archive["store"][0]), dtype=object)
            rows = SurvivalSet(*arrays, store, as_of_day=int(archive["as_of_day"][0]),
                               notes=[str(note) for note in archive["notes"]])
        os.utime(path)  # the newest used survives the pruning
        return rows
    except (OSError, KeyError, ValueError, IndexError, EOFError, zipfile.BadZipFile):
        return None


def store_rows(db_path: Path, as_of_day: int, seed: int, folder: Path | None,
               max_rows: int = MAX_ROWS) -> tuple[SurvivalSet, bool]:
    """(the store's training rows at `as_of_day`, whether they came from a cache)."""
    if not db_path.exists():
        raise StoreUnavailable(f"store database {db_path} does not exist")
    try:
        seen = load_store_data(db_path).until(as_of_day * DAY)
    except StoreDataError as exc:
        raise StoreUnavailable(str(exc)) from None
    key = rows_key(seen, as_of_day, seed, max_rows)
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        return _MEMORY[key], True
    rows = _read(folder, key) if folder is not None else None
    cached = rows is not None
    if rows is None:
        try:
            rows = survival_set(seen, as_of_day, max_rows=max_rows, seed=seed)
        except SurvivalDataError as exc:
            raise StoreUnavailable(str(exc)) from None
        if folder is not None:
            try:
                _write(folder, key, rows)
            except OSError:
                pass  # a full or read-only disk costs the next process the rebuild, nothing else
    _MEMORY[key] = rows
    if len(_MEMORY) > _MEMORY_SIZE:
        _MEMORY.popitem(last=False)
    return rows, cached


class StoreRows:
    """The rows one store trains and evaluates on: its customers but a held-out tenth, and that tenth."""

    def __init__(self, db_path: str | Path, settings: LocalSettings):
        started = time.perf_counter()
        self.settings = settings
        rows, _ = store_rows(Path(db_path), settings.as_of_day, settings.seed, settings.cache_dir)
        self.store_id = str(rows.store[0])
        try:
            self.train_rows, self.holdout = holdout_split(rows, seed=settings.seed)
        except SurvivalDataError as exc:
            raise StoreUnavailable(f"store {self.store_id}: {exc}") from None
        if settings.max_train_rows and len(self.train_rows) > settings.max_train_rows:
            keep = np.random.default_rng(settings.seed).permutation(len(self.train_rows))[: settings.max_train_rows]
            self.train_rows = self.train_rows.subset(np.sort(keep))
        # Reading the database and building the cutoffs (or loading them from the cache): store work,
        # but not training (the server tells it apart from the federation's own overhead).
        self.prepare_seconds = time.perf_counter() - started

    def moments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per feature: count, sum and sum of squares of the training rows (for the shared normalisation)."""
        return NormStats.moments(self.train_rows.values)
