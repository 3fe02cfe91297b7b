"""Ingestion of the store's exports: POS sales, customer events and identity links.

CSV or JSON Lines, plain or gzip, into the store database. Every row read ends
up exactly once as accepted, duplicate or quarantined, so
`accepted + duplicates + quarantined == rows` holds for every file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..store_db import StoreDatabase
from .contract import POS, Contract
from .loader import DEFAULT_BATCH_SIZE, IngestCounts, ingest_source
from .pos import PosInput
from .source import IngestError, SourceFile, inspect_source

__all__ = [
    "DEFAULT_BATCH_SIZE", "POS", "Contract", "IngestCounts", "IngestError", "IngestReport", "SourceFile", "ingest_files", "inspect_source",
]


@dataclass
class IngestReport:
    """Totals over all files plus each file's own counts."""

    totals: IngestCounts = field(default_factory=IngestCounts)
    files: list[tuple[str, IngestCounts]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        result = self.totals.as_dict()
        result["files"] = [{"file": name, **counts.as_dict()} for name, counts in self.files]
        return result


def ingest_files(
    store: StoreDatabase,
    paths: Sequence[str | Path | SourceFile],
    *,
    contract: Contract | None = POS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[SourceFile, int], None] | None = None,
    now_utc: datetime | None = None,
) -> IngestReport:
    """Check every file first (nothing is written if one is unusable), then ingest each."""
    sources = [p if isinstance(p, SourceFile) else inspect_source(p, contract) for p in paths]
    report = IngestReport()
    for source in sources:
        progress = (lambda done, s=source: on_progress(s, done)) if on_progress else None
        counts = ingest_source(
            store, source, PosInput(), batch_size=batch_size, progress=progress, now_utc=now_utc
        )
        report.totals.add(counts)
        report.files.append((str(source.path), counts))
    return report
