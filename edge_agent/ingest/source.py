"""Opening an export (POS, customer events, identities): gzip or plain, CSV or JSON Lines, checked before
anything is written, and recognised by its header when the caller does not say which contract it speaks."""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from .contract import POS, Contract, recognise

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
SNIFF_BYTES = 64 * 1024

Format = Literal["csv", "jsonl"]


class IngestError(Exception):
    """A file that cannot be ingested at all; its message is the one-line reason."""


@dataclass(frozen=True)
class SourceFile:
    """An export that passed the up-front checks for its contract."""

    path: Path
    format: Format
    compressed: bool
    size: int
    header: tuple[str, ...] = ()  # normalised CSV column names; empty for JSON Lines
    contract: Contract = POS

    @property
    def name(self) -> str:
        return self.path.name


def _open_binary(path: Path, compressed: bool) -> BinaryIO:
    if compressed:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _first_bytes(path: Path, compressed: bool) -> bytes:
    """The start of the file; a gzip stream cut short is fine as long as its start reads."""
    chunks: list[bytes] = []
    with _open_binary(path, compressed) as handle:
        try:
            while sum(map(len, chunks)) < SNIFF_BYTES:
                chunk = handle.read(4096)
                if not chunk:
                    break
                chunks.append(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            if not chunks:
                raise IngestError(f"{path}: cannot read compressed data ({exc})") from exc
    return b"".join(chunks)


def normalise_column(name: str) -> str:
    return name.strip().strip('"').strip().lower()


def _csv_columns(path: Path, head: bytes) -> tuple[str, ...]:
    first_line = head.split(b"\n", 1)[0]
    try:
        text = first_line.decode("utf-8")
    except UnicodeDecodeError:
        raise IngestError(f"{path}: header line is not UTF-8 text") from None
    return tuple(normalise_column(c) for c in next(csv.reader([text]), []))


def _check_header(path: Path, columns: tuple[str, ...], contract: Contract) -> None:
    missing = [c for c in contract.required if c not in columns]
    if contract.any_of and not set(contract.any_of) & set(columns):
        missing.append(" or ".join(contract.any_of))
    if missing:
        # Name only the contract's own columns: the first line of a file that is no export at all (a key, a
        # password file linked in) must never be copied into a reason file or a log.
        known = [c for c in columns if c in contract.columns]
        raise IngestError(f"{path}: not a {contract.name} CSV: header lacks {', '.join(missing)} "
                          f"({len(columns)} column(s); known: {', '.join(known) or 'none'})")


def _check_spoken(path: Path, contract: Contract | None, spoken: Contract) -> None:
    """Refuse a file of another input given to this one (an events export given to the identities ingest
    would otherwise quarantine every row as linking nothing). POS ingest judges its files as it always has:
    a CSV that passes its header check speaks POS anyway, and a JSON Lines row at a time."""
    if contract is not None and contract is not POS and spoken is not contract:
        raise IngestError(f"{path}: its columns are those of a {spoken.name} export, not of {contract.name} "
                          f"(docs/ingest.md)")


def _first_json_object(path: Path, head: bytes) -> dict[str, object] | None:
    """The first row of a JSON Lines file; None when it is longer than the sniff window."""
    first_line = head.lstrip().split(b"\n", 1)[0]
    try:
        first = json.loads(first_line)
    except (ValueError, RecursionError):
        if len(head) == SNIFF_BYTES and b"\n" not in head.lstrip():
            return None  # a first line longer than the sniff window: judge it row by row
        raise IngestError(f"{path}: first line is not a JSON object") from None
    if not isinstance(first, dict):
        raise IngestError(f"{path}: expected JSON Lines (one object per line)")
    return first


def inspect_source(path_like: str | Path, contract: Contract | None = POS) -> SourceFile:
    """Check a file can be ingested under `contract` (None: the one its header speaks); raise IngestError
    with a one-line reason if not."""
    path = Path(path_like)
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    if not path.is_file():
        raise IngestError(f"{path}: not a regular file")
    with open(path, "rb") as handle:
        compressed = handle.read(2) == GZIP_MAGIC
    head = _first_bytes(path, compressed)
    if head.startswith(UTF8_BOM):
        head = head[len(UTF8_BOM) :]
    if not head.strip():
        raise IngestError(f"{path}: file is empty")
    size = path.stat().st_size
    stripped = head.lstrip()
    try:
        if stripped.startswith(b"["):
            raise IngestError(f"{path}: a JSON array; expected JSON Lines (one object per line)")
        if stripped.startswith(b"{"):
            first = _first_json_object(path, head)
            spoken = recognise(tuple(first)) if first is not None else contract or POS
            _check_spoken(path, contract, spoken)
            return SourceFile(path, "jsonl", compressed, size, contract=contract or spoken)
        columns = _csv_columns(path, head)
        spoken = recognise(columns)
        _check_header(path, columns, contract or spoken)
        _check_spoken(path, contract, spoken)
        return SourceFile(path, "csv", compressed, size, columns, contract or spoken)
    except IngestError:
        if b"\x00" in head:  # only now: with a good header, a stray NUL is one row's problem
            raise IngestError(f"{path}: binary content, not a CSV or JSON Lines file") from None
        raise


def open_source(source: SourceFile) -> tuple[BinaryIO, BinaryIO]:
    """(decompressed byte stream, underlying file); the latter's position drives progress."""
    raw_file = open(source.path, "rb")
    if source.compressed:
        return gzip.GzipFile(fileobj=raw_file, mode="rb"), raw_file  # type: ignore[return-value]
    return raw_file, raw_file
