"""The federation's protocol has one owner: its keys, its defaults, and the Flower App's run config."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from dataclasses import fields
from pathlib import Path

from flwr.app import ConfigRecord

from edge_agent.client_app import _settings
from edge_agent.federated_store import LocalSettings
from models import flower_protocol
from models.flower_protocol import DEFAULTS, Config
from server.federation.runner import APP_DIR
from server.federation.settings import FederationSettings, flower_app_config, render_flower_app_config

ROOT = Path(__file__).resolve().parents[2]
# The modules that speak the protocol: they must spell its keys through models/flower_protocol.py.
SPEAKERS = [ROOT / "edge_agent" / "client_app.py", ROOT / "edge_agent" / "federated_store.py",
            *sorted((ROOT / "server" / "federation").glob("*.py")), ROOT / "server" / "server_app.py"]


def protocol_keys() -> set[str]:
    """Every key of the protocol spelled with a hyphen (single words such as "auc" are common English)."""
    keys = set()
    for holder in (flower_protocol.Config, flower_protocol.Metric, flower_protocol.Node, flower_protocol.StoreKey):
        keys.update(v for k, v in vars(holder).items() if k.isupper() and isinstance(v, str) and "-" in v)
    return keys


def string_literals(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings}


def test_no_module_spells_a_protocol_key_itself() -> None:
    keys = protocol_keys()
    assert {"as-of-day", "sum-sq", "hist-churned", "train-seconds", "store-db"} <= keys
    for path in SPEAKERS:
        spelled = string_literals(path) & keys
        assert not spelled, f"{path.relative_to(ROOT)} spells {sorted(spelled)}: use models/flower_protocol.py"


def test_the_flower_apps_run_config_lists_every_setting_with_its_default() -> None:
    declared = tomllib.loads((APP_DIR / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    assert declared == flower_app_config(), (
        "server/flower_app/pyproject.toml is out of date; its table should read:\n" + render_flower_app_config())
    assert {f.name.replace("_", "-") for f in fields(FederationSettings)} == set(declared)


def test_server_store_and_client_fallbacks_share_the_training_defaults() -> None:
    server = FederationSettings(as_of="2025-09-30", state_dir="/tmp/unused")
    store = LocalSettings(as_of_day=1, horizon_days=90)
    asked_nothing = _settings(ConfigRecord({Config.AS_OF_DAY: 1, Config.HORIZON_DAYS: 90}), {})
    for name in ("local_epochs", "learning_rate", "batch_size", "seed"):
        assert getattr(server, name) == getattr(store, name) == getattr(asked_nothing, name) == getattr(DEFAULTS, name)
    assert server.personalise_epochs == DEFAULTS.personalise_epochs


def test_the_box_bounds_what_the_server_asks() -> None:
    asked = ConfigRecord({Config.AS_OF_DAY: 1, Config.HORIZON_DAYS: 90, Config.LOCAL_EPOCHS: 9, Config.BATCH_SIZE: 4096})
    bounded = _settings(asked, {"max-local-epochs": 2, "batch-size": 256, "threads": 1, "cache-dir": "/var/cache/x"})
    assert (bounded.local_epochs, bounded.batch_size, bounded.threads, str(bounded.cache_dir)) == (2, 256, 1, "/var/cache/x")


def test_the_clientapp_module_loads_no_heavy_package_before_a_message_needs_it() -> None:
    """Flower starts a fresh process per message: what the module imports beyond Flower, every message pays."""
    heavy = ("torch", "cv2", "fastapi", "uvicorn", "rich", "typer", "sqlalchemy", "paho", "onnxruntime", "onnx",
             "edge_agent.daemon", "edge_agent.footfall", "edge_agent.ingest", "models.network")
    probe = ("import json, sys, flwr.app, flwr.clientapp, flwr.clientapp.mod; flower = set(sys.modules); "
             "import edge_agent.client_app; print(json.dumps(sorted(set(sys.modules) - flower)))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    ours = json.loads(result.stdout)
    assert "edge_agent.client_app" in ours
    assert not [m for m in ours if m.split(".")[0] in heavy or m in heavy], ours


def test_the_moments_query_is_answered_without_loading_torch(chain_dbs: list[Path]) -> None:
    """The first message of every federation: a fresh ClientApp process answers it with numpy alone."""
    probe = f"""
import json, sys
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.supercore.task_identity import TaskIdentity
from edge_agent.client_app import app
TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, SUPERLINK_NODE_ID
config = ConfigRecord({{"as-of-day": {FederationSettings(as_of="2025-09-30", state_dir="/x").as_of_day},
                        "horizon-days": 90}})
message = Message(RecordDict({{"config": config}}), message_type="query.stats", dst_node_id=101)
context = Context(run_id=1, node_id=101, node_config={{"store-db": sys.argv[1]}}, state=RecordDict(), run_config={{}})
reply = app(message, context)
metrics = reply.content["metrics"]
print(json.dumps({{"torch": "torch" in sys.modules, "examples": metrics["num-examples"],
                  "timing": sorted(k for k in metrics if k.endswith("-seconds"))}}))
"""
    result = subprocess.run([sys.executable, "-c", probe, str(chain_dbs[0])], capture_output=True, text=True,
                            check=True, cwd=ROOT, timeout=120)
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["torch"] is False and answer["examples"] > 1000
    assert answer["timing"] == ["prepare-seconds"], "start-up is reported only by a process Flower started"
