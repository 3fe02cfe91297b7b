"""Per-store seq watermarks and gaps: which alerts a store sent that the centre has not seen.

Each store numbers its alert messages 1, 2, 3, ... (`seq`, kept across
restarts). The centre keeps, per store, `max_seq` (the highest seen) and
`contiguous_seq` (every seq up to it is stored: what the ack's `up_to_seq`
says), plus a row per missing range in `seq_gaps`, opened when a seq arrives
past a hole and closed when the hole's last seq arrives. The arithmetic is the
pure `plan_seqs`; `advance_seqs` applies it inside the caller's transaction,
under the store's row lock (`lock_store_seq`) so two aggregators cannot interleave.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Connection, Table, select

from .database import upsert
from .tables import seq_gaps, store_seq


@dataclass
class Gap:
    first: int
    last: int
    id: int | None = None
    detected_at: str | None = None


@dataclass
class SeqPlan:
    max_seq: int
    contiguous_seq: int
    closed: list[Gap] = field(default_factory=list)  # fully filled: close them
    narrowed: list[Gap] = field(default_factory=list)  # same row, fewer seqs missing
    opened: list[Gap] = field(default_factory=list)  # new rows (a new hole, or the far part of a split one)


def _holes(first: int, last: int, filled: list[int]) -> list[tuple[int, int]]:
    """The ranges of first..last left after removing the sorted seqs in `filled`."""
    holes, start = [], first
    for seq in filled:
        if seq > start:
            holes.append((start, seq - 1))
        start = seq + 1
    if start <= last:
        holes.append((start, last))
    return holes


def plan_seqs(max_seq: int, open_gaps: list[Gap], seqs: Iterable[int]) -> SeqPlan:
    """What newly stored `seqs` do to a store's watermark and its open gaps."""
    arrived = sorted(set(seqs))
    plan = SeqPlan(max_seq, 0)
    still_open: list[tuple[int, int]] = []
    for gap in open_gaps:
        filled = [s for s in arrived if gap.first <= s <= gap.last]
        holes = _holes(gap.first, gap.last, filled) if filled else [(gap.first, gap.last)]
        still_open.extend(holes)
        if not holes:
            plan.closed.append(gap)
        elif filled:
            plan.narrowed.append(Gap(*holes[0], id=gap.id, detected_at=gap.detected_at))
            plan.opened.extend(Gap(*hole, detected_at=gap.detected_at) for hole in holes[1:])
    for seq in (s for s in arrived if s > max_seq):
        if seq > plan.max_seq + 1:
            plan.opened.append(Gap(plan.max_seq + 1, seq - 1))
            still_open.append((plan.max_seq + 1, seq - 1))
        plan.max_seq = seq
    plan.contiguous_seq = min(first for first, _ in still_open) - 1 if still_open else plan.max_seq
    return plan


def lock_store_seq(connection: Connection, chain: str, store_id: str, now: str) -> tuple[int, int]:
    """Take the store's row lock (until commit) and return its (max_seq, contiguous_seq).

    Taken before the store's alerts are inserted: writers of one store then
    queue on one row instead of deadlocking on each other's alert ids.
    """
    upsert(connection, store_seq, {"chain": chain, "store_id": store_id, "updated_at": now}, ("chain", "store_id"))
    row = connection.execute(select(store_seq.c.max_seq, store_seq.c.contiguous_seq)
                             .where(_store(store_seq, chain, store_id)).with_for_update()).one()
    return int(row.max_seq), int(row.contiguous_seq)


def _store(table: Table, chain: str, store_id: str) -> ColumnElement[bool]:
    return (table.c.chain == chain) & (table.c.store_id == store_id)


def advance_seqs(connection: Connection, chain: str, store_id: str, locked: tuple[int, int], seqs: list[int],
                 now: str) -> int:
    """Record newly stored seqs of a store locked with lock_store_seq; return its contiguous seq."""
    max_seq, contiguous_seq = locked
    if not seqs:
        return contiguous_seq
    open_gaps = [Gap(row.first_missing, row.last_missing, row.id, row.detected_at) for row in connection.execute(
        select(seq_gaps.c.id, seq_gaps.c.first_missing, seq_gaps.c.last_missing, seq_gaps.c.detected_at)
        .where(_store(seq_gaps, chain, store_id) & seq_gaps.c.closed_at.is_(None)))]
    plan = plan_seqs(max_seq, open_gaps, seqs)
    for gap in plan.closed:
        connection.execute(seq_gaps.update().where(seq_gaps.c.id == gap.id).values(closed_at=now))
    for gap in plan.narrowed:
        connection.execute(seq_gaps.update().where(seq_gaps.c.id == gap.id)
                           .values(first_missing=gap.first, last_missing=gap.last))
    if plan.opened:
        connection.execute(seq_gaps.insert(), [
            {"chain": chain, "store_id": store_id, "first_missing": g.first, "last_missing": g.last,
             "detected_at": g.detected_at or now} for g in plan.opened])
    connection.execute(store_seq.update().where(_store(store_seq, chain, store_id)).values(
        max_seq=plan.max_seq, contiguous_seq=plan.contiguous_seq, updated_at=now))
    return plan.contiguous_seq
