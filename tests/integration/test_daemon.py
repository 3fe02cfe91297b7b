"""The store-box daemon end to end: a simulated store with a camera, POS files dropped in a folder,
a real broker and a real aggregator; SIGKILL and restart; a camera that vanishes; bad releases."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from edge_agent.footfall.synthetic import make_scene
from models.release import build_release, generate_signing_key, load_private_key
from server.central import open_central_db, tables
from server.central.reads import list_alerts
from server.processes import free_port
from server.simulate import ChainSpec, simulate_chain
from tests.conftest import run_cli
from tests.fake_camera import FakeCamera
from tests.polling import wait_until
from tests.services import AggregatorProcess, Daemon, Mosquitto
from transport.mqtt import BrokerConfig, publish_retained

pytestmark = pytest.mark.integration
MODEL_TOPIC = "retail/v1/demo/model/current"


@dataclass
class Site:
    folder: Path
    broker: Mosquitto
    aggregator: AggregatorProcess
    public_key: Path
    release: dict[str, Any]
    pos_parts: list[Path]
    camera: FakeCamera

    @property
    def central(self) -> str:
        return str(self.folder / "central.db")


def split_csv(source: Path, folder: Path, share: float) -> list[Path]:
    """Two till exports: the first `share` of the history, then all of it again with the rest (as a till
    re-exporting a period does): the second file takes several ingest batches, the first of them all duplicates."""
    lines = source.read_text().splitlines(keepends=True)
    cut = 1 + int((len(lines) - 1) * share)
    first, second = folder / "pos-part1.csv", folder / "pos-part2.csv"
    first.write_text("".join(lines[:cut]))
    second.write_text("".join(lines))
    return [first, second]


def distinct_rows(parts: list[Path]) -> int:
    return len({line for part in parts for line in part.read_text().splitlines()[1:]})


def ingest_run(data: Path, name: str) -> tuple[int, str] | None:
    """(rows committed so far, status) of the store's latest ingest run of file `name`, if there is one."""
    with contextlib.closing(sqlite3.connect(f"file:{data / 'store.db'}?mode=ro", uri=True)) as store:
        return store.execute("SELECT rows, status FROM ingest_runs WHERE source = ? ORDER BY run_id DESC LIMIT 1",
                             (name,)).fetchone()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def site(trained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("site")
    yesterday = date.today() - timedelta(days=1)
    simulate_chain(ChainSpec(stores=1, customers_per_store=400, days=400, seed=3, end=yesterday), folder / "chain")
    broker = Mosquitto(folder / "broker").start()
    aggregator = AggregatorProcess(folder, broker.url, str(folder / "central.db")).start()
    private = folder / "release.key"
    public = generate_signing_key(private)
    release = build_release(trained_model_dir, "demo", load_private_key(private))
    publish_retained(BrokerConfig(broker.url), MODEL_TOPIC, json.dumps(release).encode())
    camera = FakeCamera(make_scene(seconds=20, seed=4, fps=10), free_port()).start()
    try:
        yield Site(folder, broker, aggregator, public, release,
                   split_csv(folder / "chain" / "store-01" / "pos.csv", folder, 0.9), camera)
    finally:
        camera.stop()
        aggregator.kill()
        broker.kill()


def write_config(folder: Path, site: Site, cameras: bool = True, mqtt: bool = True) -> tuple[Path, Path]:
    data = folder / "data"
    text = f"""
[store]
chain = "demo"
store_id = "store-01"
data_dir = "{data}"
[ingest]
poll_seconds = 0.5
settle_seconds = 0.5
[scoring]
every_minutes = 0.05
[alerts]
daily_cap = 1000
[daemon]
http_port = 0
"""
    if mqtt:
        text += f"""
[mqtt]
url = "{site.broker.url}"
drain_every_seconds = 0.5
status_every_seconds = 2
metrics_every_seconds = 2
resend_after_seconds = 5
[models]
public_key = "{site.public_key}"
"""
    if cameras:
        text += f"""
[[cameras]]
name = "door"
source = "{site.camera.url}"
line = [0, 120, 320, 120]
fps_budget = 10
reconnect_initial_seconds = 0.5
reconnect_max_seconds = 2
"""
    config = folder / "edge-agent.toml"
    config.write_text(text)
    return config, data


def store_alerts(data: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(data / "store.db")) as store:
        return {row[0] for row in store.execute("SELECT alert_id FROM alerts")}


def count_rows(data: Path) -> int:
    with contextlib.closing(sqlite3.connect(data / "store.db")) as store:
        return int(store.execute("SELECT count(*) FROM transactions").fetchone()[0])


def central_alerts(site: Site) -> set[str]:
    with open_central_db(site.central) as db:
        return {a["alert_id"] for a in list_alerts(db, limit=100_000)}


def central_pos_rows(site: Site) -> int:
    """POS rows the centre's data-quality tables say store-01 accepted."""
    days = tables.input_days
    with open_central_db(site.central) as db, db.read() as connection:
        return int(connection.execute(select(func.coalesce(func.sum(days.c.accepted), 0)).where(
            (days.c.store_id == "store-01") & (days.c.input == "pos"))).scalar_one())


def camera_processes(data: Path) -> int:
    profile = str(data / "run" / "camera-door.toml")
    count = 0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                count += profile in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                pass
    return count


def test_the_daemon_delivers_alerts_and_a_sigkill_loses_and_duplicates_nothing(site: Site, tmp_path: Path) -> None:
    config, data = write_config(tmp_path, site)
    daemon = Daemon(config, data).start()
    try:
        daemon.wait(lambda h: "dropbox" in h["components"], 30, "the drop folder watched")
        (data / "dropbox").mkdir(parents=True, exist_ok=True)
        (data / "dropbox" / "pos-part1.csv").write_bytes(site.pos_parts[0].read_bytes())
        health = daemon.wait(lambda h: h.get("model_version") == site.release["version"]
                             and (h.get("last_score") or {}).get("alerts", 0) > 0, 120, "a model and alerts")
        assert health["torch_loaded"] is False
        assert (data / "dropbox" / "done" / "pos-part1.csv").exists()
        daemon.wait(lambda h: any(c["state"] == "streaming" for c in h["cameras"]), 60, "the camera")
        deadline = time.monotonic() + 60
        while store_alerts(data) != central_alerts(site) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert store_alerts(data) and store_alerts(data) == central_alerts(site)

        # The metrics carry the box's data quality: the centre's board shows the export's rows.
        accepted = sqlite3.connect(data / "store.db").execute(
            "SELECT sum(accepted) FROM ingest_runs WHERE input = 'pos'").fetchone()[0]
        deadline = time.monotonic() + 30
        while central_pos_rows(site) != accepted and time.monotonic() < deadline:
            time.sleep(0.5)
        assert central_pos_rows(site) == accepted > 0

        # A release that is not ours is refused; the active model keeps serving.
        forged = {**site.release, "version": "forged-1"}
        publish_retained(BrokerConfig(site.broker.url), MODEL_TOPIC, json.dumps(forged).encode())
        daemon.wait(lambda h: "bad signature" in str(h["components"].get("releases", {}).get("last_refusal")), 60,
                    "the forged release refused")
        assert daemon.health()["model_version"] == site.release["version"]

        # Power cut in the middle of an ingest: once the second file's first batch is committed, not its last.
        (data / "dropbox" / "pos-part2.csv").write_bytes(site.pos_parts[1].read_bytes())
        run = wait_until(lambda: (lambda r: r if r and r[0] > 0 else None)(ingest_run(data, "pos-part2.csv")), 60,
                         "the second file's first batch committed", every=0.001)
        daemon.kill()
        after = ingest_run(data, "pos-part2.csv")
        assert after is not None and after[1] == "running", f"the kill landed mid-ingest ({run} rows, then {after})"
        assert count_rows(data) < distinct_rows(site.pos_parts), "part of the second file was still to come"
        daemon.start()
        daemon.wait(lambda h: (data / "dropbox" / "done" / "pos-part2.csv").exists(), 90, "the second file")
        rows = distinct_rows(site.pos_parts)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            stored = count_rows(data)
            if stored == rows and store_alerts(data) == central_alerts(site):
                break
            time.sleep(0.5)
        assert stored == rows, "every row once: none lost, none twice"
        assert store_alerts(data) == central_alerts(site)
        unacked = sqlite3.connect(data / "store.db").execute(
            "SELECT count(*) FROM outbox WHERE acked_at IS NULL").fetchone()[0]
        assert unacked == 0
        assert camera_processes(data) == 1, "the camera left running by the killed daemon was stopped"
        assert daemon.terminate() == 0
    finally:
        daemon.kill()
        daemon.reap_children()


def test_a_camera_that_vanishes_shows_in_status_and_recovers(site: Site, tmp_path: Path) -> None:
    config, data = write_config(tmp_path, site, mqtt=False)
    daemon = Daemon(config, data).start()
    try:
        daemon.wait(lambda h: any(c["state"] == "streaming" for c in h.get("cameras", [])), 60, "streaming")
        site.camera.stop()
        daemon.wait(lambda h: any(c["state"] == "reconnecting" for c in h["cameras"]), 60, "reconnecting")
        site.camera.start()
        health = daemon.wait(lambda h: any(c["state"] == "streaming" and c["gaps"] >= 1 for c in h["cameras"]), 60,
                             "streaming again, with the gap recorded")
        assert health["cameras"][0]["source"] == "camera:door"
        assert daemon.terminate() == 0
    finally:
        daemon.kill()
        daemon.reap_children()


def test_a_bad_config_stops_the_daemon_with_the_key_named(tmp_path: Path) -> None:
    config = tmp_path / "edge-agent.toml"
    config.write_text(f'[store]\nchain = "demo"\nstore_id = "s1"\ndata_dir = "{tmp_path}"\n[scoring]\ndaily_at = "6am"\n')
    result = run_cli("edge-agent", "run", "--config", str(config), timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == f"edge-agent: error: {config}: scoring.daily_at: must be HH:MM (24-hour)"





def test_systemd_hears_ready_then_watchdog_beats_then_stopping(tmp_path: Path) -> None:
    """What the unit's Type=notify and WatchdogSec rely on, over a real notify socket."""
    config = tmp_path / "edge-agent.toml"
    data = tmp_path / "data"
    config.write_text(f'[store]\nchain = "demo"\nstore_id = "s1"\ndata_dir = "{data}"\n[daemon]\nhttp_port = 0\n')
    with tempfile.TemporaryDirectory(dir="/tmp") as short, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        address = f"{short}/notify"  # a socket path must stay under 108 bytes
        sock.bind(address)
        sock.settimeout(1.0)
        daemon = Daemon(config, data).start({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "2000000"})
        heard: list[str] = []
        try:
            deadline = time.monotonic() + 60
            while heard.count("WATCHDOG=1") < 3 and time.monotonic() < deadline:
                try:
                    heard.append(sock.recv(256).decode())
                except TimeoutError:
                    assert daemon.process is not None and daemon.process.poll() is None, daemon.log()[-2000:]
            assert heard[0] == "READY=1" and heard.count("WATCHDOG=1") >= 3, heard
            assert daemon.terminate() == 0
            while "STOPPING=1" not in heard:
                heard.append(sock.recv(256).decode())
        finally:
            daemon.kill()
