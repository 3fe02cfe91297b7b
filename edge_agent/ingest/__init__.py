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
from .contract import EVENTS, IDENTITIES, POS, Contract
from .events import EventsInput
from .identities import IdentitiesInput
from .identity_key import IdentityKey, IdentityKeyError, store_identity_key
from .loader import DEFAULT_BATCH_SIZE, IngestCounts, Input, ingest_source
from .pos import PosInput
from .source import IngestError, SourceFile, inspect_source

__all__ = [
    "DEFAULT_BATCH_SIZE", "EVENTS", "IDENTITIES", "POS", "Contract", "IdentityKey", "IdentityKeyError",
    "IngestCounts", "IngestError", "IngestReport", "SourceFile", "ingest_files", "inspect_source",
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


class _Inputs:
    """One Input per contract for a call; the identity key is read only when a file needs it."""

    def __init__(self, store: StoreDatabase, key: IdentityKey | None, key_file: Path | None):
        self.store, self.key, self.key_file = store, key, key_file
        self.made: dict[str, Input] = {}

    def _key(self) -> IdentityKey:
        if self.key is None:
            self.key = store_identity_key(self.store, self.key_file)
        return self.key

    def __call__(self, contract: Contract) -> Input:
        if contract.input not in self.made:
            if contract is EVENTS:
                self.made[contract.input] = EventsInput(self._key())
            elif contract is IDENTITIES:
                self.made[contract.input] = IdentitiesInput(self._key())
            else:
                self.made[contract.input] = PosInput()
        return self.made[contract.input]


def ingest_files(
    store: StoreDatabase,
    paths: Sequence[str | Path | SourceFile],
    *,
    contract: Contract | None = POS,
    key: IdentityKey | None = None,
    key_file: Path | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[SourceFile, int], None] | None = None,
    now_utc: datetime | None = None,
) -> IngestReport:
    """Check every file first (nothing is written if one is unusable), then ingest each.

    `contract` None: each file under the contract its header speaks (the drop
    folder). Events and identities need the box's identity key: `key`, else
    the one in `key_file`, else the one beside the database (created on first use).
    """
    sources = [p if isinstance(p, SourceFile) else inspect_source(p, contract) for p in paths]
    inputs = _Inputs(store, key, key_file)
    for source in sources:  # a key that cannot be read stops the call before any file is read
        inputs(source.contract)
    report = IngestReport()
    for source in sources:
        progress = (lambda done, s=source: on_progress(s, done)) if on_progress else None
        counts = ingest_source(
            store, source, inputs(source.contract), batch_size=batch_size, progress=progress, now_utc=now_utc
        )
        report.totals.add(counts)
        report.files.append((str(source.path), counts))
    return report
