"""Reading the central database for the command line (and later the console)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from .database import CentralDb
from .tables import ALERT_FIELD_COLUMNS, alerts, dead_letters, seq_gaps, store_seq
from .writes import ALERT_JSON_COLUMNS


def list_alerts(db: CentralDb, *, chain: str | None = None, store_id: str | None = None, level: str | None = None,
                limit: int | None = 100) -> list[dict[str, Any]]:
    """Stored alerts, newest first, as their payload fields that have a column plus `received_at`."""
    query = select(alerts).order_by(alerts.c.received_at.desc(), alerts.c.seq.desc())
    for column, wanted in ((alerts.c.chain, chain), (alerts.c.store_id, store_id), (alerts.c.level, level)):
        if wanted is not None:
            query = query.where(column == wanted)
    if limit:
        query = query.limit(limit)
    with db.read() as connection:
        rows = connection.execute(query).mappings().all()
    return [{**{k: json.loads(row[k]) if k in ALERT_JSON_COLUMNS else row[k] for k in ALERT_FIELD_COLUMNS},
             "control": bool(row["control"]), "received_at": row["received_at"]} for row in rows]


def list_dead_letters(db: CentralDb, *, limit: int | None = 100) -> list[dict[str, Any]]:
    """Messages that could not be used, newest first, with the reason and the raw bytes as text."""
    query = select(dead_letters).order_by(dead_letters.c.last_received_at.desc())
    if limit:
        query = query.limit(limit)
    with db.read() as connection:
        rows = connection.execute(query).mappings().all()
    return [{"id": row["id"], "topic": row["topic"], "reason": row["reason"], "count": row["count"],
             "received_at": row["received_at"], "last_received_at": row["last_received_at"],
             "bytes": row["size"] if row["size"] is not None else len(row["raw"]), "digest": row["digest"],
             "raw": bytes(row["raw"]).decode("utf-8", "replace")} for row in rows]


def store_watermarks(db: CentralDb) -> list[dict[str, Any]]:
    """Per store: contiguous and highest seq, and the seqs still missing."""
    with db.read() as connection:
        marks = connection.execute(select(store_seq).order_by(store_seq.c.chain, store_seq.c.store_id)).mappings().all()
        gaps = connection.execute(select(seq_gaps).where(seq_gaps.c.closed_at.is_(None))
                                  .order_by(seq_gaps.c.first_missing)).mappings().all()
    return [{"chain": m["chain"], "store_id": m["store_id"], "contiguous_seq": m["contiguous_seq"],
             "max_seq": m["max_seq"],
             "open_gaps": [[g["first_missing"], g["last_missing"]] for g in gaps
                           if (g["chain"], g["store_id"]) == (m["chain"], m["store_id"])]} for m in marks]


def count_alerts(db: CentralDb) -> int:
    with db.read() as connection:
        return int(connection.execute(select(func.count()).select_from(alerts)).scalar_one())
