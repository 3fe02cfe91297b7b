"""The real store-box daemon against input that used to stop a part of it, or roll it back.

- A deeply nested JSON Lines file, a release whose graph is not base64, a
  corrupt store database: each raises a visible alarm (/health, /metrics, the
  status the console reads), the offending file or release is set aside with a
  reason, and every other part keeps working; a database that cannot be opened
  at all stops the daemon with a non-zero status and the reason.
- An older signed release, or a signed graph that answers NaN, is refused;
  the active model keeps serving. A release signed as a rollback is taken.
- A symbolic link in the drop folder is never followed, and nothing a file
  holds is echoed into a reason or a log.
- A file a till is still writing is read again until it stops changing.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from models.release import build_release, generate_signing_key, load_private_key
from tests.conftest import run_cli
from tests.services import Daemon, Mosquitto
from transport.mqtt import BrokerConfig, publish_retained

pytestmark = pytest.mark.integration
MODEL_TOPIC = "retail/v1/demo/model/current"
STATUS_TOPIC = "retail/v1/demo/store-01/status"
HEADER = "customer_id,timestamp,amount,transaction_id\n"


@dataclass
class Box:
    folder: Path
    broker: Mosquitto
    signing_key: Path
    daemon: Daemon
    data: Path

    def publish(self, document: dict[str, Any] | bytes) -> None:
        raw = document if isinstance(document, bytes) else json.dumps(document).encode()
        publish_retained(BrokerConfig(self.broker.url), MODEL_TOPIC, raw)

    def release(self, model_dir: Path, **options: Any) -> dict[str, Any]:
        return build_release(model_dir, "demo", load_private_key(self.signing_key), **options)

    def drop(self, name: str, content: bytes) -> Path:
        path = self.data / "dropbox" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(name + ".part")
        temporary.write_bytes(content)
        temporary.rename(path)
        return path

    def transactions(self) -> int:
        with sqlite3.connect(f"file:{self.data / 'store.db'}?mode=ro", uri=True, timeout=10) as conn:
            return int(conn.execute("SELECT count(*) FROM transactions").fetchone()[0])

    def metrics(self) -> str:
        port = (self.data / "run" / "http.port").read_text().strip()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def alarms(self) -> dict[str, str]:
        return dict(self.daemon.health().get("alarms", {}))

    def until(self, check: Any, seconds: float = 60, what: str = "") -> None:
        deadline = time.monotonic() + seconds
        while not check():
            assert self.daemon.process is not None and self.daemon.process.poll() is None, (
                f"the daemon exited ({self.daemon.process.returncode}) while waiting for {what}:\n"
                + self.daemon.log()[-3000:])
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not reached in {seconds} s; alarms {self.alarms()}")
            time.sleep(0.2)


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    broker = Mosquitto(tmp_path / "broker").start()
    signing_key = tmp_path / "release.key"
    public = generate_signing_key(signing_key)
    data = tmp_path / "data"
    config = tmp_path / "edge-agent.toml"
    config.write_text(f"""
