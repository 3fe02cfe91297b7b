"""Reading back what ingest rejected, so an operator can fix the rows and ingest them again."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from .store_db import StoreDatabase


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
    sql = "SELECT source, line, reason, detail, raw, created_at FROM quarantine"
    params: list[object] = []
    if source is not None:
        sql += " WHERE source = ?"
        params.append(Path(source).name)
    sql += " ORDER BY quarantine_id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [
        QuarantinedRow(src, line, reason, detail, bytes(raw).decode("utf-8", "backslashreplace"), at)
        for src, line, reason, detail, raw, at in store.conn.execute(sql, params)
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
    header_row = store.conn.execute(
        "SELECT header FROM ingest_runs WHERE source = ? ORDER BY run_id DESC LIMIT 1", (name,)
    ).fetchone()
    if header_row is None:
        raise QuarantineError(f"no ingest of a file named {name!r} is recorded")
    rows = store.conn.execute(
        "SELECT raw FROM quarantine WHERE source = ? AND length(raw) > 0 ORDER BY line", (name,)
    ).fetchall()
    if out.exists():
        raise QuarantineError(f"{out} exists; choose a new file name")
    with open(out, "wb") as handle:
        if header_row[0]:
            handle.write(header_row[0].encode() + b"\n")
        for (raw,) in rows:
            handle.write(bytes(raw) + b"\n")
    return len(rows)
