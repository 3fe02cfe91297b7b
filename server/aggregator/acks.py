"""Acknowledgements back to the stores, batched per store so a burst of alerts costs a few messages.

An ack is sent only for alerts already committed to the central database. It
names every alert id stored (or found already stored: the store resent it
because it missed an earlier ack) and `up_to_seq`, the store's contiguous seq,
so a store can clear its outbox by either. Each store's ack leaves at most
`interval` seconds after its first alert id was added.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from models.contracts import ack_topic
from models.payloads import ack

from ..central import StoredAlerts, utc_now_iso

MAX_IDS_PER_ACK = 500  # ~20 KB of ids: well under the payload limit


@dataclass
class _Pending:
    since: float
    alert_ids: dict[str, None] = field(default_factory=dict)  # an ordered set
    up_to_seq: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)


class AckBatcher:
    """Collects committed alert ids per store; `flush` publishes them as `retail.churn-ack/1` messages."""

    def __init__(self, publish: Callable[[str, bytes], None], interval: float = 0.3,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._publish = publish
        self._interval = interval
        self._clock = clock
        self._pending: dict[tuple[str, str], _Pending] = {}

    def add(self, chain: str, store_id: str, stored: StoredAlerts) -> None:
        pending = self._pending.setdefault((chain, store_id), _Pending(self._clock()))
        pending.alert_ids.update(dict.fromkeys(stored.alert_ids))
        pending.up_to_seq = max(pending.up_to_seq, stored.contiguous_seq)

    def reject(self, chain: str, store_id: str, rejected: list[dict[str, str]]) -> None:
        self._pending.setdefault((chain, store_id), _Pending(self._clock())).rejected.extend(rejected)

    def due(self) -> bool:
        now = self._clock()
        return any(now - p.since >= self._interval for p in self._pending.values())

    def flush(self) -> int:
        """Publish every pending ack; return the number of messages."""
        sent = 0
        pending, self._pending = self._pending, {}
        for (chain, store_id), entry in sorted(pending.items()):
            ids = list(entry.alert_ids)
            for start in range(0, max(1, len(ids)), MAX_IDS_PER_ACK):
                rejected = entry.rejected if start == 0 else None
                self._publish(ack_topic(chain, store_id),
                              ack(ids[start:start + MAX_IDS_PER_ACK], entry.up_to_seq or None, utc_now_iso(), rejected))
                sent += 1
        return sent
