"""Reading back what ingest rejected, so an operator can fix the rows and ingest them again."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from .store_db import StoreDatabase
from .store_queries import runs


class QuarantineError(Exception):
    """An export that cannot be written as asked."""


@dataclass(frozen=True)
class QuarantinedRow:
    source: str
    line: int
    reason: str
    detail: str
    raw: str  # undecodable bytes shown as \xNN escapes
    created_at: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def list_quarantine(
    store: StoreDatabase, *, source: str | None = None, limit: int | None = None
) -> list[QuarantinedRow]:
    """Rejected rows, oldest first, optionally for one source file name."""
    name = None if source is None else Path(source).name
    return [
        QuarantinedRow(**{**row, "raw": bytes(row["raw"]).decode("utf-8", "backslashreplace")})
        for row in runs.list_quarantined(store, name, limit)
    ]


def export_quarantine(store: StoreDatabase, source: str, out: Path) -> int:
    """Write one source's rejected rows as they arrived, under the source's CSV header.

    The result is a file the operator can correct in any editor and feed back to
    `edge-agent ingest` (or `ingest-events`, `ingest-identities`); the rows that
    were fine are already in and count as duplicates if the whole file is
    ingested again. Rows whose text was not kept (a line of an events or
    identities file that could not be split into columns) are not written: the
    original file holds them.
    """
    name = Path(source).name
    header_row = runs.latest_header(store, name)
    if header_row is None:
        raise QuarantineError(f"no ingest of a file named {name!r} is recorded")
    rows = runs.quarantined_raw(store, name)
    if out.exists():
        raise QuarantineError(f"{out} exists; choose a new file name")
    with open(out, "wb") as handle:
        if header_row[0]:
            handle.write(header_row[0].encode() + b"\n")
        for raw in rows:
            handle.write(raw + b"\n")
    return len(rows)
