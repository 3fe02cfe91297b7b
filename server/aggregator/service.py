"""The aggregator process: MQTT in, central database, acks out; a message is PUBACKed only once committed.

- Persistent MQTT v5 session (clean_start False, session expiry) under a stable
  client id: while the aggregator is down the broker queues its QoS 1 messages.
- Manual acknowledgement: paho sends no PUBACK by itself; we send it after the
  batch holding the message is committed. An aggregator killed in between
  gets the message again from the broker (storage is idempotent by alert_id).
- Alerts come through a shared subscription, so several aggregators split
  them; status and metrics through plain ones (the broker does not replay
  retained messages to shared subscriptions).
- The network loop reconnects with backoff by itself, and a supervisor
  restarts it should it ever stop on an unexpected error.
"""

from __future__ import annotations

import logging
import queue
import re
import signal
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy.exc import OperationalError

from models.contracts import all_stores_topic
from transport.mqtt import BrokerConfig, make_client

from ..central import SCHEMA_VERSION, CentralDb, driver_message, open_central_db
from ..central.database import BUSY_TIMEOUT_SECONDS
from .acks import AckBatcher
from .handling import BatchOutcome, Incoming, handle_batch

log = logging.getLogger("churn.aggregator")


class _OneLinePerRetry(logging.Filter):
    """paho also logs its own line for each failed reconnection; ours (on_connect_fail) says it plainly."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Client is not connected" not in record.getMessage()


_paho_log = logging.getLogger("churn.aggregator.mqtt")
_paho_log.addFilter(_OneLinePerRetry())
_GROUP = re.compile(r"^[A-Za-z0-9_.-]+$")
# CONNACK refusals that retrying cannot cure: bad client id, bad credentials, not authorised, bad auth method
_FIX_THE_CONFIGURATION = {0x85, 0x86, 0x87, 0x8C}


class AggregatorError(Exception):
    """The aggregator cannot do its job (a bad group name, bad credentials, a refused subscription)."""


@dataclass(frozen=True)
class AggregatorSettings:
    """How one aggregator joins the broker; `receive_maximum` bounds the messages awaiting their commit."""

    broker: BrokerConfig
    group: str = "churn-aggregators"
    client_id: str | None = None
    session_expiry: int = 86_400
    batch_size: int = 200
    ack_interval: float = 0.3
    receive_maximum: int = 200
    busy_timeout_seconds: float = BUSY_TIMEOUT_SECONDS  # SQLite: the wait for another writer before a retry

    def __post_init__(self) -> None:
        if not _GROUP.match(self.group):
            raise AggregatorError(f"--group {self.group!r} may hold only letters, digits, '.', '_' and '-'")
        self.broker.address  # noqa: B018 (a bad broker URL fails here, before anything starts)

    @property
    def stable_client_id(self) -> str:
        """The same id on every start, so the broker hands back the session it kept."""
        return self.client_id or f"churn-aggregator-{self.group}-{socket.gethostname()}"

    def subscriptions(self) -> list[tuple[str, SubscribeOptions]]:
        return [(f"$share/{self.group}/{all_stores_topic('+', 'alert/churn')}", SubscribeOptions(qos=1)),
                (all_stores_topic("+", "status"), SubscribeOptions(qos=1)),
                (all_stores_topic("+", "metrics"), SubscribeOptions(qos=1))]


@dataclass(frozen=True)
class _Received:
    message: Incoming
    mid: int
    qos: int
    connection: int  # which connection delivered it: a PUBACK is only valid on that one


class Aggregator:
    """paho's network thread receives and queues; the caller's thread commits, PUBACKs and acks."""

    def __init__(self, db: CentralDb, settings: AggregatorSettings) -> None:
        self.db = db
        self.settings = settings
        self.totals: Counter[str] = Counter()
        self._inbox: queue.Queue[_Received] = queue.Queue()
        self._connection = 0
        self._fatal: str | None = None
        self._stop = threading.Event()
        self.client = make_client(settings.broker, settings.stable_client_id)
        self.client.manual_ack_set(True)
        self.client.suppress_exceptions = True  # an error in a callback is logged, never kills the loop
        self.client.enable_logger(_paho_log)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.acks = AckBatcher(self._publish_ack, settings.ack_interval)
        self._last_acks: list[mqtt.MQTTMessageInfo] = []

    # --- network thread: callbacks only enqueue and log ---

    def _on_connect(self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            refusal = f"the broker at {self.settings.broker.address} refused the connection: {reason}"
            if reason.value in _FIX_THE_CONFIGURATION:
                self._fatal = refusal
                self._stop.set()
            else:
                log.error("%s; retrying", refusal)
            return
        self._connection += 1
        log.info("connected to %s as %s (session %s)", self.settings.broker.address, self.settings.stable_client_id,
                 "resumed" if flags.session_present else "new")
        client.subscribe(self.settings.subscriptions())

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        log.warning("cannot reach the broker at %s; retrying", self.settings.broker.address)

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[Any], _props: Any) -> None:
        refused = [(topic, r) for (topic, _), r in zip(self.settings.subscriptions(), reasons) if r.is_failure]
        if refused:
            self._fatal = "the broker refused the subscription to " + ", ".join(f"{t} ({r})" for t, r in refused)
            self._stop.set()
            return
        log.info("subscribed to %s", ", ".join(topic for topic, _ in self.settings.subscriptions()))

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if not self._stop.is_set():
            log.warning("disconnected from %s (%s); reconnecting", self.settings.broker.address, reason)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        incoming = Incoming(message.topic, bytes(message.payload), bool(message.retain))
        self._inbox.put(_Received(incoming, message.mid, message.qos, self._connection))

    def _network(self) -> None:
        """paho's loop, reconnecting by itself; restarted here if it ever ends on an unexpected error."""
        while not self._stop.is_set():
            try:
                self.client.loop_forever(retry_first_connection=True)
            except Exception as exc:  # noqa: BLE001 (a watchdog: log, wait, carry on)
                log.error("network loop stopped (%s: %s); restarting it", type(exc).__name__, exc)
                self._stop.wait(2)
            else:
                self._stop.wait(0.5)

    # --- main thread: database, PUBACKs, acks ---

    def run(self, stop: threading.Event) -> Counter[str]:
        """Work until `stop` is set; return the totals. Raises AggregatorError on a fatal refusal."""
        connect = Properties(PacketTypes.CONNECT)
        connect.SessionExpiryInterval = self.settings.session_expiry
        connect.ReceiveMaximum = self.settings.receive_maximum
        address = self.settings.broker.address
        self.client.connect_async(address.host, address.port, keepalive=30, clean_start=False, properties=connect)
        network = threading.Thread(target=self._network, name="mqtt-network", daemon=True)
        network.start()
        try:
            while not stop.is_set() and not self._stop.is_set():
                self._process(self._take(0.1), stop)
                if self.acks.due():
                    self.acks.flush()
            if self._fatal is None:
                self._process(self._take(0.0), stop)  # what has already arrived; later ones are redelivered
                self.acks.flush()
                self._wait_for_acks(2.0)
        finally:
            self._stop.set()
            self.client.disconnect()
            network.join(timeout=5)
        if self._fatal:
            raise AggregatorError(self._fatal)
        return self.totals

    def _take(self, timeout: float) -> list[_Received]:
        try:
            batch = [self._inbox.get(timeout=timeout) if timeout else self._inbox.get_nowait()]
        except queue.Empty:
            return []
        while len(batch) < self.settings.batch_size:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _process(self, batch: list[_Received], stop: threading.Event) -> None:
        if not batch:
            return
        outcome = self._commit(batch, stop)
        if outcome is None:
            return  # stopping while the database is away: nothing PUBACKed, the broker keeps it all
        for received in batch:  # in arrival order, as MQTT asks
            if received.qos and received.connection == self._connection:
                self.client.ack(received.mid, received.qos)
        for (chain, store_id), stored in outcome.stored.items():
            self.acks.add(chain, store_id, stored)
        for (chain, store_id), rejected in outcome.rejected.items():
            self.acks.reject(chain, store_id, rejected)
        self._report(outcome)

    def _commit(self, batch: list[_Received], stop: threading.Event) -> BatchOutcome | None:
        """Store the batch, retrying while the database cannot take it; nothing is acknowledged meanwhile.

        handle_batch sets any message it cannot store aside as a dead letter; an error that escapes even that
        means the database itself is unwell (not the message), so it is retried like an outage, never the end.
        """
        delay = 0.5
        while True:
            try:
                return handle_batch(self.db, [r.message for r in batch])
            except OperationalError as exc:
                log.warning("central database unavailable (%s); retrying in %.0f s", driver_message(exc), delay)
            except Exception as exc:  # noqa: BLE001 (see above: retried, the loop goes on)
                log.error("cannot store or set aside a batch (%s: %s); retrying in %.0f s", type(exc).__name__,
                          driver_message(exc), delay)
            if stop.wait(delay):
                return None
            delay = min(delay * 2, 30)

    def _report(self, outcome: BatchOutcome) -> None:
        self.totals.update(new=outcome.new, duplicates=outcome.duplicates, dead_letters=len(outcome.dead_letters),
                           statuses=outcome.statuses, metrics=outcome.metrics)
        for topic, reason in outcome.dead_letters:
            log.warning("dead letter from %s: %s", topic, reason)
        for (chain, store_id), stored in sorted(outcome.stored.items()):
            log.info("stored %d new and %d already stored alerts of %s/%s; contiguous seq %d",
                     len(stored.new), len(stored.duplicates), chain, store_id, stored.contiguous_seq)

    def _publish_ack(self, topic: str, payload: bytes) -> None:
        self._last_acks = [info for info in self._last_acks if not info.is_published()]
        self._last_acks.append(self.client.publish(topic, payload, qos=1))

    def _wait_for_acks(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not all(info.is_published() for info in self._last_acks):
            time.sleep(0.05)


def run_aggregator(db_target: str, settings: AggregatorSettings) -> Counter[str]:
    """Open the central database and aggregate until SIGTERM or SIGINT."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with open_central_db(db_target, busy_timeout_seconds=settings.busy_timeout_seconds) as db:
        log.info("central database %s ready (schema version %d)", db.address, SCHEMA_VERSION)
        totals = Aggregator(db, settings).run(stop)
    log.info("stopped: %d new alerts, %d already stored, %d dead letters, %d statuses, %d metrics",
             totals["new"], totals["duplicates"], totals["dead_letters"], totals["statuses"], totals["metrics"])
    return totals
