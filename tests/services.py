"""Real services for integration tests: a private Mosquitto, a Flower SuperLink and SuperNodes.

Each runs as a child process on an ephemeral loopback port with its own
configuration, so tests never touch the machine's shared broker and can kill
(SIGKILL) and restart what they started. The broker and the SuperLink are the
product's own starters (server.mosquitto, server.federation.superlink), as the
demo and the benchmarks use them. The central side's tests add the aggregator
process and a plain MQTT client standing in for a store box; PostgreSQL is in
tests/postgres.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge_agent.daemon.health import read_health
from models.contracts import BrokerAddress, ack_topic, store_topic
from server.federation.superlink import FleetGatewayProcess, SuperLinkProcess, flower_env
from server.mosquitto import Mosquitto
from server.processes import VENV_BIN, free_port, kill_group
from tests.mqtt_helpers import subscribe_and_wait

__all__ = ["VENV_BIN", "Mosquitto", "SuperLink", "SuperNode", "flower_env", "federation_site", "AggregatorProcess",
           "StoreClient", "churn_alert"]


@dataclass
class SuperLink(SuperLinkProcess):
    """flower-superlink as shipped (loopback only, TLS, SuperNode authentication, a database so restarts keep
    nodes); the stores reach its Fleet API through `gateway`, as they do for real."""

    gateway: FleetGatewayProcess | None = None

    def start(self, seconds: float = 60.0) -> SuperLink:
        assert self.pki is not None
        if self.gateway is None:
            self.gateway = FleetGatewayProcess(self.folder / "gateway", self.pki, self.address)
        if self.gateway.process is None:
            self.gateway.start()  # on the same port as before a kill: the stores keep their address
        super().start(seconds)
        return self

    def kill(self) -> None:
        """The central server crashes: the SuperLink and the gateway with it."""
        super().kill()
        if self.gateway is not None:
            self.gateway.kill()

    @property
    def fleet_address(self) -> str:
        """What the stores are given: the fleet gateway."""
        assert self.gateway is not None
        return self.gateway.address


@dataclass
class SuperNode:
    folder: Path
    superlink: SuperLink
    private_key: Path
    node_config: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)  # e.g. a PYTHONPATH that changes what the store answers

    def start(self) -> SuperNode:
        self.folder.mkdir(parents=True, exist_ok=True)
        log = open(self.folder / "supernode.log", "ab")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "flower-supernode"), "--superlink", self.superlink.fleet_address, "--port", str(self.port),
             "--root-certificates", str(self.superlink.pki / "ca.crt"),
             "--auth-supernode-private-key", str(self.private_key), "--node-config", self.node_config],
            stdout=log, stderr=subprocess.STDOUT, env={**flower_env(self.folder / "home"), **self.env},
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        if self.process is not None:
            kill_group(self.process)
            self.process = None


@contextlib.contextmanager
def federation_site(root: Path, store_dbs: list[Path], env: dict[str, dict[str, str]] | None = None,
                    ) -> Iterator[tuple[SuperLink, dict[str, SuperNode]]]:
    """A chain's CA, the SuperLink (loopback, behind its gateway) and a registered SuperNode per store database
    (`env` adds environment variables to a store's SuperNode, by store id); all stopped afterwards."""
    from server.pki import create_ca, server_certificate, supernode_key

    pki = root / "pki"
    create_ca(pki, "Demo Retail")
    server_certificate(pki, "superlink", ["127.0.0.1", "localhost"])
    superlink = SuperLink(root / "superlink", pki).start()
    nodes: dict[str, SuperNode] = {}
    try:
        for db in store_dbs:  # the operator registers each store's key, on the central server
            private, public = supernode_key(pki, db.stem)
            superlink.register(public)
            nodes[db.stem] = SuperNode(root / db.stem, superlink, private, f'store-db="{db}" threads=1',
                                       env=(env or {}).get(db.stem, {})).start()
        yield superlink, nodes
    finally:
        for node in nodes.values():
            node.kill()
        superlink.kill()


# --- the central aggregator, as operators run it ---

# For tests that block the central database on purpose: the aggregator says so after 2 s, not the 30 s default.
QUICK_BUSY = ["--busy-timeout", "2"]


@dataclass
class AggregatorProcess:
    """`churn-server aggregator` against a broker and a central database; its log is kept in `folder`."""

    folder: Path
    mqtt_url: str
    db: str
    client_id: str = "aggregator-1"
    group: str = "test-aggregators"
    extra_args: list[str] = field(default_factory=list)  # e.g. ["--password-file", FILE]
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.client_id}.log"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def start(self, wait: bool = True) -> AggregatorProcess:
        """Start it; with `wait`, return once it has (re)subscribed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        before = self.log().count("subscribed to")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "churn-server"), "aggregator", "--mqtt", self.mqtt_url, "--db", self.db,
                 "--group", self.group, "--client-id", self.client_id, *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        if wait:
            self.wait_for_log("subscribed to", before + 1)
        return self

    def wait_for_log(self, text: str, times: int = 1, seconds: float = 20.0) -> None:
        deadline = time.monotonic() + seconds
        while self.log().count(text) < times:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the aggregator exited ({self.process.returncode}):\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not logged {times} times in {seconds} s:\n{self.log()}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            kill_group(self.process)
            self.process = None

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; return its exit status."""
        assert self.process is not None
        process, self.process = self.process, None
        os.killpg(process.pid, signal.SIGTERM)
        return process.wait(timeout=20)


