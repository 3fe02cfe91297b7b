"""The store box's configuration: every shipped profile loads, errors name the key and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import edge_agent
from edge_agent.config import ConfigError, EdgeConfig, load_config
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent.parent
PROFILES = sorted((ROOT / "edge_agent" / "profiles").glob("*.toml"))
MINIMAL = """
profile = "{profile}"
[store]
chain = "acme"
store_id = "paris-01"
data_dir = "{data}"
"""


def write(tmp_path: Path, text: str, name: str = "edge-agent.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_every_device_profile_loads_through_the_config_model(profile: Path, tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL.format(profile=profile, data=tmp_path / "data")))
    assert config.camera["resize_width"] >= 320 and config.training.threads >= 1
    assert config.daemon.memory_alarm_mb > 0
    assert config.store.db_path == tmp_path / "data" / "store.db"


def test_three_device_classes_are_shipped() -> None:
    assert {p.stem for p in PROFILES} >= {"rpi4", "jetson-orin-nano", "x86-minipc"}


EXAMPLE = ROOT / "firmware_configs" / "edge-agent.example.toml"


def example_with_its_files(tmp_path: Path) -> Path:
    """The shipped example as installed: its credential files exist (here in tmp_path), the rest unchanged."""
    for name in ("ca.crt", "store-paris-01.mqtt-password", "store-paris-01.crt", "store-paris-01.key",
                 "release-signing.key.pub", "supernode-paris-01"):
        (tmp_path / name).write_text("x")
    text = EXAMPLE.read_text().replace("/etc/churn", str(tmp_path))
    text = text.replace("/var/lib/churn", str(tmp_path / "data")).replace("/var/log/churn", str(tmp_path / "log"))
    return write(tmp_path, text)


def test_the_shipped_example_passes_check_config_with_its_profile_from_the_installed_agent(tmp_path: Path) -> None:
    result = run_cli("edge-agent", "check-config", str(example_with_its_files(tmp_path)), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    profile = Path(summary["profile"])
    assert profile.name == "rpi4.toml" and profile.parent == Path(edge_agent.__file__).resolve().parent / "profiles"
    assert summary["store_id"] == "paris-01" and summary["cameras"] == ["entrance"] and summary["federation"]


def test_the_shipped_example_as_is_fails_only_on_a_missing_credential_file() -> None:
    """Checked in a checkout, before any key is issued: its profile resolves, its /etc/churn files are missing."""
    result = run_cli("edge-agent", "check-config", str(EXAMPLE))
    assert "profile" not in result.stderr
    assert result.returncode == 0 or (result.stderr.count("\n") == 1 and "/etc/churn/" in result.stderr), result.stderr


def test_an_unknown_profile_name_is_an_error_naming_the_shipped_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no shipped profile named 'rpi5' \(did you mean 'rpi4'\?"):
        load_config(write(tmp_path, MINIMAL.format(profile="rpi5", data=tmp_path / "data")))
    with pytest.raises(ConfigError, match=r"no shipped profile named 'laptop' \(shipped: jetson-orin-nano, rpi4, x86-minipc"):
        load_config(write(tmp_path, MINIMAL.format(profile="laptop", data=tmp_path / "data")))


def test_a_profile_given_by_a_relative_path_is_read_from_the_configurations_folder(tmp_path: Path) -> None:
    (tmp_path / "my-box.toml").write_text("[training]\nthreads = 3\n")
    config = load_config(write(tmp_path, MINIMAL.format(profile="my-box.toml", data=tmp_path / "data")))
    assert config.training.threads == 3 and config.profile == tmp_path / "my-box.toml"


def test_the_shipped_example_is_valid_once_its_files_exist(tmp_path: Path) -> None:
    config = load_config(example_with_its_files(tmp_path))
    assert config.federation.enabled and config.mqtt is not None
    assert [c.name for c in config.cameras] == ["entrance"]
    [(source, settings)] = config.camera_settings()
    assert source.startswith("rtsp://") and settings.fps_budget == 8.0  # from the rpi4 profile


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("[store]", "[store]\npol_seconds = 3"), "unknown key store.pol_seconds"),
        (('chain = "acme"\n', ""), "missing key store.chain: add chain = ... under [store]"),
        (("[store]", "[scoring]\ndaily_at = \"25:00\"\n[store]"), "scoring.daily_at: must be HH:MM"),
        (("[store]", "[mqtt]\nurl = \"http://broker\"\n[store]"), "mqtt.url: broker URL"),
        (("[store]", "[mqtt]\nurl = \"mqtt://u:secret@broker\"\n[models]\nfetch_releases = false\n[store]"),
         "mqtt.url: must not hold a password"),
        (("[store]", "[federation]\nenabled = true\n[store]"), "federation: enabled needs superlink"),
        (("[store]", "[retention]\ntransactions_days = 100\n[store]"), "retention.transactions_days"),
        (("[store]", "[alerts]\ndaily_cap = 0\n[store]"), "alerts.daily_cap must be at least 1"),
        (("[store]", "[risk]\nalert_min_level = \"blue\"\n[store]"), "risk.alert_min_level"),
        (("[store]", "[[cameras]]\nname = \"door\"\nsource = \"0\"\nresize_widht = 3\n[store]"), "unknown key camera.resize_widht"),
        (("[store]", "[mqtt]\nurl = \"mqtt://broker\"\n[store]"), "models.public_key: needed to verify releases"),
    ],
)
def test_a_bad_key_is_named_with_the_fix(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = MINIMAL.format(profile=PROFILES[0], data=tmp_path / "data").replace(*change, 1)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        load_config(write(tmp_path, text))


def test_check_config_command(tmp_path: Path) -> None:
    good = write(tmp_path, MINIMAL.format(profile=PROFILES[0], data=tmp_path / "data"))
    ok = run_cli("edge-agent", "check-config", str(good))
    assert ok.returncode == 0 and "OK" in ok.stdout
    bad = write(tmp_path, MINIMAL.format(profile=PROFILES[0], data=tmp_path / "d").replace("[store]", "[stor]\n[store]"), "bad.toml")
    result = run_cli("edge-agent", "check-config", str(bad))
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "unknown key stor" in result.stderr


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    text = MINIMAL.format(profile=PROFILES[0], data="data")
    config = load_config(write(tmp_path, text))
    assert config.store.data_dir == (tmp_path / "data").resolve()
    assert isinstance(config, EdgeConfig)
