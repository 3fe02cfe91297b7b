"""The store-box daemon's resident memory, CPU share and memory growth over an accelerated store day.

A real `edge-agent run` (Raspberry Pi 4 profile) with everything switched on:
one camera streaming 10 fps (an MJPEG fake camera playing a synthetic door
scene), one POS transaction per second arriving as small files in the drop
folder, scoring every minute instead of once a day (the acceleration), the
uplink publishing alerts, status and metrics to a private Mosquitto with a
real aggregator acknowledging them, and a signed model release to verify and
activate. The store's year of history is dropped in first.

Figures: RSS of the daemon, of its camera child and of both (median and peak
over the measured window), CPU share of each (% of one core), and memory
growth (least-squares slope of the daemon's RSS, MB per hour, plus the last
third's median minus the first third's). Baseline, measured in the same run:
the import floor, i.e. the RSS of a bare interpreter that only imports what
the daemon and the camera child import. The ratio says how much the running
work adds to the cost of loading the code. Goal: RSS at most 250 MB, no growth.

Usage: .venv/bin/python benchmarks/daemon.py [--minutes 10] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge_agent.daemon.health import PORT_FILE, read_health, rss_mb  # noqa: E402
from edge_agent.footfall.synthetic import make_scene  # noqa: E402
from server.mosquitto import Mosquitto  # noqa: E402
from server.processes import free_port  # noqa: E402
from tests.fake_camera import FakeCamera  # noqa: E402
from tests.services import AggregatorProcess  # noqa: E402

VENV_BIN = Path(sys.executable).parent
TICK = os.sysconf("SC_CLK_TCK")
DAEMON_IMPORTS = ("import edge_agent.daemon.supervisor, edge_agent.onnx_model, edge_agent.publisher, "
                  "onnxruntime, prometheus_client")
CAMERA_IMPORTS = "import edge_agent.footfall.pipeline, edge_agent.store_db, cv2, numpy"


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def children_of(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def import_floor(statement: str) -> float:
    """RSS (MB) of an interpreter that has only imported `statement`."""
    probe = f"{statement}\nfrom pathlib import Path\nprint([l for l in Path('/proc/self/status').read_text().splitlines() if l.startswith('VmRSS:')][0].split()[1])"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return int(result.stdout.strip()) / 1024


@dataclass
class Samples:
    times: list[float] = field(default_factory=list)
    daemon: list[float] = field(default_factory=list)
    camera: list[float] = field(default_factory=list)


def slope_per_hour(times: list[float], values: list[float]) -> float:
    mean_t, mean_v = statistics.fmean(times), statistics.fmean(values)
    denominator = sum((t - mean_t) ** 2 for t in times) or 1.0
    return sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values)) / denominator * 3600


def thirds_growth(values: list[float]) -> float:
    third = max(1, len(values) // 3)
    return statistics.median(values[-third:]) - statistics.median(values[:third])


def build_model_release(folder: Path, chain_dir: Path, as_of: date) -> tuple[Path, bytes]:
    from edge_agent.ingest import ingest_files
    from edge_agent.store_db import open_store_db
    from models.release import build_release, generate_signing_key, load_private_key
    from server.train import train_command

    training_db = folder / "training.db"
    with open_store_db(training_db, chain="bench", store_id="store-01") as store:
        ingest_files(store, [chain_dir / "pos.csv"])
    train_command([training_db], as_of, folder / "model", 90)
    public = generate_signing_key(folder / "release.key")
    release = build_release(folder / "model", "bench", load_private_key(folder / "release.key"))
    return public, json.dumps(release).encode()


def write_config(folder: Path, broker_url: str, public_key: Path, camera_url: str) -> tuple[Path, Path]:
    data = folder / "data"
    config = folder / "edge-agent.toml"
    config.write_text(f"""