# --- a store box stand-in: what a store publishes, from a plain paho client ---

def churn_alert(seq: int, store_id: str = "s1", chain: str = "acme", **overrides: object) -> dict[str, object]:
    """A valid `retail.churn-alert/1` payload (models.payloads), alert id derived from the store and seq."""
    alert: dict[str, object] = {
        "schema": "retail.churn-alert/1", "alert_id": f"{chain}-{store_id}-{seq:06d}", "seq": seq, "chain": chain,
        "store_id": store_id, "customer_ref": f"C{seq:05d}", "as_of": "2026-03-01", "risk_score": 72,
        "level": "red", "action": "service_plan", "action_label": "one-to-one service plan",
        "reasons": [{"text": "last visit 41 days ago, usually every 12 days", "feature": "recency_days",
                     "value": 41, "usual": 12}],
        "clv_estimate": 820.5, "action_cost_cap": 41.0, "model_version": "central-2026-02-28",
        "created_at": "2026-03-01T06:00:00Z", "control": False,
    }
    alert.update(overrides)
    return alert


class StoreClient:
    """Publishes QoS 1 over MQTT v5 like a store box, waits for each PUBACK, and collects the acks it receives."""

    def __init__(self, url: str, chain: str = "acme", store_id: str = "s1") -> None:
        self.chain, self.store_id = chain, store_id
        self.acks: list[dict[str, Any]] = []
        self.sent: dict[str, int] = {}  # alert id -> seq
        self._lock = threading.Lock()
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=f"store-{chain}-{store_id}-{uuid.uuid4().hex[:6]}",
                                  protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_message = self._on_message
        address = BrokerAddress.parse(url)
        if address.username:
            self.client.username_pw_set(address.username, address.password)
        self.client.connect(address.host, address.port, keepalive=30)
        self.client.loop_start()
        subscribe_and_wait(self.client, [ack_topic(chain, store_id)])  # before anything is published

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.acks.append(json.loads(message.payload))

    def publish(self, leaf: str, payload: dict[str, object] | bytes, retain: bool = False, qos: int = 1) -> None:
        """Publish on retail/v1/{chain}/{store}/{leaf}; with QoS 1, return once the broker has accepted it."""
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.client.publish(store_topic(self.chain, self.store_id, leaf), raw, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(10)
            assert info.is_published(), f"the broker did not accept a message on {leaf}"

    def publish_alerts(self, seqs: range | list[int], **overrides: object) -> list[str]:
        ids = []
        for seq in seqs:
            alert = churn_alert(seq, self.store_id, self.chain, **overrides)
            self.publish("alert/churn", alert)
            self.sent[str(alert["alert_id"])] = seq
            ids.append(str(alert["alert_id"]))
        return ids

    def acked_ids(self, by_seq: bool = True) -> set[str]:
        """Alert ids an ack named; with `by_seq`, also those at or under an ack's up_to_seq (as a store clears them)."""
        with self._lock:
            named = {i for a in self.acks for i in a["alert_ids"]}
            up_to = max([a["up_to_seq"] for a in self.acks if a["up_to_seq"] is not None] or [0])
        return named | ({i for i, seq in self.sent.items() if seq <= up_to} if by_seq else set())

    def wait_for_acks(self, alert_ids: list[str], seconds: float = 20.0, by_seq: bool = True) -> None:
        deadline = time.monotonic() + seconds
        while not set(alert_ids) <= self.acked_ids(by_seq):
            if time.monotonic() > deadline:
                missing = sorted(set(alert_ids) - self.acked_ids(by_seq))
                raise TimeoutError(f"{len(missing)} alerts not acked in {seconds} s, e.g. {missing[:3]}")
            time.sleep(0.05)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Daemon:
    """`edge-agent run` as its own process, read through its /health file; its log beside its data."""

    def __init__(self, config: Path, data: Path):
        self.config, self.data = config, data
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> Daemon:
        log = open(self.data.parent / "daemon.log", "ab")
        self.process = subprocess.Popen([str(VENV_BIN / "edge-agent"), "run", "--config", str(self.config)],
                                        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        return self

    def health(self) -> dict[str, Any]:
        return read_health(self.data / "run")

    def wait(self, check: Callable[[dict[str, Any]], bool], seconds: float = 90, what: str = "") -> dict[str, Any]:
        deadline, last = time.monotonic() + seconds, {}
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log()[-3000:]
            try:
                last = self.health()
                if check(last):
                    return last
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{what} not reached in {seconds} s; last health: {json.dumps(last)[:1500]}")

    def log(self) -> str:
        path = self.data.parent / "daemon.log"
        return path.read_text() if path.exists() else ""

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def reap_children(self) -> None:
        """After a test: stop whatever a killed daemon left running (its camera, its SuperNode)."""
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and str(self.data) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                pass

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)
