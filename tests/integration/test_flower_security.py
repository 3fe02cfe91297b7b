"""The federation's security over real Flower processes, from a store's point of view and with a poisoned store.

The SuperLink listens on loopback only; a store knows the fleet gateway's
address and the chain's CA, nothing else. Through that address it cannot
register a key (which would make SuperNode authentication meaningless) nor
start a run (which would run its code on the central server). A store whose
ClientApp answers NaN weights, NaN moments, a billion examples and another
store's id takes part in a real federation: its replies are refused, the
others train, and a sound model is released.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from server.federation.runner import APP_DIR
from server.pki import supernode_key
from tests.conftest import CHAIN_AS_OF
from tests.services import VENV_BIN, SuperLink, federation_site, flower_env

pytestmark = pytest.mark.integration

POISON = textwrap.dedent('''
    """Loaded by every Python process of this SuperNode: its ClientApp answers poison."""
    import sys

    if any("clientapp" in part for part in sys.argv):
        import numpy as np

        from edge_agent import federated_store, training_rows

        trainer, rows = federated_store.StoreTrainer, training_rows.StoreRows
        honest_train, honest_moments = trainer.train, rows.moments

        def train(self, *args, **kwargs):
            weights, metrics = honest_train(self, *args, **kwargs)
            return {k: np.full_like(v, np.nan) for k, v in weights.items()}, {**metrics, "num-examples": 10**9}

        def moments(self):
            count, total, squares = honest_moments(self)
            return count * 1e9, total * np.nan, squares

        trainer.train, rows.moments = train, moments
        for kind in (trainer, rows):  # claims another store
            kind.store_id = property(lambda self: "store-01", lambda self, value: None)
''')


@dataclass
class Chain:
    superlink: SuperLink
    pki: Path
    root: Path


@pytest.fixture(scope="module")
def chain(chain_dbs: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    root = tmp_path_factory.mktemp("flower-security")
    poison = root / "poison"
    poison.mkdir()
    (poison / "sitecustomize.py").write_text(POISON)
    with federation_site(root, chain_dbs, env={"store-03": {"PYTHONPATH": str(poison)}}) as (superlink, _nodes):
        yield Chain(superlink, superlink.pki, root)


def store_cli(chain: Chain, *args: str) -> subprocess.CompletedProcess[str]:
    """`flwr` as a store could run it: it knows the address it was given and the chain's CA."""
    home = chain.root / "store-cli"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "churn"\n\n[superlink.churn]\naddress = "{chain.superlink.fleet_address}"\n'
        f'root-certificates = "{chain.pki / "ca.crt"}"\n')
    return subprocess.run([str(VENV_BIN / "flwr"), *args], env=flower_env(home), capture_output=True, text=True,
                          timeout=120)


def operator_cli(chain: Chain, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "flwr"), *args], env=flower_env(chain.superlink.cli_home()),
                          capture_output=True, text=True, timeout=120)


def test_a_store_can_neither_register_a_key_nor_start_a_run(chain: Chain) -> None:
    _, stranger = supernode_key(chain.pki, "stranger")
    registered = store_cli(chain, "supernode", "register", str(stranger), "churn")
    started = store_cli(chain, "run", str(APP_DIR), "churn", "--run-config", f'as-of="{CHAIN_AS_OF}"')
    assert registered.returncode != 0, registered.stdout + registered.stderr
    assert started.returncode != 0, started.stdout + started.stderr
    nodes = json.loads(operator_cli(chain, "supernode", "list", "churn", "--format", "json").stdout)["nodes"]
    assert len(nodes) == 3, "only the operator's three registrations"
    runs = operator_cli(chain, "ls", "churn", "--format", "json")
    assert runs.returncode == 0 and json.loads(runs.stdout).get("runs", []) == [], runs.stdout


def test_a_poisoned_store_is_refused_and_a_sound_model_released(chain: Chain, tmp_path: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        listed = json.loads(operator_cli(chain, "supernode", "list", "churn", "--format", "json").stdout)["nodes"]
        if sum(n.get("status") == "online" for n in listed) == 3:
            break
        time.sleep(1)
    state = tmp_path / "federation"
    result = subprocess.run(
        [str(VENV_BIN / "churn-server"), "federate", "--superlink", chain.superlink.address,
         "--root-certificates", str(chain.pki / "ca.crt"), "--as-of", CHAIN_AS_OF, "--state-dir", str(state),
         "--rounds", "1", "--chain", "demo", "--set", "local-epochs=1", "--set", "round-timeout-seconds=60",
         "--set", "node-wait-seconds=60", "--set", "min-available-nodes=3", "--retries", "0", "--json"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    summary = json.loads(result.stdout)
    for entry in summary["rounds"]:
        assert entry["trained"] == ["store-01", "store-02"], entry
        ((refused_store, reason),) = entry["refused"].items()
        assert refused_store.startswith("store-01 (node ") and "not finite" in reason, entry["refused"]
    assert summary["manifest"]["metrics"]["auc"] > 0.8