profile = "rpi4"
[store]
chain = "bench"
store_id = "store-01"
data_dir = "{data}"
[ingest]
poll_seconds = 1
settle_seconds = 1
[scoring]
every_minutes = 1
[alerts]
daily_cap = 100000
cooldown_days = 0
[mqtt]
url = "{broker_url}"
[models]
public_key = "{public_key}"
[[cameras]]
name = "door"
source = "{camera_url}"
line = [0, 240, 640, 240]
fps_budget = 10
[daemon]
http_port = 0
log_file = "{folder / 'edge-agent.log'}"
""")
    return config, data


def feed_transactions(dropbox: Path, customers: list[str], stop: threading.Event, every: float = 10.0) -> None:
    """One sale per second, delivered as a file every `every` seconds, as a till export would."""
    rng, number = random.Random(3), 0
    dropbox.mkdir(parents=True, exist_ok=True)
    while not stop.wait(every):
        now = datetime.now()
        path = dropbox / f"till-{now:%H%M%S}-{number}.csv"
        temporary = dropbox / f".{path.name}.part"
        with temporary.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["transaction_id", "customer_id", "timestamp", "amount"])
            for second in range(int(every)):
                number += 1
                moment = now - timedelta(seconds=every - second)
                writer.writerow([f"live-{number}", rng.choice(customers), moment.isoformat(timespec="seconds"),
                                 f"{rng.uniform(3, 80):.2f}"])
        temporary.rename(path)


def health(data: Path) -> dict:  # type: ignore[type-arg]
    return read_health(data / "run")


def metric(data: Path, name: str) -> float:
    port = (data / "run" / PORT_FILE).read_text()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def score_runs(data: Path) -> int:
    with sqlite3.connect(f"{(data / 'store.db').as_uri()}?mode=ro", uri=True, timeout=10) as conn:
        return int(conn.execute("SELECT count(*) FROM score_runs").fetchone()[0])


def wait_until(check, seconds: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(1)
    raise SystemExit(f"benchmark: {what} not reached in {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="measured window after warm-up")
    parser.add_argument("--warmup-minutes", type=float, default=1.0, help="running, not measured, after the first scoring")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    say = (lambda *_a: None) if args.json else (lambda text: print(text, file=sys.stderr, flush=True))

    from edge_agent.ingest import ingest_files  # noqa: F401  (warm the imports before measuring nothing)
    from server.simulate import ChainSpec, simulate_chain
    from transport.mqtt import BrokerConfig, publish_retained

    floor_daemon, floor_camera = import_floor(DAEMON_IMPORTS), import_floor(CAMERA_IMPORTS)
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
        folder = Path(tmp)
        yesterday = date.today() - timedelta(days=1)
        say("simulating a store and training a model ...")
        simulate_chain(ChainSpec(stores=1, customers_per_store=args.customers, days=365, seed=11, end=yesterday),
                       folder / "chain")
        store_dir = folder / "chain" / "store-01"
        public, release = build_model_release(folder, store_dir, yesterday - timedelta(days=91))
        with (store_dir / "pos.csv").open() as handle:
            customers = sorted({row["customer_id"] for row in csv.DictReader(handle) if row["customer_id"]})
        broker = Mosquitto(folder / "broker").start()
        aggregator = AggregatorProcess(folder / "central", broker.url, str(folder / "central.db")).start()
        publish_retained(BrokerConfig(broker.url), "retail/v1/bench/model/current", release)
        camera = FakeCamera(make_scene(seconds=60, seed=4, fps=10), free_port()).start()
        config, data = write_config(folder, broker.url, public, camera.url)
        (data / "dropbox").mkdir(parents=True)
        (data / "dropbox" / "history.csv").write_bytes((store_dir / "pos.csv").read_bytes())
        daemon = subprocess.Popen([str(VENV_BIN / "edge-agent"), "run", "--config", str(config)],
                                  stdout=subprocess.DEVNULL, stderr=open(folder / "daemon.stderr", "wb"))
        stop = threading.Event()
        try:
            say("warming up: history ingested, model activated, first scoring ...")
            wait_until(lambda: (data / "run" / "http.port").exists(), 60, "the daemon's HTTP endpoint")
            wait_until(lambda: (health(data).get("last_score") or {}).get("scored"), 300, "the first scoring")
            feeder = threading.Thread(target=feed_transactions, args=(data / "dropbox", customers, stop), daemon=True)
            feeder.start()
            time.sleep(args.warmup_minutes * 60)
            ingested_before = metric(data, "churn_transactions_ingested_total")
            score_runs_before = score_runs(data)
            camera_pid = next(iter(children_of(daemon.pid)), 0)
            samples, start = Samples(), time.monotonic()
            cpu_start = (cpu_seconds(daemon.pid), cpu_seconds(camera_pid))
            end = start + args.minutes * 60
            while time.monotonic() < end:
                if daemon.poll() is not None:
                    raise SystemExit("benchmark: the daemon exited: " + (folder / "daemon.stderr").read_text()[-500:])
                samples.times.append(time.monotonic() - start)
                samples.daemon.append(rss_mb(daemon.pid))
                samples.camera.append(rss_mb(camera_pid))
                if len(samples.times) % 12 == 0:
                    say(f"  {samples.times[-1] / 60:4.1f} min: daemon {samples.daemon[-1]:.0f} MB, "
                        f"camera {samples.camera[-1]:.0f} MB")
                time.sleep(5)
            wall = time.monotonic() - start
            cpu_daemon = (cpu_seconds(daemon.pid) - cpu_start[0]) / wall
            cpu_camera = (cpu_seconds(camera_pid) - cpu_start[1]) / wall
            final = health(data)
            ingested = metric(data, "churn_transactions_ingested_total") - ingested_before
            frames = sum(c.get("frames", 0) for c in final.get("cameras", []))
            scored_runs = score_runs(data) - score_runs_before
            torch_loaded = final["torch_loaded"]
            camera_restarted = camera_pid not in children_of(daemon.pid)
        finally:
            stop.set()
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                daemon.wait(timeout=90)
            camera.stop()
            aggregator.kill()
            broker.kill()

    total = [d + c for d, c in zip(samples.daemon, samples.camera)]
    report = {
        "minutes": round(wall / 60, 2),
        "rss_mb": {"daemon_median": round(statistics.median(samples.daemon), 1), "daemon_peak": round(max(samples.daemon), 1),
                   "camera_median": round(statistics.median(samples.camera), 1), "camera_peak": round(max(samples.camera), 1),
                   "total_peak": round(max(total), 1)},
        "cpu_share_of_one_core": {"daemon": round(cpu_daemon, 3), "camera": round(cpu_camera, 3)},
        "growth": {"daemon_mb_per_hour": round(slope_per_hour(samples.times, samples.daemon), 2),
                   "camera_mb_per_hour": round(slope_per_hour(samples.times, samples.camera), 2),
                   "daemon_last_minus_first_third_mb": round(thirds_growth(samples.daemon), 2)},
        "baseline_import_floor_mb": {"daemon": round(floor_daemon, 1), "camera": round(floor_camera, 1)},
        "ratio_total_peak_vs_import_floor": round(max(total) / (floor_daemon + floor_camera), 2),
        "work": {"transactions_ingested": int(ingested), "camera_frames": frames, "scoring_runs": scored_runs,
                 "torch_loaded": torch_loaded, "camera_restarted": camera_restarted},
        "goal": "total RSS <= 250 MB and no growth",
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    rss, cpu, growth = report["rss_mb"], report["cpu_share_of_one_core"], report["growth"]
    print(f"daemon RSS median {rss['daemon_median']} MB (peak {rss['daemon_peak']}), camera child "
          f"{rss['camera_median']} MB (peak {rss['camera_peak']}), together at most {rss['total_peak']} MB")
    print(f"CPU: daemon {cpu['daemon']:.1%} of one core, camera {cpu['camera']:.1%}")
    print(f"growth: daemon {growth['daemon_mb_per_hour']:+.2f} MB/h, camera {growth['camera_mb_per_hour']:+.2f} MB/h "
          f"(daemon last third - first third {growth['daemon_last_minus_first_third_mb']:+.2f} MB)")
    print(f"baseline import floor {floor_daemon:.0f} + {floor_camera:.0f} MB; ratio {report['ratio_total_peak_vs_import_floor']}")
    print(f"work done in {report['minutes']} min: {report['work']}")


if __name__ == "__main__":
    main()