[store]
chain = "demo"
store_id = "store-01"
data_dir = "{data}"
[ingest]
poll_seconds = 0.2
settle_seconds = 1.0
[scoring]
every_minutes = 0.02
[daemon]
http_port = 0
[mqtt]
url = "{broker.url}"
drain_every_seconds = 0.5
status_every_seconds = 1
metrics_every_seconds = 5
[models]
public_key = "{public}"
""")
    daemon = Daemon(config, data).start()
    setup = Box(tmp_path, broker, signing_key, daemon, data)
    try:
        setup.until(lambda: (data / "run" / "http.port").exists(), 60, "the daemon's HTTP port")
        yield setup
    finally:
        daemon.kill()
        daemon.reap_children()
        broker.kill()


def retained_status(box: Box) -> dict[str, Any]:
    """The status the box last published (what the aggregator and the console see)."""
    received: list[bytes] = []
    arrived = threading.Event()
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.on_connect = lambda c, *_: c.subscribe(STATUS_TOPIC, qos=1)
    client.on_message = lambda _c, _u, message: (received.append(message.payload), arrived.set())
    client.connect("127.0.0.1", box.broker.port)
    client.loop_start()
    try:
        arrived.wait(10)
    finally:
        client.loop_stop()
        client.disconnect()
    return dict(json.loads(received[-1])) if received else {}


def nan_graph(trained_model_dir: Path, out: Path, version: str) -> Path:
    """The trained model's manifest around a graph whose every output is NaN (0 / 0), signed like any other."""
    import onnx
    from onnx import TensorProto, helper

    manifest = json.loads((trained_model_dir / "manifest.json").read_text())
    features = len(manifest["feature_names"])
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["features", "zero"], ["nothing"]),
         helper.make_node("ReduceSum", ["nothing"], ["sum"], keepdims=0, axes=[1]),
         helper.make_node("Div", ["sum", "zero"], ["probability"])],
        "nan", [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["customers", features])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["customers"])], [zero])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    out.mkdir(parents=True)
    (out / "model.onnx").write_bytes(model.SerializeToString())
    onnx.checker.check_model(model)
    return _with_manifest(manifest, out, version)


def _with_manifest(manifest: dict[str, Any], out: Path, version: str, created_at: str | None = None) -> Path:
    import hashlib

    manifest = {**manifest, "version": version, "sha256": hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest(),
                "created_at": created_at or time.strftime("%Y-%m-%dT%H:%M:%S.999999Z", time.gmtime(time.time() + 60))}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def older_copy(trained_model_dir: Path, out: Path, version: str) -> Path:
    shutil.copytree(trained_model_dir, out)
    manifest = json.loads((trained_model_dir / "manifest.json").read_text())
    return _with_manifest(manifest, out, version, "2020-01-01T00:00:00.000000Z")


def test_a_nested_file_bad_older_or_nan_releases_and_a_corrupt_database_stop_nothing(
        box: Box, trained_model_dir: Path, tmp_path: Path) -> None:
    good = box.release(trained_model_dir)
    box.publish(good)
    box.until(lambda: box.daemon.health().get("model_version") == good["version"], 90, "the first model")

    deep_row = b'{"customer_id": ' + b"[" * 50_000 + b"]" * 50_000 + b"}\n"
    box.drop("deep-row.jsonl", b'{"customer_id": "c1", "timestamp": "2025-03-01T10:00:00", "amount": 5}\n' + deep_row)
    box.drop("deep-first.jsonl", b"[" * 20_000 + b"]" * 20_000 + b"\n")  # its first line within the sniff window
    box.until(lambda: (box.data / "dropbox" / "done" / "deep-row.jsonl").exists()
              and (box.data / "dropbox" / "failed" / "deep-first.jsonl").exists(), 60, "both deep files handled")
    assert box.transactions() == 1, "the good row is in, the nested one quarantined"

    box.publish({**box.release(trained_model_dir), "onnx_b64": "!!! not base64 !!!"})
    box.until(lambda: "release_refused" in box.alarms(), 60, "the malformed release refused")
    assert "not valid base64" in box.alarms()["release_refused"]
    assert 'churn_alarm{alarm="release_refused"} 1.0' in box.metrics()
    box.until(lambda: "release_refused" in retained_status(box).get("alarms", {}), 30, "the alarm in the status")

    box.drop("later.csv", (HEADER + "c2,2025-03-02T11:00:00,7.50,t-later\n").encode())
    box.until(lambda: box.transactions() == 2, 60, "a later file ingested")

    # An older signed release (a replay), then a signed graph that answers NaN: refused, the model keeps serving.
    older = older_copy(trained_model_dir, tmp_path / "older", "central-2020-01-01")
    box.publish(box.release(older))
    box.until(lambda: "not newer" in box.alarms().get("release_refused", ""), 60, "the older release refused")
    box.publish(box.release(nan_graph(trained_model_dir, tmp_path / "nan", "nan-1")))
    box.until(lambda: "not a finite number" in box.alarms().get("release_refused", ""), 60, "the NaN graph refused")
    assert box.daemon.health()["model_version"] == good["version"], "the active model keeps serving"
    box.publish(box.release(older, rollback=True))  # an operator going back, deliberately: taken
    box.until(lambda: box.daemon.health().get("model_version") == "central-2020-01-01", 60, "the signed rollback")
    assert "release_refused" not in box.alarms()

    # Someone's disk tool wrote over the store database: scoring raises its alarm, the box stays up.
    with open(box.data / "store.db", "r+b") as database:
        database.seek(4096)
        database.write(b"\xde\xad\xbe\xef" * 8192)
    for sidecar in ("store.db-wal", "store.db-shm"):
        (box.data / sidecar).unlink(missing_ok=True)
    box.until(lambda: "scoring" in box.alarms(), 60, "the scoring alarm")
    assert 'churn_alarm{alarm="scoring"} 1.0' in box.metrics()
    time.sleep(2)  # several scoring periods: the loop is still there, not dead
    assert box.daemon.process is not None and box.daemon.process.poll() is None, box.daemon.log()[-2000:]
    assert box.daemon.health()["status"] == "degraded"
    assert box.daemon.terminate() == 0


