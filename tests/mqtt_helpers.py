"""MQTT test clients that wait for the broker's answer (SUBACK) and for the messages they expect, never for a
fixed time."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


class SubackWaiter:
    """Installed as a client's on_subscribe: remembers which subscriptions the broker has answered, and how."""

    def __init__(self) -> None:
        self._answered: dict[int, list[int]] = {}
        self._changed = threading.Condition()

    def __call__(self, _client: mqtt.Client, _userdata: object, mid: int, reason_codes: list[object],
                 _properties: object = None) -> None:
        with self._changed:
            self._answered[mid] = [int(getattr(code, "value", code)) for code in reason_codes]  # type: ignore[call-overload]
            self._changed.notify_all()

    def wait(self, mids: list[int], seconds: float) -> dict[int, list[int]]:
        deadline = time.monotonic() + seconds
        with self._changed:
            while not set(mids) <= set(self._answered):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the broker did not answer {len(set(mids) - set(self._answered))} "
                                       f"subscription(s) in {seconds} s")
                self._changed.wait(left)
            return {mid: self._answered[mid] for mid in mids}


def subscribe_and_wait(client: mqtt.Client, topics: list[str], qos: int = 1, seconds: float = 10.0) -> list[int]:
    """Subscribe (the client's network loop running) and return once the broker has answered each SUBACK;
    the granted QoS or the refusal code per topic is returned (the broker may grant what it will not deliver)."""
    waiter = client.on_subscribe if isinstance(client.on_subscribe, SubackWaiter) else SubackWaiter()
    client.on_subscribe = waiter
    mids = []
    for topic in topics:
        result, mid = client.subscribe(topic, qos=qos)
        assert result == mqtt.MQTT_ERR_SUCCESS, f"subscribing to {topic} failed ({result})"
        mids.append(mid)
    answered = waiter.wait(mids, seconds)
    return [answered[mid][0] for mid in mids]


class Subscriber:
    """A plain MQTT v5 client on the broker's side of the network: collects the JSON documents on `topics`."""

    def __init__(self, url: str, topics: list[str]) -> None:
        from models.contracts import BrokerAddress

        address = BrokerAddress.parse(url)
        self.received: queue.Queue[dict[str, Any]] = queue.Queue()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=f"test-subscriber-{uuid.uuid4().hex[:8]}", protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_message = lambda _c, _u, message: self.received.put(json.loads(message.payload))
        if address.username:
            self.client.username_pw_set(address.username, address.password)
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        subscribe_and_wait(self.client, topics)

    def until(self, wanted: Callable[[dict[str, Any]], bool], seconds: float = 10.0) -> dict[str, Any]:
        """The first document `wanted` accepts (those before it are dropped); TimeoutError after `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                document = self.received.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no wanted message in {seconds} s") from None
            if wanted(document):
                return document

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
