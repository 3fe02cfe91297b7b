"""Hand-made store histories for model tests."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np

from models.store_data import StoreData, make_store_data

EPOCH = datetime(1970, 1, 1)


def day_number(text: str) -> int:
    return (date.fromisoformat(text) - EPOCH.date()).days


def history(rows: list[tuple[str, str, float]], store_id: str = "s1", **columns: list) -> StoreData:
    """rows: (customer id or '' for anonymous, ISO timestamp, amount)."""
    ids = sorted({c for c, _, _ in rows if c})
    index = {c: i for i, c in enumerate(ids)}
    stamps = [datetime.fromisoformat(t) for _, t, _ in rows]
    return make_store_data(
        store_id,
        ids,
        np.array([index[c] if c else -1 for c, _, _ in rows]),
        np.array([int((s - EPOCH).total_seconds()) for s in stamps]),
        np.array([a for _, _, a in rows]),
        has_time=np.array(["T" in t for _, t, _ in rows]),
        **{k: np.array(v, dtype=float) for k, v in columns.items()},
    )


def every(days: int, start: str, end: str, customer: str, amount: float = 20.0, hour: int = 18) -> list[tuple[str, str, float]]:
    first, last = day_number(start), day_number(end)
    return [
        (customer, f"{date.fromordinal(EPOCH.date().toordinal() + d).isoformat()}T{hour:02d}:00:00", amount)
        for d in range(first, last + 1, days)
    ]
