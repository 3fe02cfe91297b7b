"""Alert delivery: store outbox → Mosquitto (QoS 1) → aggregator → central database → ack, against raw paho.

Three measurements in one run, on one private Mosquitto (the shipped broker
settings, an ephemeral loopback port) and one real `churn-server aggregator`
process writing a SQLite central database:

1. Throughput. N alerts are written into a store database's outbox by the
   scoring code itself (`edge_agent.score.record_scoring`, one transaction as
   a daily scoring run writes them). Then the real `edge-agent publish`
   process runs; the clock starts when it is spawned and stops when it exits,
   which it does once the aggregator has acknowledged every alert (the outbox
   holds no unacknowledged row). The central database must then hold all N.
   alerts/s = N / elapsed, process start-up included.
2. Latency. A store-box process runs the daemon's uplink (`Uplink.run`, the
   continuous publishing loop, with the daemon's heartbeat reads after each
   drain) beside a scoring stand-in that writes alerts at a steady offered
   rate (500/s: every 10 ms one transaction with what is due, built by
   scoring's own `alert_payload` and outbox row writer, seq continued from the
   outbox) and wakes the uplink, as the daemon's scoring does. Not
   `record_scoring` itself: its cooldown look-ups scan the store's alerts table
   per candidate inside the write transaction, harmless once a day but, at 100
   runs a second, it held the store's write lock most of the time and the
   figure measured scoring, not delivery. Each alert's start is the wall-clock
   time just after its outbox transaction committed; its end is the first time
   a reader of the central database sees its row (this process polls
   central.db every 5 ms, so an end is at most 5 ms late). The aggregator's
   own `received_at` is stamped before its transaction commits, so it would
   flatter the figure; its p50/p99 are printed beside as a cross-check.
3. Baseline. Raw paho: one publisher and one subscriber client (MQTT v5,
   QoS 1) through the same broker, N messages of the same payloads; the clock
   runs from the first publish to the last message received. The ratio
   ours/raw says what the outbox, the commit before PUBACK and the aggregator's
   ack back to the store cost over the bare broker round trip.

The broker runs the shipped settings (firmware_configs/mosquitto, which sets
`set_tcp_nodelay true`); --broker-nagle leaves it out to show what Nagle's algorithm on
the broker's sockets costs.

Usage: .venv/bin/python benchmarks/alerts.py [--alerts 20000] [--seconds 30] [--rate 500] [--broker-nagle]
Goals: at least 2,000 alerts/s; p99 under 100 ms at 500 alerts/s on loopback.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion  # noqa: E402

from edge_agent.outbox import Outbox  # noqa: E402
from edge_agent.score import ScoreResult, ScoringPolicy, alert_id_for, alert_payload, record_scoring  # noqa: E402
from edge_agent.store_db import StoreDatabase, open_store_db, utc_now_iso, write_transaction  # noqa: E402
from models.alerting import AlertPolicy  # noqa: E402
from models.scoring import ScoredCustomer  # noqa: E402
from server.mosquitto import Mosquitto  # noqa: E402
from server.processes import end_group  # noqa: E402
from tests.services import AggregatorProcess  # noqa: E402

VENV_BIN = Path(sys.executable).parent
CHAIN = "bench"
AS_OF = "2026-03-01"
MODEL_VERSION = "bench-2026-02-28"
# Scoring as a busy store runs it, minus fatigue control: every candidate becomes an alert.
POLICY = ScoringPolicy(alerts=AlertPolicy(cooldown_days=0, daily_cap=10**9, weekly_budget=10**9, outbox_quota_mb=1024))
LEVELS = ((81, "purple", "manager_contact", "store manager contact"), (61, "red", "service_plan", "one-to-one service plan"),
          (41, "orange", "callback", "phone call-back"), (21, "yellow", "member_offer", "member-only offer"),
          (0, "green", "care_sms", "care message"))
POLL_SECONDS = 0.005
TICK = os.sysconf("SC_CLK_TCK")


# --- processes, stopped whatever happens ------------------------------------------------

def shipped_like_broker(folder: Path, nodelay: bool) -> Mosquitto:
    """A private Mosquitto with the shipped settings (firmware_configs/mosquitto), logging only notices;
    `nodelay` is set_tcp_nodelay, as shipped (--broker-nagle turns it off)."""
    return Mosquitto(folder, log_types=("error", "warning", "notice"), nodelay=nodelay,
                     extra="autosave_interval 30\nmax_inflight_messages 20")


class Processes:
    """Every child this run starts; `stop_all` ends them (SIGTERM, then SIGKILL) on any exit."""

    def __init__(self) -> None:
        self.stoppers: list[Callable[[], None]] = []

    def add(self, stopper: Callable[[], None]) -> None:
        self.stoppers.append(stopper)

    def spawn(self, command: list[str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as handle:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=handle, start_new_session=True)
        self.add(lambda: end_group(process, signal.SIGTERM, grace=10.0) if process.poll() is None else None)
        return process

    def stop_all(self) -> None:
        for stopper in reversed(self.stoppers):
            try:
                stopper()
            except Exception as exc:  # noqa: BLE001 (stop the others whatever one of them does)
                print(f"benchmark: stopping a child failed: {exc}", file=sys.stderr)
        self.stoppers.clear()


@contextmanager
def interrupts_unwind() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the `finally` that stops the children runs."""
    def on_term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- alerts, written the way scoring writes them --------------------------------------------

