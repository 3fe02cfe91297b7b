"""The box's MQTT session, its link to the central side: alerts out and their acks in, the retained
status, and one handler per further topic the box listens to (model releases).

Alerts: the outbox is sent to the broker and each message kept until the aggregator acknowledges it.

- MQTT v5, QoS 1, a persistent session (clean_start off, a session expiry) so
  the broker holds the aggregator's acks for us while the box is offline;
- messages go in seq order with at most `max_inflight` unconfirmed at a time;
  a PUBACK's reason code is checked (v5 reports ACL refusals there) and a
  refused message stays in the outbox;
- a PUBACK is not delivery: a row leaves the outbox only when the
  aggregator's ack on `.../ack` names it; rows unacknowledged after
  `resend_after` seconds are sent again, with the same alert id;
- the store's status is retained on `.../status`, with a Last Will that says
  `offline` if the box drops without saying goodbye; it is built by its model,
  and details that break the contract are logged, counted and left out (the
  store still says it is there), never sent for the aggregator to dead-letter.

paho calls back on its own thread; those callbacks only put events on queues
(acks and PUBACKs for `drain`, a release for the release worker through its
handler). The database is touched only by the thread that calls `drain`.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from models.contracts import ack_topic, alert_topic, status_topic
from models.payloads import STATUS_SCHEMA, PayloadError, StoreStatus, check_ack
from transport.mqtt import BrokerConfig, BrokerError, make_client, open_session

from .outbox import Outbox
from .store_db import StoreDatabase, utc_now_iso

log = logging.getLogger("edge_agent.publisher")


@dataclass(frozen=True)
class LinkSettings:
    broker: BrokerConfig
    client_id: str
    session_expiry: int = 7 * 86400  # the broker keeps our session (and queued acks) this long
    max_inflight: int = 20
    resend_after: float = 120.0
    batch: int = 500
    puback_timeout: float = 15.0


@dataclass
class DrainResult:
    published: int = 0  # PUBACKed by the broker in this drain
    acked: int = 0  # acknowledged by the aggregator in this drain
    remaining: int = 0  # still waiting for the aggregator
    refused: list[str] = field(default_factory=list)  # reasons the broker gave for refusing

    def as_dict(self) -> dict[str, Any]:
        return {"published": self.published, "acked": self.acked, "remaining": self.remaining, "refused": self.refused}


class StoreLink:
    """One store's MQTT session: alerts out, acks in, status, and `handlers` for the other topics it listens to."""

    def __init__(self, store: StoreDatabase, settings: LinkSettings,
                 status_details: Callable[[], dict[str, Any]] = dict,
                 handlers: Mapping[str, Callable[[bytes], None]] | None = None):
        self.store = store
        self.settings = settings
        self.outbox = Outbox(store)
        self.status_details = status_details
        # topic -> what to do with a message on it, called on paho's thread: it must only hand the bytes over
        self.handlers = dict(handlers or {})
        self.client: mqtt.Client | None = None
        self._pubacks: queue.Queue[tuple[int, Any]] = queue.Queue()
        self._acks: queue.Queue[bytes] = queue.Queue()
        self._ack_event = threading.Event()
        self.last_publish_at: str | None = None
        self.last_publish_time: float | None = None
        self.reannounce = threading.Event()
        self.rejected = 0  # alerts the aggregator refused, since start
        self.invalid = 0  # status or metrics messages that broke their contract and were not sent, since start
        self.last_invalid: str | None = None  # why the last one did

    def note_invalid(self, what: str, error: PayloadError) -> None:
        """A message the box built wrong: said and counted here, never sent for the aggregator to dead-letter."""
        self.invalid += 1
        reason = f"{what}: {error}"
        if reason != self.last_invalid:  # said when it starts or changes, not every few seconds while it lasts
            log.error("not sending the %s: it breaks its contract (%s)", what, error)
        self.last_invalid = reason

    # --- connection ----------------------------------------------------------
    def _status(self, state: str, **extra: Any) -> bytes:
        """`retail.store-status/1`, built by its model: PayloadError if a detail breaks the contract."""
        return json.dumps(StoreStatus.build(schema=STATUS_SCHEMA, state=state, chain=self.store.chain,
                                            store_id=self.store.store_id, at=utc_now_iso(), **extra)).encode()

    def connect(self, timeout: float = 10.0) -> None:
        client = make_client(self.settings.broker, self.settings.client_id)
        client.max_inflight_messages_set(self.settings.max_inflight)
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.will_set(status_topic(self.store.chain, self.store.store_id),
                        self._status("offline", reason="connection lost"), qos=1, retain=True)
        client.on_publish = lambda _c, _u, mid, reason, _p: self._pubacks.put((mid, reason))
        client.on_message = self._on_message
        open_session(client, self.settings.broker, session_expiry=self.settings.session_expiry, timeout=timeout)
        self.client = client
        self._subscribe()
        client.on_connect = self._on_reconnect
        self.publish_status("online")

    def _subscribe(self) -> None:
        assert self.client is not None
        for topic in (ack_topic(self.store.chain, self.store.store_id), *self.handlers):
            self.client.subscribe(topic, qos=1)

    def _on_reconnect(self, _client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _properties: Any) -> None:
        """paho reconnects by itself; a broker that lost our session also lost our subscriptions."""
        if not reason.is_failure:
            if not flags.session_present:
                self._subscribe()
            self.reannounce.set()  # the owner's thread republishes the status (it may read the database)

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == ack_topic(self.store.chain, self.store.store_id):
            self._acks.put(bytes(message.payload))
            self._ack_event.set()
        elif message.topic in self.handlers:
            self.handlers[message.topic](bytes(message.payload))

    def publish_status(self, state: str, **extra: Any) -> None:
        if self.client is None:
            return
        stats = self.outbox.stats()
        details = {"outbox_unacked": stats.unacked, "outbox_unacked_bytes": stats.unacked_bytes,
                   "last_publish_at": self.last_publish_at, **self.status_details(), **extra}
        try:
            payload = self._status(state, **details)
        except PayloadError as error:  # the store still says it is there, without the details that broke
            self.note_invalid("status details", error)
            payload = self._status(state)
        self.client.publish(status_topic(self.store.chain, self.store.store_id), payload, qos=1, retain=True)

    def close(self, reason: str = "stopped") -> None:
        """A goodbye: status offline (retained), then a clean disconnect (no Last Will)."""
        if self.client is None:
            return
        try:
            info = self.client.publish(status_topic(self.store.chain, self.store.store_id),
                                       self._status("offline", reason=reason), qos=1, retain=True)
            info.wait_for_publish(timeout=5)
        except PayloadError as error:  # no goodbye then: the Last Will says offline
            self.note_invalid("goodbye status", error)
        except (RuntimeError, ValueError):
            pass
        self.client.disconnect()
        self.client.loop_stop()
        self.client = None

    # --- work ----------------------------------------------------------------------
    def apply_acks(self) -> int:
        covered = 0
        while True:
            try:
                raw = self._acks.get_nowait()
            except queue.Empty:
                return covered
            try:
                document = check_ack(raw)
            except PayloadError:
                continue  # not ours to fix; the aggregator will ack again after a resend
            covered += self.outbox.mark_acked(document["alert_ids"], document.get("up_to_seq"))
            if document.get("rejected"):
                self.rejected += self.outbox.mark_rejected(document["rejected"])

    def _send(self, result: DrainResult, after_seq: int) -> int | None:
        """Send one batch of what is due past `after_seq`; return its last seq if every message was confirmed."""
        assert self.client is not None
        topic = alert_topic(self.store.chain, self.store.store_id)
        entries = self.outbox.due(self.settings.resend_after, self.settings.batch, after_seq=after_seq)
        pending: dict[int, int] = {}  # mid -> seq
        for entry in entries:
            info = self.client.publish(topic, entry.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
                result.refused.append(f"publish failed locally: {mqtt.error_string(info.rc)}")
                break
            pending[info.mid] = entry.seq
        deadline = time.monotonic() + self.settings.puback_timeout
        confirmed: list[int] = []
        while pending and time.monotonic() < deadline:
            try:
                mid, reason = self._pubacks.get(timeout=0.2)
            except queue.Empty:
                continue
            seq = pending.pop(mid, None)
            if seq is None:
                continue  # a status message
            if reason.is_failure:
                result.refused.append(f"seq {seq}: {reason}")
            else:
                confirmed.append(seq)
        self.outbox.mark_sent(confirmed)
        result.published += len(confirmed)
        if confirmed:
            self.last_publish_at, self.last_publish_time = utc_now_iso(), time.time()
        if len(entries) < self.settings.batch or len(confirmed) < len(entries):
            return None  # all that was due, or a refusal or a silent broker: the rest waits for the next drain
        return entries[-1].seq

    def drain(self, wait_for_acks: float = 5.0) -> DrainResult:
        """Send what is due, then wait up to `wait_for_acks` seconds for the aggregator's acks."""
        if self.client is None:
            raise BrokerError("not connected")
        result = DrainResult()
        result.acked += self.apply_acks()
        after_seq: int | None = 0
        while after_seq is not None:  # batch after batch until nothing is due
            after_seq = self._send(result, after_seq)
            result.acked += self.apply_acks()
        deadline = time.monotonic() + wait_for_acks
        while time.monotonic() < deadline and self.outbox.unacked():
            self._ack_event.wait(timeout=min(0.25, max(0.0, deadline - time.monotonic())))
            self._ack_event.clear()
            result.acked += self.apply_acks()
        result.remaining = self.outbox.unacked()
        return result


def publish_once(store: StoreDatabase, settings: LinkSettings, wait_for_acks: float = 5.0) -> DrainResult:
    """`edge-agent publish`: connect, drain the outbox once, say goodbye."""
    publisher = StoreLink(store, settings)
    publisher.connect()
    try:
        return publisher.drain(wait_for_acks)
    finally:
        publisher.close(reason="drained")
