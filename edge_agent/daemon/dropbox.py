"""The drop folder: exports land here (copied by the till system or an operator) and get ingested.

Each file is ingested under the contract its header speaks (POS sales,
customer events or identity links; see edge_agent/ingest/contract.py), so the
till, the service desk and the CRM can share one folder.

A file is read once it has stopped changing for `settle_seconds` (a copy in
progress is left alone). After its last batch has committed it stays where it
is for another `settle_seconds`: a file that changed meanwhile (a writer that
paused longer than the settle time, then went on) is simply read again (every
row already stored is a duplicate, so nothing is counted twice) and only a
file unchanged since it was read is moved to `done/`. A file that cannot be
ingested at all goes to `failed/` with a `.reason` file beside it, and so does
a file whose bytes trip an error nobody foresaw: the folder never jams.

Only regular files are read. A symbolic link is moved to `failed/` as it is,
never followed (it could point anywhere on the box); reasons and logs never
quote a file's content. Hidden files and `*.tmp`/`*.part` files are ignored:
till integrators should write under such a name and rename when done, which
is atomic (see docs/ingest.md).
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..ingest import IdentityKeyError, IngestCounts, IngestError, ingest_files, inspect_source
from ..store_db import StoreDatabase

log = logging.getLogger("edge_agent.dropbox")
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".reason")
Identity = tuple[int, int, int]  # inode, size, mtime in ns: any write changes it


@dataclass
class DropboxTotals:
    files_done: int = 0
    files_failed: int = 0
    rows: IngestCounts = field(default_factory=IngestCounts)  # every input
    by_input: dict[str, IngestCounts] = field(default_factory=dict)  # ingest_runs.input → its rows


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    if not target.exists() and not target.is_symlink():
        return target
    stamp = time.strftime("%Y%m%dT%H%M%S")
    return folder / f"{Path(name).stem}.{stamp}.{time.monotonic_ns() % 1_000_000}{''.join(Path(name).suffixes)}"


def _identity(path: Path) -> Identity | None:
    """(inode, size, mtime) of a regular file; None for anything else (a link, a folder, nothing)."""
    try:
        info = path.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


class Dropbox:
    def __init__(self, folder: Path, settle_seconds: float):
        self.folder = folder
        self.done = folder / "done"
        self.failed = folder / "failed"
        for path in (self.folder, self.done, self.failed):
            path.mkdir(parents=True, exist_ok=True)
        self.settle_seconds = settle_seconds
        self._seen: dict[Path, tuple[Identity, float]] = {}  # path -> (identity, since when unchanged)
        self._read: dict[Path, tuple[Identity, float]] = {}  # ingested, waiting to prove it stopped changing
        self.totals = DropboxTotals()

    def _candidates(self) -> list[Path]:
        entries = []
        for path in self.folder.iterdir():
            if path.name.startswith(".") or path.name.endswith(IGNORED_SUFFIXES) or path in (self.done, self.failed):
                continue
            if path.is_symlink():
                self._fail(path, "a symbolic link: the drop folder takes regular files only, and never follows a "
                                 "link out of itself")
                continue
            if _identity(path) is not None:
                entries.append(path)
        return sorted(entries, key=lambda p: (_identity(p) or (0, 0, 0))[2])

    def ready(self, now: float | None = None) -> list[Path]:
        """Files that have not changed for `settle_seconds`, oldest first (ingested ones that stayed put go
        to done/ here)."""
        now = time.monotonic() if now is None else now
        ready, present = [], set()
        for path in self._candidates():
            present.add(path)
            identity = _identity(path)
            assert identity is not None
            read = self._read.get(path)
            if read is not None:
                if read[0] != identity:  # written to after it was read: read it again once it settles
                    del self._read[path]
                    log.warning("%s changed after it was read; it will be read again", path.name,
                                extra={"file": path.name})
                elif now - read[1] >= self.settle_seconds:
                    self._finish(path)
                    continue
                else:
                    continue
            previous = self._seen.get(path)
            if previous is None or previous[0] != identity:
                self._seen[path] = (identity, now)
            elif now - previous[1] >= self.settle_seconds:
                ready.append(path)
        self._seen = {p: v for p, v in self._seen.items() if p in present}
        self._read = {p: v for p, v in self._read.items() if p in present}
        return ready

    def ingest(self, store: StoreDatabase, path: Path, now: float | None = None) -> IngestCounts | None:
        """Ingest one settled file; it moves to done/ only once it has stayed unchanged after this read."""
        before = _identity(path)
        if before is None:
            return None  # gone, or replaced by something that is not a regular file: the next poll decides
        try:
            source = inspect_source(path, None)  # the contract its header speaks
            counts = ingest_files(store, [source]).totals
        except IngestError as exc:
            self._fail(path, str(exc).replace(str(path), path.name))
            return None
        except (sqlite3.Error, OSError, IdentityKeyError):
            raise  # the box's problem, not the file's: the loop raises its alarm and the file waits
        except Exception as exc:  # noqa: BLE001 (bytes nobody foresaw: set the file aside, never jam the folder)
            self._fail(path, f"the file could not be read ({type(exc).__name__}); nothing of it was kept")
            return None
        self._seen.pop(path, None)
        self.totals.rows.add(counts)
        self.totals.by_input.setdefault(source.contract.input, IngestCounts()).add(counts)
        after = _identity(path)
        log.info("%s ingested", path.name, extra={"file": path.name, "input": source.contract.input,
                                                  **counts.as_dict()})
        if after is not None:
            self._read[path] = (after, time.monotonic() if now is None else now)
        if after != before:
            log.warning("%s grew while it was read; it will be read again", path.name, extra={"file": path.name})
            self._read.pop(path, None)
        return counts

    def _finish(self, path: Path) -> None:
        self._read.pop(path, None)
        shutil.move(str(path), _free_name(self.done, path.name))
        self.totals.files_done += 1

    def _fail(self, path: Path, reason: str) -> None:
        target = _free_name(self.failed, path.name)
        os.rename(path, target)  # a link is moved as a link: its target is never touched
        target.with_name(target.name + ".reason").write_text(reason + "\n")
        self._seen.pop(path, None)
        self._read.pop(path, None)
        self.totals.files_failed += 1
        log.warning("%s refused: %s", path.name, reason, extra={"file": path.name})

    def poll(self, store: StoreDatabase) -> int:
        """Ingest every settled file once; return how many were handled."""
        handled = 0
        for path in self.ready():
            self.ingest(store, path)
            handled += 1
        return handled
