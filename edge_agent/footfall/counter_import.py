"""A people counter's CSV export (timestamp, entries, exits) into the footfall buckets.

A store with a commercial door counter needs no camera pipeline: its export
lands in the same `footfall` table, under its own source name, and feeds the
same hourly store context. Each row replaces the stored bucket with the same
(source, bucket_start), so re-importing a file, or an export that overlaps the
last one, counts nothing twice. A bad row is quarantined with its line and
reason (see `edge-agent quarantine`); it never stops the file.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from ..ingest.validate import RowRejected, TimestampParser
from ..store_db import StoreDatabase, open_store_db, utc_now_iso, write_transaction
from ..store_queries import runs
from .settings import FootfallError
from .storage import replace_counts

DEFAULT_SOURCE = "counter"
DEFAULT_BUCKET_SECONDS = 3600
# Column names seen in counter exports, matched case-insensitively.
COLUMNS = {
    "timestamp": ("timestamp", "datetime", "date_time", "time", "start", "period_start"),
    "entries": ("entries", "in", "ins", "enters", "entered"),
    "exits": ("exits", "out", "outs", "exited"),
}


class FootfallImportError(FootfallError):
    """A counter export that cannot be read at all; nothing is written."""


@dataclass
class ImportCounts:
    """Rows of one or more exports; accepted + duplicates + quarantined == rows."""

    rows: int = 0
    accepted: int = 0  # buckets stored new or changed
    duplicates: int = 0  # buckets already stored with the same counts
    quarantined: int = 0
    entries: int = 0
    exits: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, other: ImportCounts) -> None:
        for name in ("rows", "accepted", "duplicates", "quarantined", "entries", "exits"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.reasons.update(other.reasons)

    def as_dict(self) -> dict[str, object]:
        return {
            "rows": self.rows, "accepted": self.accepted, "duplicates": self.duplicates,
            "quarantined": self.quarantined, "reasons": dict(sorted(self.reasons.items())),
            "entries": self.entries, "exits": self.exits,
        }


@dataclass
class ImportReport:
    source: str
    totals: ImportCounts = field(default_factory=ImportCounts)
    files: list[tuple[str, ImportCounts, int]] = field(default_factory=list)  # (file, counts, bucket seconds)

    def as_dict(self) -> dict[str, object]:
        return {
            **self.totals.as_dict(),
            "source": self.source,
            "files": [{"file": f, **c.as_dict(), "bucket_seconds": b} for f, c, b in self.files],
        }


@dataclass
class _Row:
    line: int
    raw: bytes
    bucket_start: int
    entries: int
    exits: int


def _open(path: Path) -> BinaryIO:
    with open(path, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if compressed else open(path, "rb")  # type: ignore[return-value]


def _columns(path: Path, header_line: bytes) -> tuple[list[str], dict[str, int]]:
    try:
        text = header_line.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FootfallImportError(f"{path}: header line is not UTF-8 text") from None
    header = [c.strip().strip('"').strip().lower() for c in next(csv.reader([text]), [])]
    index: dict[str, int] = {}
    for name, aliases in COLUMNS.items():
        found = [header.index(a) for a in aliases if a in header]
        if not found:
            shown = "".join(ch if ch.isprintable() else "?" for ch in ", ".join(c for c in header if c))[:200] or "nothing"
            raise FootfallImportError(
                f"{path}: not a people-counter CSV: header lacks {name} (found: {shown})"
            )
        index[name] = found[0]
    return header, index


def _count(value: str, name: str) -> int:
    text = value.strip()
    if not text:
        raise RowRejected(f"missing {name}", f"{name} is empty")
    try:
        number = float(text)
    except ValueError:
        raise RowRejected(f"bad {name}", f"{text[:40]!r} is not a count") from None
    if number != number or number < 0 or number != int(number):
        raise RowRejected(f"bad {name}", f"{text[:40]!r} is not a whole number of people")
    return int(number)


def _read_rows(
    path: Path, store: StoreDatabase, now_utc: datetime | None
) -> tuple[list[str], list[_Row], list[tuple[int, bytes, str, str]], int]:
    """(header, good rows, rejected (line, raw, reason, detail), rows read)."""
    timestamps = TimestampParser(store.zone, now_utc)
    good: list[_Row] = []
    rejected: list[tuple[int, bytes, str, str]] = []
    seen: dict[int, int] = {}
    rows = 0
    try:
        with _open(path) as handle:
            lines = iter(handle)
            first = next(lines, b"")
            if not first.strip():
                raise FootfallImportError(f"{path}: file is empty")
            header, index = _columns(path, first)
            for line_no, raw_line in enumerate(lines, start=2):
                raw = raw_line.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                rows += 1
                try:
                    good.append(_parse_row(raw, line_no, header, index, timestamps, seen))
                except RowRejected as rejection:
                    rejected.append((line_no, raw, rejection.reason, rejection.detail))
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise FootfallImportError(f"{path}: no such file") from None
        rejected.append((rows + 2, b"", "unreadable data", f"unreadable after line {rows + 1}: {exc}"))
    return header, good, rejected, rows


def _parse_row(
    raw: bytes, line_no: int, header: list[str], index: dict[str, int], timestamps: TimestampParser, seen: dict[int, int]
) -> _Row:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RowRejected("not UTF-8", "row holds bytes that are not UTF-8") from None
    try:
        fields = next(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise RowRejected("malformed CSV", str(exc)) from None
    if len(fields) != len(header):
        raise RowRejected("wrong field count", f"expected {len(header)} fields, found {len(fields)}")
    stamp = fields[index["timestamp"]].strip()
    start, has_time = timestamps.parse(stamp)
    if not has_time:
        raise RowRejected("bad timestamp", f"{stamp!r} has no time of day")
    if start in seen:
        raise RowRejected("repeated timestamp", f"{stamp!r} already given on line {seen[start]}")
    row = _Row(line_no, raw, start, _count(fields[index["entries"]], "entries"), _count(fields[index["exits"]], "exits"))
    seen[start] = line_no
    return row


def bucket_length(starts: list[int]) -> int:
    """The export's period: the shortest step between its timestamps (an hour if it has one row)."""
    ordered = sorted(set(starts))
    steps = [b - a for a, b in zip(ordered, ordered[1:]) if b > a]
    return min(min(steps), 86400) if steps else DEFAULT_BUCKET_SECONDS


