"""`churn-server federate`: submit the federation to a running SuperLink and wait for its release.

The SuperLink (central) and the stores' SuperNodes are long-running services;
this submits the Flower App in server/flower_app with the run config, follows
its log, and reads the summary the ServerApp writes. If the run dies (the
SuperLink was restarted, say), it waits for the SuperLink to answer again and
resubmits: the ServerApp resumes after the last checkpoint.

The ServerApp runs beside the SuperLink and writes to `state-dir`, so run this
on the central server, where that folder is visible.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from ..errors import FederationRunError
from .settings import SUMMARY_FILE, FederationSettings

APP_DIR = Path(__file__).resolve().parent.parent / "flower_app"
CONNECTION = "churn"
ROUND_LINE = re.compile(r"\[ROUND (\d+)/(\d+)\]")


@dataclass(frozen=True)
class SuperLinkConnection:
    address: str  # host:port of the SuperLink (Control API)
    insecure: bool = False
    root_certificates: Path | None = None

    def toml(self) -> str:
        """The `flwr` CLI's config.toml naming this SuperLink as its default connection."""
        entry: dict[str, Any] = {"address": self.address}
        if self.insecure:
            entry["insecure"] = True
        if self.root_certificates is not None:
            entry["root-certificates"] = str(self.root_certificates.resolve())
        return tomli_w.dumps({"superlink": {"default": CONNECTION, CONNECTION: entry}})


def client_app_component() -> Any:
    """The ClientApp the Flower App declares, loaded the way Flower loads it (by reference)."""
    config = tomllib.loads((APP_DIR / "pyproject.toml").read_text())
    module, _, attribute = config["tool"]["flwr"]["app"]["components"]["clientapp"].partition(":")
    return getattr(importlib.import_module(module), attribute)


def _run_config_arg(settings: FederationSettings) -> str:
    parts = []
    for key, value in settings.as_run_config().items():
        if isinstance(value, bool):
            parts.append(f"{key}={'true' if value else 'false'}")
        elif isinstance(value, (int, float)):
            parts.append(f"{key}={value}")
        else:
            parts.append(f"{key}={json.dumps(str(value))}")
    return " ".join(parts)


def _reachable(address: str, timeout: float = 2.0) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_superlink(address: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _reachable(address):
            return True
        time.sleep(1.0)
    return _reachable(address)


def _environment(flwr_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["FLWR_HOME"] = str(flwr_home)
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # flwr and flower-* of this venv
    return env


def _submit_once(settings: FederationSettings, connection: SuperLinkConnection, flwr_home: Path,
                 log_path: Path, on_round: Callable[[int, int], None]) -> int:
    command = [str(Path(sys.executable).parent / "flwr"), "run", str(APP_DIR), CONNECTION, "--stream",
               "--run-config", _run_config_arg(settings)]
    with open(log_path, "a") as log, subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_environment(flwr_home)
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            log.flush()
            match = ROUND_LINE.search(line)
            if match:
                on_round(int(match.group(1)), int(match.group(2)))
        return process.wait()


def read_summary(settings: FederationSettings, since: float) -> dict[str, Any] | None:
    path = settings.state_path / SUMMARY_FILE
    if not path.exists() or path.stat().st_mtime < since:
        return None
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def federate(
    settings: FederationSettings,
    connection: SuperLinkConnection,
    *,
    retries: int = 2,
    superlink_wait_seconds: float = 120.0,
    on_round: Callable[[int, int], None] = lambda done, total: None,
    flwr_home: Path | None = None,
) -> dict[str, Any]:
    """Submit, follow, and on failure resubmit (resuming) up to `retries` times."""
    settings.state_path.mkdir(parents=True, exist_ok=True)
    log_path = settings.state_path / "federation.log"
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="flwr-home-") as scratch:
        home = flwr_home or Path(scratch)
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(connection.toml())
        for attempt in range(retries + 1):
            if not wait_for_superlink(connection.address, superlink_wait_seconds):
                raise FederationRunError(f"no SuperLink answers at {connection.address}")
            status = _submit_once(settings, connection, home, log_path, on_round)
            summary = read_summary(settings, started)
            if summary is not None:
                return summary
            if attempt < retries:
                time.sleep(2.0)
        tail = log_path.read_text().splitlines()[-5:] if log_path.exists() else []
        raise FederationRunError(
            f"the federation did not finish (flwr run exited {status}); see {log_path}: " + " | ".join(tail)[-400:]
        )
