"""The federation over real processes: a TLS SuperLink with SuperNode authentication, three store
SuperNodes, a store lost mid-federation, and the SuperLink killed with SIGKILL and restarted."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from server.pki import supernode_key
from server.processes import kill_group
from tests.conftest import CHAIN_AS_OF
from tests.services import VENV_BIN, SuperLink, SuperNode, federation_site, flower_env

pytestmark = pytest.mark.integration


@dataclass
class Deployment:
    superlink: SuperLink
    nodes: dict[str, SuperNode]
    pki: Path


@pytest.fixture(scope="module")
def deployment(chain_dbs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("flower")
    with federation_site(root, chain_dbs) as (superlink, nodes):
        yield Deployment(superlink, nodes, superlink.pki)


def online_nodes(superlink: SuperLink) -> list[dict]:  # type: ignore[type-arg]
    result = subprocess.run([str(VENV_BIN / "flwr"), "supernode", "list", "churn", "--format", "json"],
                            env=flower_env(superlink.cli_home()), capture_output=True, text=True, timeout=60)
    return [n for n in json.loads(result.stdout)["nodes"] if n.get("status") == "online"]


def test_only_registered_supernodes_join(deployment: Deployment, tmp_path: Path) -> None:
    private, _ = supernode_key(deployment.pki, "intruder")  # never registered
    intruder = SuperNode(tmp_path / "intruder", deployment.superlink, private, 'store-db="/nonexistent.db"').start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(online_nodes(deployment.superlink)) < 3:
            time.sleep(1)
        time.sleep(5)
        assert len(online_nodes(deployment.superlink)) == 3
    finally:
        intruder.kill()


def wait_for(path: Path, seconds: float, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, f"federate exited early: {process.stdout.read() if process.stdout else ''}"
        assert time.monotonic() < deadline, f"{path.name} did not appear in {seconds} s"
        time.sleep(0.5)


@pytest.mark.timeout(900)  # three rounds, a lost store's heartbeat expiry and a restart; each wait is bounded inside
def test_federation_survives_a_lost_store_and_a_killed_superlink(deployment: Deployment, tmp_path: Path) -> None:
    state = tmp_path / "federation"
    federate = subprocess.Popen(
        [str(VENV_BIN / "churn-server"), "federate", "--superlink", deployment.superlink.address,
         "--root-certificates", str(deployment.pki / "ca.crt"), "--as-of", CHAIN_AS_OF, "--state-dir", str(state),
         "--rounds", "3", "--chain", "demo", "--set", "local-epochs=1", "--set", "round-timeout-seconds=90",
         "--set", "node-wait-seconds=20", "--retries", "3", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        checkpoints = state / "checkpoints"
        wait_for(checkpoints, 180, federate)
        folder = next(checkpoints.iterdir())
        wait_for(folder / "round-0001.npz", 240, federate)
        deployment.nodes["store-03"].kill()  # a store box loses power for good
        wait_for(folder / "round-0002.npz", 240, federate)
        deployment.superlink.kill()  # the central server crashes, ServerApp and all
        time.sleep(2)
        deployment.superlink.start()  # restarted on its database: registered stores reconnect
        # (the round timeout covers their reconnect back-off, up to 20 s, and a ClientApp start on a busy box;
        # the lost store's messages end when the SuperLink misses two of its 30 s heartbeats)
        output, _ = federate.communicate(timeout=420)
    finally:
        if federate.poll() is None:
            kill_group(federate)
    assert federate.returncode == 0, output[-2000:]
    summary = json.loads(output[output.index("{"):])
    assert summary["resumed_from_round"] == 2
    assert [r["round"] for r in summary["rounds"]] == [1, 2, 3]
    assert summary["rounds"][0]["trained"] == ["store-01", "store-02", "store-03"]
    assert summary["rounds"][2]["trained"] == ["store-01", "store-02"]
    assert (Path(summary["release_dir"]) / "model.onnx").exists()
    assert summary["manifest"]["metrics"]["auc"] > 0.8
    # what each round cost, as the server and the stores' own ClientApp processes measured it
    for entry in summary["rounds"]:
        timing = entry["timing"]
        assert timing["round_wall_seconds"] >= timing["slowest_train_seconds"] > 0, timing
        assert set(timing["startup_seconds"]) == set(entry["trained"]), timing
        assert all(0 < seconds < timing["round_wall_seconds"] for seconds in timing["startup_seconds"].values())
    # the rounds helped: the stores that took part throughout rank their own customers better than after round 1
    first, last = (summary["rounds"][i]["per_store_auc"] for i in (0, 2))
    survivors = ("store-01", "store-02")
    assert sum(last[s] for s in survivors) > sum(first[s] for s in survivors), (first, last)