def test_a_store_database_that_cannot_be_opened_stops_the_daemon_with_the_reason(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "store.db").write_bytes(b"this is no database " * 500)
    config = tmp_path / "edge-agent.toml"
    config.write_text(f'[store]\nchain = "demo"\nstore_id = "s1"\ndata_dir = "{data}"\n[daemon]\nhttp_port = 0\n')
    result = run_cli("edge-agent", "run", "--config", str(config), timeout=60)
    assert result.returncode == 78, result.stderr
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("edge-agent: error: the store database") and "cannot be opened" in line, line


def test_links_are_never_followed_nor_content_echoed_and_a_growing_file_is_read_again(
        box: Box, tmp_path: Path) -> None:
    secret = tmp_path / "store-01.mqtt-password"
    secret.write_text("hunter2-very-secret\n")
    outside = tmp_path / "elsewhere.csv"
    outside.write_text(HEADER + "c9,2025-03-01T10:00:00,9.99,t-outside\n")
    folder = box.data / "dropbox"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "passwords.csv").symlink_to(secret)
    (folder / "sales.csv").symlink_to(outside)
    (folder / "tree").symlink_to(tmp_path)
    box.drop("not-pos.csv", b"hunter2-in-a-file,no header here\n")
    failed = folder / "failed"
    box.until(lambda: all((failed / n).is_symlink() for n in ("passwords.csv", "sales.csv", "tree"))
              and (failed / "not-pos.csv").exists(), 60, "links and the non-export set aside")
    assert box.transactions() == 0, "the CSV outside the folder was not read"
    assert secret.read_text() == "hunter2-very-secret\n" and outside.exists(), "targets untouched"
    reasons = "".join(p.read_text() for p in failed.glob("*.reason"))
    assert "symbolic link" in reasons
    for text in (reasons, box.daemon.log()):
        assert "hunter2" not in text

    # A till that pauses longer than the settle time, then goes on writing the same file.
    path = box.data / "dropbox" / "till-export.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    first = [f"c{n},2025-03-01T10:00:00,{n}.00,t{n}\n" for n in range(100)]
    rest = [f"c{n},2025-03-01T11:00:00,{n}.00,t{n}\n" for n in range(100, 200)]
    with open(path, "w") as writer:
        writer.write(HEADER + "".join(first))
        writer.flush()
        box.until(lambda: box.transactions() == 100, 60, "the first part ingested")
        writer.write("".join(rest))
    box.until(lambda: box.transactions() == 200, 60, "the rest ingested")
    box.until(lambda: (box.data / "dropbox" / "done" / "till-export.csv").exists(), 30, "the file done")
    assert box.transactions() == 200
