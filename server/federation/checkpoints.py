"""Per-round checkpoints of the global model, so a crashed federation resumes where it stopped.

Each round writes `round-NNNN.npz` (trainable weights and the federation's
normalisation) and `round-NNNN.json` (metrics), then points `latest.json` at
them; every file is written to a temporary name and renamed, so a kill -9 at
any moment leaves the previous checkpoint intact. Plain numpy and JSON: no
pickles to trust when loading.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.network import NormStats

NORM_MEAN, NORM_STD = "__norm_mean__", "__norm_std__"


@dataclass
class Checkpoint:
    round: int
    weights: dict[str, np.ndarray]
    norm: NormStats
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per finished round


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class CheckpointStore:
    """Checkpoints of one federation (one fingerprint) in one folder."""

    def __init__(self, root: Path, fingerprint: str):
        self.folder = Path(root) / "checkpoints" / fingerprint
        self.folder.mkdir(parents=True, exist_ok=True)

    def save(self, checkpoint: Checkpoint) -> Path:
        stem = f"round-{checkpoint.round:04d}"
        arrays = {**checkpoint.weights, NORM_MEAN: checkpoint.norm.mean, NORM_STD: checkpoint.norm.std}
        buffer = _npz_bytes(arrays)
        _write_atomically(self.folder / f"{stem}.npz", buffer)
        _write_atomically(self.folder / f"{stem}.json", json.dumps(
            {"round": checkpoint.round, "history": checkpoint.history}, indent=2, default=float).encode())
        _write_atomically(self.folder / "latest.json", json.dumps({"round": checkpoint.round, "stem": stem}).encode())
        return self.folder / f"{stem}.npz"

    def latest(self) -> Checkpoint | None:
        pointer = self.folder / "latest.json"
        if not pointer.exists():
            return None
        stem = json.loads(pointer.read_text())["stem"]
        with np.load(self.folder / f"{stem}.npz") as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads((self.folder / f"{stem}.json").read_text())
        norm = NormStats(arrays.pop(NORM_MEAN), arrays.pop(NORM_STD))
        return Checkpoint(int(meta["round"]), arrays, norm, meta["history"])

    def rounds(self) -> list[int]:
        return sorted(int(p.stem.split("-")[1]) for p in self.folder.glob("round-*.npz"))


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()
