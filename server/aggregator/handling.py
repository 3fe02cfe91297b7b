"""From MQTT messages to database rows: check each message against its topic, write a batch in one transaction.

No MQTT here: the service hands over what it received and gets back, per
store, the alert ids to acknowledge and the store's contiguous seq. A message
that breaks its schema becomes a dead letter with the reason; so does one the
database refuses, or one that trips an error nobody foresaw: the batch is
then written message by message so that only the bad one is set aside. Only a
database that cannot be reached (OperationalError) fails the batch, and then
nothing is acknowledged and the broker delivers it again. Whatever its bytes,
a message ends stored or dead-lettered: one message can never stop the loop.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from models.contracts import ContractError, parse_store_topic
from models.payloads import PayloadError, alert_id_of, check_alert_message, check_metrics, check_status

from ..central import (
    CentralDb, StoredAlerts, driver_message, record_dead_letter, record_metrics, record_status, store_alerts,
    utc_now_iso,
)



@dataclass(frozen=True)
class Incoming:
    """One message as received: where it came on and its bytes."""

    topic: str
    payload: bytes
    retain: bool = False


@dataclass(frozen=True)
class Checked:
    message: Incoming
    kind: str  # alert, status, metrics or dead
    chain: str = ""
    store_id: str = ""
    document: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    keep_body: bool = True  # False: the dead letter keeps the body's digest and size only


@dataclass
class BatchOutcome:
    stored: dict[tuple[str, str], StoredAlerts] = field(default_factory=dict)
    dead_letters: list[tuple[str, str]] = field(default_factory=list)  # (topic, reason)
    rejected: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)  # store -> alerts refused
    statuses: int = 0
    metrics: int = 0

    @property
    def new(self) -> int:
        return sum(len(s.new) for s in self.stored.values())

    @property
    def duplicates(self) -> int:
        return sum(len(s.duplicates) for s in self.stored.values())

    def merge(self, other: BatchOutcome) -> None:
        for key, part in other.stored.items():
            mine = self.stored.setdefault(key, StoredAlerts())
            mine.new += part.new
            mine.duplicates += part.duplicates
            mine.contiguous_seq = max(mine.contiguous_seq, part.contiguous_seq)
        self.dead_letters += other.dead_letters
        for key, items in other.rejected.items():
            self.rejected.setdefault(key, []).extend(items)
        self.statuses += other.statuses
        self.metrics += other.metrics


def check_message(message: Incoming) -> Checked:
    """Which kind of message this is and whether it keeps its contract; never raises.

    The chain and the store come from the topic (the broker's ACL vouches for it), never from the payload.
    """
    try:
        chain, store_id, leaf = parse_store_topic(message.topic)
        if leaf == "alert/churn":
            return Checked(message, "alert", chain, store_id, check_alert_message(message.payload, chain, store_id))
        if leaf == "status":
            return Checked(message, "status", chain, store_id, check_status(message.payload, chain, store_id))
        if leaf == "metrics":
            return Checked(message, "metrics", chain, store_id, check_metrics(message.payload, chain, store_id))
        return Checked(message, "dead", reason=f"no aggregator handles topic leaf {leaf[:80]!r}")
    except (PayloadError, ContractError) as exc:
        return Checked(message, "dead", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 (bytes nobody foresaw: set aside, never stop the loop)
        return Checked(message, "dead", reason=f"unreadable message ({type(exc).__name__})")


def _raw_text(checked: Checked) -> str:
    try:
        return checked.message.payload.decode("utf-8")
    except UnicodeDecodeError:
        return json.dumps(checked.document)


def _note_rejection(outcome: BatchOutcome, checked: Checked) -> None:
    """A refused alert with a readable id, on a store's alert topic: tell that store, so it stops resending."""
    try:
        chain, store_id, leaf = parse_store_topic(checked.message.topic)
    except ContractError:
        return
    alert_id = alert_id_of(checked.message.payload) if leaf == "alert/churn" else None
    if alert_id is not None:
        outcome.rejected.setdefault((chain, store_id), []).append({"alert_id": alert_id, "reason": checked.reason})


def _write(connection: Connection, batch: list[Checked], now: str) -> BatchOutcome:
    outcome = BatchOutcome()
    by_store: dict[tuple[str, str], list[Checked]] = defaultdict(list)
    dead = []
    for checked in batch:
        if checked.kind == "dead":
            dead.append(checked)
        else:
            by_store[(checked.chain, checked.store_id)].append(checked)
    # Rows are locked in one order in every aggregator (dead letters, then store by store and within a store
    # seq, alerts, status, metrics): concurrent aggregators queue instead of deadlocking.
    for checked in sorted(dead, key=lambda c: (c.message.topic, c.message.payload)):
        record_dead_letter(connection, checked.message.topic, checked.reason, checked.message.payload, now,
                           keep_body=checked.keep_body)
        outcome.dead_letters.append((checked.message.topic, checked.reason))
        _note_rejection(outcome, checked)
    for (chain, store_id), items in sorted(by_store.items()):
        alerts = [(c.document, _raw_text(c)) for c in items if c.kind == "alert"]
        if alerts:
            outcome.stored[(chain, store_id)] = store_alerts(connection, chain, store_id, alerts, now)
        for c in (c for c in items if c.kind == "status"):  # kind by kind, each in arrival order
            record_status(connection, chain, store_id, c.document, now, c.message.retain)
            outcome.statuses += 1
        for c in (c for c in items if c.kind == "metrics"):
            record_metrics(connection, chain, store_id, c.document, now)
            outcome.metrics += 1
    return outcome


def handle_batch(db: CentralDb, messages: list[Incoming]) -> BatchOutcome:
    """Check and store a batch in one transaction; raises OperationalError when the database is unavailable."""
    batch = [check_message(m) for m in messages]
    now = utc_now_iso()
    try:
        with db.write() as connection:
            return _write(connection, batch, now)
    except OperationalError:
        raise
    except Exception as exc:  # noqa: BLE001 (the database refused one of them, or a value broke the code)
        if len(batch) > 1:
            return _one_by_one(db, batch, now)
        reason = f"the database refused it: {driver_message(exc)}" if batch[0].kind != "dead" else batch[0].reason
        refused = Checked(batch[0].message, "dead", reason=reason[:500])
        try:
            with db.write() as connection:
                return _write(connection, [refused], now)
        except OperationalError:
            raise
        except Exception:  # noqa: BLE001 (even the dead letter was refused: keep its digest, not its bytes)
            with db.write() as connection:
                return _write(connection, [Checked(refused.message, "dead", reason=reason[:400], keep_body=False)],
                              now)


def _one_by_one(db: CentralDb, batch: list[Checked], now: str) -> BatchOutcome:
    outcome = BatchOutcome()
    for checked in batch:
        outcome.merge(handle_batch(db, [checked.message]))
    return outcome

