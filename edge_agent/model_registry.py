"""The store box's models: verified installs, a canary check, atomic activation and rollback.

Layout of the models folder:

    versions/<version>/model.onnx, manifest.json, release.json
    current  -> versions/<version>     (what `edge-agent score` uses)
    previous -> versions/<version>     (what rollback returns to)
    history.jsonl                       (every install, canary verdict, activation)

Activation swaps a symlink with os.replace, so a power cut leaves either the
old model or the new one in place, never half of one. Before activating:

- a release not newer than the active model (by its signed manifest's
  `created_at`) is refused, so an old signed release replayed on the topic
  cannot roll a box back; nor is a version an operator rolled back from taken
  again. Going back is an operator's act: `edge-agent model rollback` on the
  box, or a release signed with `churn-server release --rollback`;
- a test prediction on the store's own feature rows (or on synthetic rows
  when it has none) must give a finite number in every output of the graph;
- canary: the candidate and the active model are both scored on the store's
  own latest labelled cutoff; a candidate that is clearly worse is refused.

torch-free: features are numpy, models run in onnxruntime.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from models.days import day_after, day_date
from models.export import MANIFEST_FILE, MODEL_FILE, ModelFileError, read_manifest
from models.labels import DEFAULT_LOOKBACK_DAYS, LabelError, labelled_at
from models.metrics import log_loss, roc_auc
from models.release import VerifiedRelease
from models.store_data import DAY, load_store_data

from .onnx_model import OnnxChurnModel, probe_batch

AUC_TOLERANCE = 0.02  # a candidate this much below the active model's AUC is "clearly worse"
LOSS_TOLERANCE = 0.10  # likewise for log loss, relative
MIN_CANARY_CUSTOMERS = 50


class ModelRegistryError(Exception):
    """An install, activation or rollback that cannot be done as asked."""


@dataclass
class CanaryVerdict:
    accepted: bool
    reason: str
    candidate: dict[str, float] | None = None
    active: dict[str, float] | None = None
    cutoff: str | None = None


class ModelRegistry:
    """One store box's models folder."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.versions = self.root / "versions"
        self.versions.mkdir(parents=True, exist_ok=True)

    # --- what is there -------------------------------------------------------
    def _link(self, name: str) -> str | None:
        link = self.root / name
        return os.readlink(link).split("/")[-1] if link.is_symlink() else None

    @property
    def current(self) -> str | None:
        return self._link("current")

    @property
    def previous(self) -> str | None:
        return self._link("previous")

    def installed(self) -> list[str]:
        return sorted(p.name for p in self.versions.iterdir() if (p / MANIFEST_FILE).exists())

    def path_of(self, version: str) -> Path:
        path = self.versions / version
        if not (path / MANIFEST_FILE).exists():
            raise ModelRegistryError(f"model version {version!r} is not installed")
        return path

    def status(self) -> dict[str, Any]:
        return {"current": self.current, "previous": self.previous, "installed": self.installed(),
                "history": self.history()[-10:]}

    def history(self) -> list[dict[str, Any]]:
        path = self.root / "history.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []

    def _log(self, event: str, **details: Any) -> None:
        entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **details}
        with open(self.root / "history.jsonl", "a") as handle:
            handle.write(json.dumps(entry, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    # --- changes -----------------------------------------------------------------
    def install(self, release: VerifiedRelease) -> Path:
        """Write a verified release into versions/<version> (idempotent)."""
        target = self.versions / release.version
        if (target / MANIFEST_FILE).exists():
            return target
        staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=self.versions))
        (staging / MODEL_FILE).write_bytes(release.onnx)
        (staging / MANIFEST_FILE).write_text(json.dumps(release.manifest, indent=2) + "\n")
        release_doc = {k: v for k, v in release.document.items() if k != "onnx_b64"}
        (staging / "release.json").write_text(json.dumps(release_doc, indent=2) + "\n")
        read_manifest(staging)  # the hash check once more, on disk
        os.replace(staging, target)
        self._log("installed", version=release.version, chain=release.chain)
        return target

    def _point(self, name: str, version: str | None) -> None:
        link = self.root / name
        if version is None:
            if link.is_symlink():
                link.unlink()
            return
        temporary = self.root / f".{name}.tmp"
        if temporary.is_symlink() or temporary.exists():
            temporary.unlink()
        os.symlink(Path("versions") / version, temporary)
        os.replace(temporary, link)

    def activate(self, version: str, reason: str = "manual") -> None:
        self.path_of(version)
        OnnxChurnModel(self.versions / version)  # refuses a corrupt graph before it goes live
        current = self.current
        if current == version:
            return
        if current is not None:
            self._point("previous", current)
        self._point("current", version)
        self._log("activated", version=version, previous=current, reason=reason)

    def rollback(self) -> str:
        previous, current = self.previous, self.current
        if previous is None:
            raise ModelRegistryError("no previous model to roll back to")
        self.path_of(previous)
        self._point("current", previous)
        self._point("previous", current)
        self._log("rolled back", version=previous, from_version=current)
        return previous

    def remove(self, version: str) -> None:
        if version in (self.current, self.previous):
            raise ModelRegistryError(f"{version} is in use")
        shutil.rmtree(self.path_of(version))