def candidate(number: int) -> ScoredCustomer:
    """An at-risk customer with scoring's three ordered reasons (payloads of the real size)."""
    score = 41 + number * 37 % 60
    _floor, level, action, label = next(entry for entry in LEVELS if score >= entry[0])
    clv = 300.0 + number % 900
    reasons = [
        {"text": f"last visit {30 + number % 40} days ago, usually every {8 + number % 9} days",
         "feature": "days_since_last_visit", "value": float(30 + number % 40), "usual": float(8 + number % 9)},
        {"text": f"{1 + number % 3} visits in the last 90 days, down from {6 + number % 5} in the 90 days before",
         "feature": "visits_last_90_days", "value": float(1 + number % 3), "usual": float(6 + number % 5)},
        {"text": f"average basket {18 + number % 23:.2f} in the last 90 days, was {31 + number % 17:.2f}",
         "feature": "basket_value_90_days", "value": float(18 + number % 23), "usual": float(31 + number % 17)},
    ]
    return ScoredCustomer(f"C{number:08d}", score / 100, score, level, action, label, round(clv * 0.03, 2), clv,
                          round(clv * 0.05, 2), reasons)


def write_alerts(store: StoreDatabase, first: int, count: int) -> list[str]:
    """One scoring transaction recording `count` alerts (and their outbox rows); return their alert ids."""
    people = [candidate(number) for number in range(first, first + count)]
    record_scoring(store, ScoreResult(AS_OF, MODEL_VERSION, scored=count), people, POLICY)
    return [alert_id_for(store.chain, store.store_id, p.customer_id, AS_OF) for p in people]


def outbox_payloads(db: Path) -> list[bytes]:
    with sqlite3.connect(db) as conn:
        return [row[0].encode() for row in conn.execute("SELECT payload FROM outbox ORDER BY seq")]


# --- the central database, read as the console would ----------------------------------------

def central_rows(central: Path, store_id: str, after_rowid: int = 0) -> list[tuple[int, str, str]]:
    """(rowid, alert_id, received_at) of a store's alerts committed after `after_rowid`."""
    if not central.exists():
        return []
    conn = sqlite3.connect(f"{central.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute("SELECT rowid, alert_id, received_at FROM alerts WHERE rowid > ? AND store_id = ?"
                            " ORDER BY rowid", (after_rowid, store_id)).fetchall()
    except sqlite3.OperationalError:
        return []  # the aggregator has not created its tables yet
    finally:
        conn.close()


class CentralWatcher:
    """Polls central.db every few ms and notes when each alert id first became visible (committed)."""

    def __init__(self, central: Path, store_id: str) -> None:
        self.central, self.store_id = central, store_id
        self.seen: dict[str, tuple[float, str]] = {}  # alert id -> (seen at, received_at)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="central-watcher", daemon=True)

    def __enter__(self) -> CentralWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        conn = sqlite3.connect(f"{self.central.as_uri()}?mode=ro", uri=True, timeout=30)
        last = 0
        try:
            while not self._stop.wait(POLL_SECONDS):
                rows = conn.execute("SELECT rowid, alert_id, received_at FROM alerts WHERE rowid > ? AND store_id = ?",
                                    (last, self.store_id)).fetchall()
                now = time.time()
                for rowid, alert_id, received_at in rows:
                    self.seen.setdefault(alert_id, (now, received_at))
                    last = max(last, rowid)
        finally:
            conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def reaped_children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()  # Python 3.11 reads the trailing Z


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"benchmark: {what} not reached in {seconds:.0f} s")
        time.sleep(0.05)


