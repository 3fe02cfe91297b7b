"""/api/events: live updates as server-sent events, from one cheap poll of the database per process.

Whatever writes the database (the aggregator, another console process, this
one) is seen the same way: each second one poller reads the rows whose time
stamp moved past its watermark (new alerts, handled alerts, store status and
metrics, recorded model rounds) and hands them to every open stream, each
keeping only the stores its account may see. The page refreshes the view an
event concerns.

Commit order is not time-stamp order (a slow writer can commit a row stamped
before a row already seen), so each poll looks `LAG_SECONDS` behind its
watermark and remembers what it has already announced in that window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Column, Select, func, select
from starlette.concurrency import run_in_threadpool

from ..central import CentralDb
from ..central.tables import alert_work, alerts, model_releases, model_rounds, store_metrics, stores
from .deps import CurrentSession, Db
from .sessions import Session, resolve_session

LAG_SECONDS = 5.0
HEARTBEAT_SECONDS = 15.0
SESSION_CHECK_SECONDS = 30.0
BATCH = 200

router = APIRouter(prefix="/api", tags=["events"])


@dataclass(frozen=True)
class Event:
    kind: str  # alert / work / store / rounds
    data: dict[str, Any]
    store: tuple[str, str] | None = None  # None: for everyone

    def encode(self) -> str:
        return f"event: {self.kind}\ndata: {json.dumps(self.data, default=str)}\n\n"


@dataclass
class Watermark:
    """What one stream has announced: its highest stamp, and the keys seen within the lag before it."""

    since: str = ""
    seen: dict[str, str] = field(default_factory=dict)

    def window_start(self, lag: float = LAG_SECONDS) -> str:
        if not self.since:
            return ""
        moment = datetime.fromisoformat(self.since.replace("Z", "+00:00")) - timedelta(seconds=lag)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def fresh(self, rows: list[tuple[str, str]], lag: float = LAG_SECONDS) -> list[str]:
        """The keys among (key, stamp) rows not announced with that stamp yet; remembers them."""
        new = [key for key, stamp in rows if self.seen.get(key) != stamp]
        self.seen.update(rows)
        if rows:
            self.since = max(self.since, *(stamp for _, stamp in rows))
        start = self.window_start(lag)
        self.seen = {k: s for k, s in self.seen.items() if s >= start}
        return new


@dataclass(frozen=True)
class Stream:
    kind: str
    stamp: Column[Any]
    key: Callable[[Any], str]
    query: Select[Any]
    event: Callable[[Any], Event]


STREAMS = (
    Stream("alert", alerts.c.received_at, lambda r: f"{r.chain}/{r.store_id}/{r.alert_id}",
           select(alerts.c.alert_id, alerts.c.chain, alerts.c.store_id, alerts.c.level, alerts.c.risk_score,
                  alerts.c.received_at),
           lambda r: Event("alert", {"alert_id": r.alert_id, "chain": r.chain, "store_id": r.store_id,
                                     "level": r.level, "risk_score": r.risk_score}, (r.chain, r.store_id))),
    Stream("work", alert_work.c.updated_at, lambda r: f"{r.chain}/{r.store_id}/{r.alert_id}",
           select(alert_work.c.alert_id, alert_work.c.state, alert_work.c.result, alert_work.c.updated_by,
                  alert_work.c.updated_at, alert_work.c.chain, alert_work.c.store_id),
           lambda r: Event("work", {"alert_id": r.alert_id, "chain": r.chain, "store_id": r.store_id,
                                    "state": r.state, "result": r.result, "by": r.updated_by}, (r.chain, r.store_id))),
    Stream("store", stores.c.updated_at, lambda r: f"{r.chain}/{r.store_id}",
           select(stores.c.chain, stores.c.store_id, stores.c.state, stores.c.updated_at),
           lambda r: Event("store", {"chain": r.chain, "store_id": r.store_id, "state": r.state},
                           (r.chain, r.store_id))),
    Stream("metrics", store_metrics.c.received_at, lambda r: f"{r.chain}/{r.store_id}",
           select(store_metrics.c.chain, store_metrics.c.store_id, store_metrics.c.received_at),
           lambda r: Event("store", {"chain": r.chain, "store_id": r.store_id}, (r.chain, r.store_id))),
    Stream("rounds", model_rounds.c.recorded_at, lambda r: f"{r.version}#{r.round}",
           select(model_rounds.c.version, model_rounds.c.round, model_rounds.c.recorded_at, model_releases.c.chain)
           .select_from(model_rounds.join(model_releases, model_releases.c.version == model_rounds.c.version)),
           lambda r: Event("rounds", {"version": r.version, "round": r.round})),
)


class ChangeFeed:
    """The database side: one watermark per stream, polled synchronously (in a worker thread)."""

    def __init__(self, db: CentralDb):
        self.db = db
        self.marks = {s.kind: Watermark() for s in STREAMS}

    def prime(self) -> None:
        """Start from what is there now: only later changes are announced."""
        with self.db.read() as connection:
            for stream in STREAMS:
                mark = self.marks[stream.kind]
                mark.since = connection.execute(select(func.max(stream.stamp))).scalar() or ""
                rows = connection.execute(stream.query.where(stream.stamp >= mark.window_start())).all()
                mark.seen = {stream.key(r): r._mapping[stream.stamp.name] for r in rows}

    def poll(self) -> list[Event]:
        events: list[Event] = []
        with self.db.read() as connection:
            for stream in STREAMS:
                mark = self.marks[stream.kind]
                rows = connection.execute(stream.query.where(stream.stamp >= mark.window_start())
                                          .order_by(stream.stamp).limit(BATCH)).all()
                by_key = {stream.key(r): r for r in rows}
                fresh = mark.fresh([(k, r._mapping[stream.stamp.name]) for k, r in by_key.items()])
                events.extend(stream.event(by_key[k]) for k in fresh)
        return events


class Broadcaster:
    """One poller per process, started with the first listener, handing events to every open stream."""

    def __init__(self, db: CentralDb, poll_seconds: float):
        self.feed = ChangeFeed(db)
        self.poll_seconds = poll_seconds
        self.listeners: set[asyncio.Queue[Event]] = set()
        self.task: asyncio.Task[None] | None = None
        self.starting = asyncio.Lock()

    async def subscribe(self) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=1000)
        async with self.starting:  # two first listeners at once start one poller
            if self.task is None or self.task.done():
                await run_in_threadpool(self.feed.prime)
                self.task = asyncio.create_task(self._run())
            self.listeners.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self.listeners.discard(queue)

    async def _run(self) -> None:
        while self.listeners:
            await asyncio.sleep(self.poll_seconds)
            try:
                events = await run_in_threadpool(self.feed.poll)
            except Exception:  # noqa: BLE001 (a database hiccup: try again next tick)
                continue
            for queue in list(self.listeners):
                for event in events:
                    with contextlib.suppress(asyncio.QueueFull):  # a stuck reader misses some; it refreshes anyway
                        queue.put_nowait(event)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def _stream(request: Request, session: Session, broadcaster: Broadcaster, db: CentralDb) -> AsyncIterator[str]:
    account = session.account
    queue = await broadcaster.subscribe()
    try:
        yield "retry: 3000\n\n: connected\n\n"
        last_beat = last_check = time.monotonic()
        while not await request.is_disconnected():
            try:
                event = await asyncio.wait_for(queue.get(), timeout=1.0)
                if event.store is None or account.sees(*event.store):
                    yield event.encode()
            except TimeoutError:
                pass
            now = time.monotonic()
            if now - last_check > SESSION_CHECK_SECONDS:
                last_check = now
                if await run_in_threadpool(resolve_session, db, session.token) is None:
                    yield "event: logout\ndata: {}\n\n"
                    return
            if now - last_beat > HEARTBEAT_SECONDS:
                last_beat = now
                yield ": keep-alive\n\n"
    finally:
        broadcaster.unsubscribe(queue)


@router.get("/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "Events `alert`, `work`, `store`, `rounds` (JSON data), and `logout`"}})
def events(request: Request, session: CurrentSession,
           db: Db) -> StreamingResponse:
    """Server-sent events: new alerts, alert handling, store status and metrics, model rounds."""
    broadcaster = request.app.state.broadcaster
    return StreamingResponse(_stream(request, session, broadcaster, db), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
