"""The drop folder: POS exports land here (copied by the till system or an operator) and get ingested.

A file is read once it has stopped growing for `settle_seconds` (a copy in
progress is left alone), then moved to `done/` after its last batch has
committed, or to `failed/` with a `.reason` file beside it when it cannot be
ingested at all. A crash between the commit and the move costs nothing: the
file is ingested again at the next start and every row is a duplicate.
Hidden files and `*.tmp`/`*.part` files are ignored (copy under such a name,
then rename, for an atomic hand-over).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..ingest import IngestCounts, IngestError, ingest_files
from ..store_db import StoreDatabase

log = logging.getLogger("edge_agent.dropbox")
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".reason")


@dataclass
class DropboxTotals:
    files_done: int = 0
    files_failed: int = 0
    rows: IngestCounts = field(default_factory=IngestCounts)


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    if not target.exists():
        return target
    stamp = time.strftime("%Y%m%dT%H%M%S")
    return folder / f"{Path(name).stem}.{stamp}{''.join(Path(name).suffixes)}"


class Dropbox:
    def __init__(self, folder: Path, settle_seconds: float):
        self.folder = folder
        self.done = folder / "done"
        self.failed = folder / "failed"
        for path in (self.folder, self.done, self.failed):
            path.mkdir(parents=True, exist_ok=True)
        self.settle_seconds = settle_seconds
        self._seen: dict[Path, tuple[int, float, float]] = {}  # path -> (size, mtime, first seen unchanged)
        self.totals = DropboxTotals()

    def ready(self, now: float | None = None) -> list[Path]:
        """Files that have not changed for `settle_seconds`, oldest first."""
        now = time.monotonic() if now is None else now
        ready, present = [], set()
        for path in sorted(self.folder.iterdir(), key=lambda p: p.stat().st_mtime if p.exists() else 0):
            if not path.is_file() or path.name.startswith(".") or path.name.endswith(IGNORED_SUFFIXES):
                continue
            present.add(path)
            stat = path.stat()
            size, mtime = stat.st_size, stat.st_mtime
            previous = self._seen.get(path)
            if previous is None or previous[:2] != (size, mtime):
                self._seen[path] = (size, mtime, now)
            elif now - previous[2] >= self.settle_seconds:
                ready.append(path)
        self._seen = {p: v for p, v in self._seen.items() if p in present}
        return ready

    def ingest(self, store: StoreDatabase, path: Path) -> IngestCounts | None:
        try:
            counts = ingest_files(store, [path]).totals
        except IngestError as exc:
            target = _free_name(self.failed, path.name)
            shutil.move(str(path), target)
            target.with_name(target.name + ".reason").write_text(str(exc) + "\n")
            self.totals.files_failed += 1
            log.warning("%s refused: %s", path.name, exc, extra={"file": path.name})
            return None
        shutil.move(str(path), _free_name(self.done, path.name))
        self._seen.pop(path, None)
        self.totals.files_done += 1
        self.totals.rows.add(counts)
        log.info("%s ingested", path.name, extra={"file": path.name, **counts.as_dict()})
        return counts

    def poll(self, store: StoreDatabase) -> int:
        """Ingest every settled file once; return how many were handled."""
        handled = 0
        for path in self.ready():
            self.ingest(store, path)
            handled += 1
        return handled