# --- 1. throughput: edge-agent publish until the outbox is empty -----------------------------

@dataclass
class Throughput:
    alerts: int
    seconds: float
    first_stored_after: float
    payload_bytes: int
    cpu: dict[str, float]  # CPU seconds per process over the run

    @property
    def rate(self) -> float:
        return self.alerts / self.seconds


def measure_throughput(work: Path, broker: Mosquitto, aggregator: AggregatorProcess, processes: Processes,
                       count: int) -> Throughput:
    """Fill one store's outbox with `count` alerts, then time `edge-agent publish` until all are acknowledged."""
    store_id = "store-throughput"
    db = work / f"{store_id}.db"
    with open_store_db(db, chain=CHAIN, store_id=store_id) as store:
        write_alerts(store, 0, count)
    sizes = sorted(len(p) for p in outbox_payloads(db))
    command = [str(VENV_BIN / "edge-agent"), "publish", "--db", str(db), "--mqtt", broker.url, "--json",
               "--wait", "120"]
    central = Path(aggregator.db)
    assert aggregator.process is not None
    others = {"aggregator": aggregator.process.pid, "Mosquitto": broker.pid}
    before = {name: cpu_seconds(pid) for name, pid in others.items()} | {"publisher": reaped_children_cpu()}
    started, wall_start = time.perf_counter(), time.time()
    process = processes.spawn(command, work / "publish.stderr")
    output, _ = process.communicate(timeout=900)
    seconds = time.perf_counter() - started
    after = {name: cpu_seconds(pid) for name, pid in others.items()} | {"publisher": reaped_children_cpu()}
    if process.returncode != 0:
        raise SystemExit(f"benchmark: edge-agent publish failed: {(work / 'publish.stderr').read_text()[-800:]}")
    result = json.loads(output)
    rows = central_rows(central, store_id)
    with open_store_db(db) as store:
        unacked = Outbox(store).stats().unacked
    if result["remaining"] or unacked or len(rows) != count:
        raise SystemExit(f"benchmark: delivery incomplete: {result}, outbox unacked {unacked}, central {len(rows)}")
    first = min(epoch(received) for _rowid, _id, received in rows) - wall_start
    cpu = {name: after[name] - before[name] for name in ("publisher", "aggregator", "Mosquitto")}
    return Throughput(count, seconds, first, sizes[len(sizes) // 2], cpu)


# --- 3. baseline: raw paho QoS 1, one publisher, one subscriber ---------------------------

def paho_client(name: str) -> mqtt.Client:
    return mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"bench-raw-{name}",
                       protocol=MQTTProtocolVersion.MQTTv5)


def connected(client: mqtt.Client, broker: Mosquitto) -> mqtt.Client:
    ready = threading.Event()
    client.on_connect = lambda *_args: ready.set()
    client.connect("127.0.0.1", broker.port, keepalive=30)
    client.loop_start()
    if not ready.wait(10):
        raise SystemExit("benchmark: the raw paho client could not connect")
    return client


@dataclass
class Raw:
    messages: int
    seconds: float
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def measure_raw(broker: Mosquitto, payloads: list[bytes]) -> Raw:
    """Seconds from the first QoS 1 publish to the last message received by a QoS 1 subscriber."""
    topic, received, done, subscribed = "bench/raw", [0], threading.Event(), threading.Event()

    def on_message(_client: mqtt.Client, _userdata: Any, _message: mqtt.MQTTMessage) -> None:
        received[0] += 1
        if received[0] == len(payloads):
            done.set()

    subscriber = connected(paho_client("sub"), broker)
    publisher = connected(paho_client("pub"), broker)
    try:
        subscriber.on_message = on_message
        subscriber.on_subscribe = lambda *_args: subscribed.set()
        subscriber.subscribe(topic, qos=1)
        if not subscribed.wait(10):
            raise SystemExit("benchmark: the raw subscription was not confirmed")
        broker_cpu, own_cpu, started = cpu_seconds(broker.pid), time.process_time(), time.perf_counter()
        for payload in payloads:
            publisher.publish(topic, payload, qos=1)
        if not done.wait(600):
            raise SystemExit(f"benchmark: raw paho: only {received[0]} of {len(payloads)} received")
        seconds = time.perf_counter() - started
        return Raw(len(payloads), seconds, {"both clients": time.process_time() - own_cpu,
                                            "Mosquitto": cpu_seconds(broker.pid) - broker_cpu})
    finally:
        for client in (publisher, subscriber):
            client.disconnect()
            client.loop_stop()


# --- 2. latency: the daemon's uplink at a steady offered load --------------------------------

@dataclass
class Latency:
    alerts: int
    seconds: float
    committed_ms: list[float]
    received_ms: list[float]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure_latency(work: Path, broker: Mosquitto, central: Path, processes: Processes, seconds: float,
                    rate: float) -> Latency:
    """Run the store-box child for `seconds` at `rate` alerts/s; pair its write times with central visibility."""
    store_id = "store-latency"
    db = work / f"{store_id}.db"
    with open_store_db(db, chain=CHAIN, store_id=store_id):
        pass
    out = work / "latency-written.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--store-box", str(db), broker.url, str(seconds),
               str(rate), str(out)]
    with CentralWatcher(central, store_id) as watcher:
        process = processes.spawn(command, work / "store-box.stderr")
        process.communicate(timeout=seconds + 180)
        if process.returncode != 0:
            raise SystemExit(f"benchmark: the store box failed: {(work / 'store-box.stderr').read_text()[-800:]}")
        fed = json.loads(out.read_text())
        written: dict[str, float] = fed["written"]
        wait_for(lambda: len(watcher.seen) >= len(written), 30, "every latency alert in central.db")
    committed = [(watcher.seen[a][0] - t) * 1000 for a, t in written.items()]
    received = [(epoch(watcher.seen[a][1]) - t) * 1000 for a, t in written.items()]
    return Latency(len(written), fed["seconds"], committed, received)


