"""Signed releases on the store box: verify, canary, activate atomically, roll back; refuse the rest."""

from __future__ import annotations

import base64
import json
import shutil
from datetime import date
from pathlib import Path

import pytest
import torch

from edge_agent.model_registry import ModelRegistry, ModelRegistryError, install_and_activate
from models.export import write_model_dir
from models.release import ReleaseError, build_release, generate_signing_key, load_private_key, load_public_key, verify_release
from server.release import release_model
from tests.conftest import run_cli, run_json
from tests.services import Mosquitto
from transport.mqtt import BrokerConfig

TODAY = date(2025, 12, 31)  # the simulated chain's last day: labels exist for the canary


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    private = tmp_path_factory.mktemp("keys") / "release.key"
    return private, generate_signing_key(private)


@pytest.fixture(scope="module")
def broken_model(trained_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained network with its output turned upside down: a clearly worse model."""
    from models.network import ChurnNet
    from models.schema import FEATURE_NAMES

    manifest = json.loads((trained_model_dir / "manifest.json").read_text())
    net = ChurnNet(len(FEATURE_NAMES))
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0, 1)
    out = tmp_path_factory.mktemp("broken") / "m"
    write_model_dir(net, out, version="broken-1", horizon_days=manifest["horizon_days"], metrics={})
    return out


def test_a_signed_release_is_installed_checked_and_activated(trained_model_dir: Path, chain_dbs: list[Path],
                                                             keys: tuple[Path, Path], tmp_path: Path) -> None:
    document = build_release(trained_model_dir, "demo", load_private_key(keys[0]))
    release = verify_release(json.dumps(document).encode(), load_public_key(keys[1]), "demo")
    registry = ModelRegistry(tmp_path / "models")
    verdict = install_and_activate(registry, release, chain_dbs[0], TODAY)
    assert verdict.accepted and verdict.reason == "first model"
    assert verdict.candidate is not None and verdict.candidate["auc"] > 0.8
    assert registry.current == release.version
    assert (tmp_path / "models" / "current" / "model.onnx").read_bytes() == (trained_model_dir / "model.onnx").read_bytes()


@pytest.mark.parametrize("tamper", ["signature", "graph", "manifest", "chain"])
def test_unsigned_or_tampered_releases_are_refused(trained_model_dir: Path, keys: tuple[Path, Path], tamper: str) -> None:
    document = build_release(trained_model_dir, "demo", load_private_key(keys[0]))
    if tamper == "signature":
        document["signature"] = base64.b64encode(b"\x00" * 64).decode()
    elif tamper == "graph":
        graph = bytearray(base64.b64decode(document["onnx_b64"]))
        graph[-1] ^= 0xFF
        document["onnx_b64"] = base64.b64encode(bytes(graph)).decode()
    elif tamper == "manifest":
        document["manifest"]["horizon_days"] = 30
    else:
        document["chain"] = "other"
    with pytest.raises(ReleaseError):
        verify_release(json.dumps(document).encode(), load_public_key(keys[1]), "demo")


def test_a_release_signed_by_another_key_is_refused(trained_model_dir: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    generate_signing_key(other)
    document = build_release(trained_model_dir, "demo", load_private_key(other))
    with pytest.raises(ReleaseError, match="bad signature"):
        verify_release(json.dumps(document).encode(), load_public_key(keys[1]), "demo")


def test_a_clearly_worse_candidate_is_refused_and_the_old_one_keeps_serving(
    trained_model_dir: Path, broken_model: Path, chain_dbs: list[Path], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    key, public = load_private_key(keys[0]), load_public_key(keys[1])
    registry = ModelRegistry(tmp_path / "models")
    good = verify_release(build_release(trained_model_dir, "demo", key), public, "demo")
    install_and_activate(registry, good, chain_dbs[0], TODAY)
    bad = verify_release(build_release(broken_model, "demo", key), public, "demo")
    verdict = install_and_activate(registry, bad, chain_dbs[0], TODAY)
    assert not verdict.accepted and "clearly worse" in verdict.reason
    assert registry.current == good.version and "broken-1" in registry.installed()


def test_activate_and_rollback_swap_current_and_previous(trained_model_dir: Path, broken_model: Path,
                                                        keys: tuple[Path, Path], tmp_path: Path) -> None:
    key, public = load_private_key(keys[0]), load_public_key(keys[1])
    registry = ModelRegistry(tmp_path / "models")
    first = verify_release(build_release(trained_model_dir, "demo", key), public)
    second = verify_release(build_release(broken_model, "demo", key), public)
    registry.install(first)
    registry.install(second)
    registry.activate(first.version)
    registry.activate(second.version)
    assert (registry.current, registry.previous) == (second.version, first.version)
    assert registry.rollback() == first.version
    assert (registry.current, registry.previous) == (first.version, second.version)
    events = [e["event"] for e in registry.history()]
    assert events.count("activated") == 2 and events[-1] == "rolled back"


def test_a_corrupt_installed_graph_is_never_activated(trained_model_dir: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    release = verify_release(build_release(trained_model_dir, "demo", load_private_key(keys[0])), load_public_key(keys[1]))
    path = registry.install(release)
    (path / "model.onnx").write_bytes(b"rot")
    with pytest.raises(Exception, match="sha256 does not match"):
        registry.activate(release.version)
    assert registry.current is None
    with pytest.raises(ModelRegistryError, match="no previous model"):
        registry.rollback()


def test_release_over_mqtt_then_fetch_on_the_box(trained_model_dir: Path, chain_dbs: list[Path],
                                                 keys: tuple[Path, Path], tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        published = release_model(trained_model_dir, "demo", keys[0], broker=BrokerConfig(broker.url))
        assert published["topic"] == "retail/v1/demo/model/current"
        box = tmp_path / "box-models"
        result = run_json("edge-agent", "model", "fetch", "--mqtt", broker.url, "--chain", "demo",
                          "--public-key", str(keys[1]), "--models-dir", str(box), "--db", str(chain_dbs[1]))
        assert result["accepted"] and result["version"] == published["version"]
        status = run_json("edge-agent", "model", "status", "--models-dir", str(box))
        assert status["current"] == published["version"]
        wrong_chain = run_cli("edge-agent", "model", "fetch", "--mqtt", broker.url, "--chain", "other",
                              "--public-key", str(keys[1]), "--models-dir", str(box), "--db", str(chain_dbs[1]))
        assert wrong_chain.returncode == 1 and "no release is published" in wrong_chain.stderr
    finally:
        broker.kill()
    shutil.rmtree(tmp_path / "broker", ignore_errors=True)
