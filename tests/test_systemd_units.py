"""The shipped systemd units: systemd itself accepts them, and every command line they run exists."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.cli import app as edge_app
from server.cli import app as server_app
from tests.cli_commands import leaf_commands

ROOT = Path(__file__).resolve().parent.parent
UNITS = sorted((ROOT / "firmware_configs" / "systemd").glob("*.service"))
VENV_BIN = Path(sys.executable).parent
INSTALLED_BIN = "/opt/churn/.venv/bin/"


def service_settings(unit: Path) -> dict[str, list[str]]:
    """Key → values of the [Service] section, continuation lines joined."""
    settings: dict[str, list[str]] = {}
    section, pending = "", ""
    for raw in unit.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_units_are_shipped_for_the_box_and_the_central_side() -> None:
    assert {u.name for u in UNITS} >= {"edge-agent.service", "churn-aggregator@.service",
                                       "churn-console.service", "flower-superlink.service",
                                       "churn-fleet-gateway.service"}


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_systemd_accepts_the_unit_without_a_warning(unit: Path, tmp_path: Path) -> None:
    name = unit.name.replace("@.", "@1.")  # a template is verified as one instance
    copy = tmp_path / name
    copy.write_text(unit.read_text().replace(INSTALLED_BIN, f"{VENV_BIN}/"))
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_every_option_on_the_command_line_exists(unit: Path) -> None:
    (command,) = service_settings(unit)["ExecStart"]
    argv = shlex.split(command)
    program = Path(argv[0]).name
    flags = [a.split("=")[0] for a in argv[1:] if a.startswith("--")]
    if program in ("edge-agent", "churn-server"):
        commands = leaf_commands(edge_app if program == "edge-agent" else server_app)
        words = [a for a in argv[1:] if not a.startswith("-")]
        name = next((" ".join(words[:n]) for n in (2, 1) if " ".join(words[:n]) in commands), None)
        assert name, f"{unit.name}: {program} has no command {' '.join(words[:2])!r}"
        known = {opt for param in commands[name].params for opt in param.opts}
    else:
        help_text = subprocess.run([str(VENV_BIN / program), "--help"], capture_output=True, text=True,
                                   timeout=60).stdout
        known = {word.strip(",") for word in help_text.split() if word.startswith("--")}
    assert not set(flags) - known, f"{unit.name}: unknown options {set(flags) - known}"


def test_the_store_agent_is_watched_limited_and_always_restarted() -> None:
    settings = {k: v[-1] for k, v in service_settings(ROOT / "firmware_configs/systemd/edge-agent.service").items()}
    assert settings["Type"] == "notify" and settings["Restart"] == "always"
    assert int(settings["WatchdogSec"]) > 0
    assert settings["MemoryMax"] and settings["CPUQuota"].endswith("%")
    assert settings["KillMode"] == "mixed"  # the agent stops its own children on SIGTERM


def test_the_superlink_listens_on_loopback_and_the_stores_get_only_the_gateway() -> None:
    """Its Control API registers keys and starts code on the server: nothing but this host may reach it."""
    (superlink,) = service_settings(ROOT / "firmware_configs/systemd/flower-superlink.service")["ExecStart"]
    assert "--host 127.0.0.1" in superlink and "--enable-supernode-auth" in superlink
    (gateway,) = service_settings(ROOT / "firmware_configs/systemd/churn-fleet-gateway.service")["ExecStart"]
    assert "fleet-gateway --superlink 127.0.0.1:9093" in gateway and "--port 9092" in gateway


def test_the_superlink_starts_its_serverapp_as_promptly_as_the_code_does() -> None:
    """The unit's SuperExec poll is the one every Flower process the code starts gets (models/flower_protocol.py)."""
    from models.flower_protocol import SUPEREXEC_ENV

    environment = service_settings(ROOT / "firmware_configs/systemd/flower-superlink.service")["Environment"]
    assigned = dict(pair.split("=", 1) for line in environment for pair in shlex.split(line))
    assert {key: assigned.get(key) for key in SUPEREXEC_ENV} == SUPEREXEC_ENV