def daemon_beat(store: StoreDatabase) -> Callable[..., None]:
    """What the daemon's uplink heartbeat reads from the store database after every drain."""
    outbox = Outbox(store)

    def beat(**_details: Any) -> None:
        outbox.stats()
        outbox.rejected()
    return beat


def write_outbox_rows(store: StoreDatabase, first: int, count: int) -> list[str]:
    """`count` alerts into the outbox in one transaction, with scoring's own payload and row writer and seq rule."""
    now = utc_now_iso()
    ids = []
    outbox = Outbox(store)
    with write_transaction(store.conn):
        seq = outbox.last_seq()
        for number in range(first, first + count):
            person, seq = candidate(number), seq + 1
            alert_id = alert_id_for(store.chain, store.store_id, person.customer_id, AS_OF)
            document = alert_payload(store, person, customer_ref=person.customer_id, alert_id=alert_id, seq=seq,
                                     as_of=AS_OF, model_version=MODEL_VERSION, created_at=now, control=False)
            outbox.append(seq, alert_id, "alert", document, now)
            ids.append(alert_id)
    return ids


def feed(store: StoreDatabase, rate: float, seconds: float, wake: threading.Event,
         tick: float = 0.01) -> tuple[dict[str, float], float]:
    """Write alerts at `rate`/s, one transaction per tick, waking the uplink as scoring does.

    Returns alert id -> wall-clock time its transaction committed, and the seconds the feed lasted.
    A late tick writes what is due by then, so the offered load holds even when the box is busy.
    """
    written: dict[str, float] = {}
    started = time.monotonic()
    for number in itertools.count(1):
        time.sleep(max(0.0, started + number * tick - time.monotonic()))
        elapsed = time.monotonic() - started
        target = round(min(elapsed, seconds) * rate)
        ids = write_outbox_rows(store, len(written), target - len(written))
        written.update(dict.fromkeys(ids, time.time()))
        wake.set()
        if elapsed >= seconds:
            return written, elapsed

def store_box(db: Path, url: str, seconds: float, rate: float, out: Path) -> None:
    """The child process: the daemon's uplink thread plus a scoring stand-in, on two connections as in the daemon."""
    from edge_agent.daemon.uplink import Uplink
    from transport.mqtt import BrokerConfig
    from edge_agent.store_link import LinkSettings

    stop, wake = threading.Event(), threading.Event()
    with open_store_db(db) as uplink_store, open_store_db(db) as scoring_store:
        settings = LinkSettings(BrokerConfig(url), f"{CHAIN}.{uplink_store.store_id}.agent")
        uplink = Uplink(uplink_store, settings, stop=stop, wake=wake, drain_every=5.0, status_every=60.0,
                        metrics_every=300.0, status_details=dict, health_details=dict, releases=None,
                        on_beat=daemon_beat(uplink_store))
        thread = threading.Thread(target=uplink.run, name="uplink", daemon=True)
        thread.start()
        try:
            wait_for(lambda: uplink.link.connected, 30, "the uplink's connection")
            written, lasted = feed(scoring_store, rate, seconds, wake)
            wait_for(lambda: Outbox(scoring_store).unacked() == 0, 120, "an empty outbox")
        finally:
            stop.set()
            wake.set()
            thread.join(timeout=15)
    out.write_text(json.dumps({"seconds": lasted, "written": written}))