def _evaluate(model: OnnxChurnModel, values: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    p = model.predict(values)
    return {"auc": roc_auc(labels, p), "log_loss": log_loss(labels, p), "customers": float(len(labels))}


def canary(registry: ModelRegistry, version: str, store_db: Path, today: date | None = None) -> CanaryVerdict:
    """Compare the candidate with the active model on this store's latest labelled cutoff."""
    candidate = OnnxChurnModel(registry.path_of(version))
    horizon = candidate.horizon_days
    today = today or datetime.now().date()
    bound_day = day_after(today)
    cutoff_day = bound_day - horizon
    data = load_store_data(store_db).until(bound_day * DAY)
    try:
        test = labelled_at(data, cutoff_day, horizon, DEFAULT_LOOKBACK_DAYS)
    except LabelError as exc:
        return CanaryVerdict(True, f"no labelled cutoff to test on ({exc}); accepted on its signature")
    cutoff = day_date(cutoff_day).isoformat()
    if len(test):
        candidate.check_outputs(test.values)  # raises ModelFileError: refused, whatever the canary would say
    if len(test) < MIN_CANARY_CUSTOMERS or test.labels.min() == test.labels.max():
        return CanaryVerdict(True, f"{len(test)} labelled customers at {cutoff}: too few to judge; accepted on its signature",
                             cutoff=cutoff)
    mine = _evaluate(candidate, test.values, test.labels)
    if registry.current is None:
        return CanaryVerdict(mine["auc"] > 0.5, "first model" if mine["auc"] > 0.5 else "no better than chance",
                             mine, None, cutoff)
    active = _evaluate(OnnxChurnModel(registry.path_of(registry.current)), test.values, test.labels)
    worse_auc = mine["auc"] < active["auc"] - AUC_TOLERANCE
    worse_loss = mine["log_loss"] > active["log_loss"] * (1 + LOSS_TOLERANCE)
    if worse_auc or worse_loss:
        what = "AUC" if worse_auc else "log loss"
        return CanaryVerdict(False, f"clearly worse {what} than {registry.current} on {cutoff}", mine, active, cutoff)
    return CanaryVerdict(True, f"not worse than {registry.current} on {cutoff}", mine, active, cutoff)


def _created(manifest: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(manifest["created_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None


def not_newer(registry: ModelRegistry, release: VerifiedRelease) -> str | None:
    """Why `release` must not replace the active model without an operator's say, or None."""
    if release.rollback:
        return None
    if any(e.get("event") == "rolled back" and e.get("from_version") == release.version for e in registry.history()):
        return f"an operator rolled back from {release.version}"
    current = registry.current
    if current is None:
        return None
    try:
        active = read_manifest(registry.path_of(current))
    except (ModelRegistryError, ModelFileError):
        return None  # the active model is unusable: any verified release is better
    theirs, ours = _created(release.manifest), _created(active)
    if ours is not None and (theirs is None or theirs <= ours):
        return (f"not newer than the active {current} (created {release.manifest.get('created_at')}, "
                f"active {active.get('created_at')}); publish it with --rollback to go back")
    return None


def install_and_activate(registry: ModelRegistry, release: VerifiedRelease, store_db: Path,
                         today: date | None = None) -> CanaryVerdict:
    """What the daemon does with each new verified release: install, test, canary, activate or keep."""
    if registry.current == release.version:
        return CanaryVerdict(True, "already active")
    older = not_newer(registry, release)
    if older is not None:
        registry._log("refused", version=release.version, reason=older)
        return CanaryVerdict(False, older)
    registry.install(release)
    try:
        candidate = OnnxChurnModel(registry.path_of(release.version))
        candidate.check_outputs(probe_batch(len(candidate.manifest.get("feature_names") or [])
                                            or int(candidate.session.get_inputs()[0].shape[1])))
        verdict = canary(registry, release.version, store_db, today)
    except ModelFileError as exc:
        verdict = CanaryVerdict(False, str(exc))
    registry._log("canary", version=release.version, **asdict(verdict))
    if verdict.accepted:
        registry.activate(release.version, reason=verdict.reason)
    return verdict


__all__ = ["CanaryVerdict", "ModelRegistry", "ModelRegistryError", "ModelFileError", "canary", "install_and_activate"]
