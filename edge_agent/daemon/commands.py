"""The command lines of the daemon's child processes: one footfall pipeline per camera, and the
Flower SuperNode when the box takes part in federated training.

Children isolate native code and heavy imports (OpenCV, torch) from the daemon's own process;
children.py starts, watches and restarts them.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import tomli_w

from models.flower_protocol import SUPEREXEC_ENV, Node

from ..config import EdgeConfig
from ..footfall.settings import SourceSpec
from .children import SupervisedChild

VENV_BIN = Path(sys.executable).parent


def camera_children(config: EdgeConfig, stop: threading.Event, run_dir: Path) -> list[SupervisedChild]:
    """`edge-agent footfall` per camera, each with its settings (profile, file, camera) written for it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    children = []
    for source, settings in config.camera_settings():
        profile = run_dir / f"camera-{settings.name}.toml"
        keys = {k: v for k, v in settings.model_dump(mode="json").items() if v is not None}
        profile.write_text(tomli_w.dumps({"camera": keys}))
        argv = [str(VENV_BIN / "edge-agent"), "footfall", "--source", source, "--db", str(config.store.db_path),
                "--config", str(profile)]
        children.append(SupervisedChild(f"camera-{settings.name}", argv, stop, finite=not SourceSpec.parse(source).live,
                                        log_path=run_dir / f"camera-{settings.name}.log",
                                        pid_file=run_dir / f"camera-{settings.name}.pid"))
    return children


def supernode_child(config: EdgeConfig, stop: threading.Event, run_dir: Path) -> SupervisedChild | None:
    """`flower-supernode` with this store's node config, TLS and key; None when federation is off."""
    fed, training = config.federation, config.training
    if not fed.enabled:
        return None
    node_config = [f'{Node.STORE_DB}="{config.store.db_path}"', f"{Node.THREADS}={training.threads}",
                   f"{Node.MAX_TRAIN_ROWS}={training.max_train_rows}",
                   f"{Node.MAX_LOCAL_EPOCHS}={training.max_local_epochs}",
                   f'{Node.MODELS_DIR}="{config.models_dir}"',
                   f'{Node.CACHE_DIR}="{config.store.data_dir / "cache"}"']
    if training.batch_size:
        node_config.append(f"{Node.BATCH_SIZE}={training.batch_size}")
    argv = [str(VENV_BIN / "flower-supernode"), "--superlink", str(fed.superlink), "--port", str(fed.port),
            "--node-config", " ".join(node_config)]
    argv += ["--insecure"] if fed.insecure else ["--root-certificates", str(fed.root_certificates)]
    if fed.auth_private_key is not None:
        argv += ["--auth-supernode-private-key", str(fed.auth_private_key)]
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", **SUPEREXEC_ENV,
           "FLWR_HOME": str(config.store.data_dir / "flwr"), "FLWR_TELEMETRY_ENABLED": "0"}
    return SupervisedChild("supernode", argv, stop, env=env, log_path=run_dir / "supernode.log",
                           pid_file=run_dir / "supernode.pid")