# --- the run ---------------------------------------------------------------------------------

def per_thousand(cpu: dict[str, float], count: int) -> str:
    return ", ".join(f"{name} {seconds / count * 1e6:.0f} ms" for name, seconds in cpu.items())


def report(throughput: Throughput, raw: Raw, latency: Latency, nodelay: bool) -> None:
    committed, received = latency.committed_ms, latency.received_ms
    p99 = percentile(committed, 0.99)
    settings = "shipped settings" if nodelay else "shipped settings without set_tcp_nodelay"
    print(f"alerts: {throughput.alerts}, payload {throughput.payload_bytes} bytes (median), Mosquitto on loopback"
          f" ({settings}), SQLite central.db")
    print(f"edge-agent publish -> churn-server aggregator -> ack: {throughput.rate:,.0f} alerts/s "
          f"({throughput.seconds:.2f} s from process start to an empty outbox; first alert stored after "
          f"{throughput.first_stored_after:.2f} s)")
    print(f"raw paho QoS 1 publish -> subscribe: {raw.rate:,.0f} msgs/s ({raw.seconds:.2f} s)")
    print(f"ratio ours/raw: {throughput.rate / raw.rate:.2f}")
    print(f"CPU per 1,000 alerts: {per_thousand(throughput.cpu, throughput.alerts)}; "
          f"raw: {per_thousand(raw.cpu, raw.messages)}")
    print(f"latency at {latency.alerts / latency.seconds:,.0f} alerts/s for {latency.seconds:.0f} s "
          f"({latency.alerts} alerts, outbox commit -> visible in central.db): p50 {percentile(committed, 0.5):.1f} ms, "
          f"p99 {p99:.1f} ms, max {max(committed):.1f} ms")
    print(f"  (to the aggregator's received_at, stamped before its commit: p50 {percentile(received, 0.5):.1f} ms,"
          f" p99 {percentile(received, 0.99):.1f} ms)")
    print(f"goals: >= 2,000 alerts/s {'met' if throughput.rate >= 2000 else 'NOT met'}; "
          f"p99 < 100 ms {'met' if p99 < 100 else 'NOT met'}")


def run(count: int, seconds: float, rate: float, nodelay: bool) -> None:
    processes = Processes()
    with tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp, interrupts_unwind():
        work = Path(tmp)
        try:
            broker = shipped_like_broker(work / "broker", nodelay).start()
            processes.add(broker.stop)
            central = work / "central.db"
            aggregator = AggregatorProcess(work / "central", broker.url, str(central), client_id="bench-aggregator",
                                           group="bench")
            processes.add(aggregator.kill)  # after a clean stop below, this does nothing
            aggregator.start()
            throughput = measure_throughput(work, broker, aggregator, processes, count)
            raw = measure_raw(broker, outbox_payloads(work / "store-throughput.db"))
            latency = measure_latency(work, broker, central, processes, seconds, rate)
            aggregator.stop()
        finally:
            processes.stop_all()
    report(throughput, raw, latency, nodelay)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=20_000, help="alerts for the throughput and raw runs")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the steady-load latency run")
    parser.add_argument("--rate", type=float, default=500.0, help="offered load of the latency run, alerts/s")
    parser.add_argument("--broker-nagle", action="store_true",
                        help="leave set_tcp_nodelay out of the broker's shipped settings")
    parser.add_argument("--store-box", nargs=5, metavar=("DB", "URL", "SECONDS", "RATE", "OUT"),
                        help=argparse.SUPPRESS)  # the latency run's child process
    args = parser.parse_args()
    if args.store_box:
        db, url, secs, per_second, out = args.store_box
        store_box(Path(db), url, float(secs), float(per_second), Path(out))
        return
    run(args.alerts, args.seconds, args.rate, not args.broker_nagle)


if __name__ == "__main__":
    main()