def _fingerprint(name: str, line: int, raw: bytes) -> str:
    return hashlib.blake2b(f"footfall\x1f{name}\x1f{line}\x1f".encode() + raw, digest_size=16).hexdigest()


def import_counter_file(
    store: StoreDatabase, path: Path, *, source: str = DEFAULT_SOURCE, now_utc: datetime | None = None
) -> tuple[ImportCounts, int]:
    """Import one export in one transaction; returns its counts and its bucket length."""
    if not path.exists():
        raise FootfallImportError(f"{path}: no such file")
    if not path.is_file():
        raise FootfallImportError(f"{path}: not a regular file")
    header, good, rejected, rows = _read_rows(path, store, now_utc)
    seconds = bucket_length([r.bucket_start for r in good])
    now = utc_now_iso()
    counts = ImportCounts(rows=rows, quarantined=len(rejected), reasons=Counter(r[2] for r in rejected))
    counts.entries = sum(r.entries for r in good)
    counts.exits = sum(r.exits for r in good)
    with write_transaction(store.conn) as conn:
        run_id = runs.start_run(store, source=path.name, format="footfall-csv", header=",".join(header),
                                input="footfall", finished=True)
        counts.accepted = replace_counts(conn, source, [(r.bucket_start, seconds, r.entries, r.exits) for r in good])
        counts.duplicates = len(good) - counts.accepted
        runs.quarantine_rows(conn, [(run_id, path.name, line, reason, detail, raw, _fingerprint(path.name, line, raw),
                                     now) for line, raw, reason, detail in rejected])
        runs.add_to_run(conn, run_id, counts.rows, counts.accepted, counts.duplicates, counts.quarantined)
    return counts, seconds


def check_counter_files(paths: list[Path]) -> None:
    """Refuse the whole batch if one file is missing, empty or not a counter export."""
    for path in paths:
        if not path.is_file():
            raise FootfallImportError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
        try:
            with _open(path) as handle:
                first = handle.readline()
        except (OSError, EOFError) as exc:
            raise FootfallImportError(f"{path}: cannot read ({exc})") from None
        if not first.strip():
            raise FootfallImportError(f"{path}: file is empty")
        _columns(path, first)


def import_counter_files(
    store: StoreDatabase, paths: list[Path], *, source: str = DEFAULT_SOURCE, now_utc: datetime | None = None
) -> ImportReport:
    """Check every file first (nothing is written if one is unusable), then import each."""
    check_counter_files(paths)
    report = ImportReport(source)
    for path in paths:
        counts, seconds = import_counter_file(store, path, source=source, now_utc=now_utc)
        report.totals.add(counts)
        report.files.append((str(path), counts, seconds))
    return report


def import_counter_exports(
    db: Path,
    paths: list[Path],
    *,
    source: str = DEFAULT_SOURCE,
    chain: str | None = None,
    store_id: str | None = None,
    timezone: str | None = None,
) -> ImportReport:
    """`edge-agent ingest-footfall`: check the files, then open (or create) the database and import."""
    check_counter_files(paths)  # before a database is created for nothing
    with open_store_db(db, chain=chain, store_id=store_id, timezone=timezone) as store:
        return import_counter_files(store, paths, source=source)
