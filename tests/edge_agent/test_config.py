"""The store box's configuration: every shipped profile loads, errors name the key and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import edge_agent
from edge_agent.config import ConfigError, EdgeConfig, load_config
from edge_agent.policy_sections import AlertsSection, RiskSection
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
    assert config.camera.resize_width >= 320 and config.training.threads >= 1
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
        (("[store]", "[alerts]\nweekly_budjet = 20\n[store]"),
         "unknown key alerts.weekly_budjet; did you mean weekly_budget?"),
        (("[store]", "[alerts.control_share]\npurpel = 0.1\n[store]"),
         "unknown key alerts.control_share.purpel; did you mean purple?"),
        (("[store]", "[alerts.control_share]\nred = 1.5\n[store]"), "alerts.control_share.red must be in"),
        (("[store]", "[risk]\nlapsed_after_gap = 4\n[store]"),
         "unknown key risk.lapsed_after_gap; did you mean lapsed_after_gaps?"),
        (("[store]", "[risk.actions.red]\nname = \"call\"\n[store]"), "missing key risk.actions.red.cost"),
        (("[store]", "[camera]\nfps_budgit = 5\n[store]"), "unknown key camera.fps_budgit; did you mean fps_budget?"),
        (("[store]", "[[cameras]]\nname = \"door\"\nsource = \"0\"\nresize_width = 8\n[store]"),
         "cameras[door].resize_width: Input should be greater than or equal to 64"),
        (("[store]", "[alerts]\npseudonymise_key_file = \"ref.key\"\n[store]"), "alerts.pseudonymise_key_file: "),
        (("[store]", "[[cameras]]\nname = \"door\"\nsource = 0\n[store]"), "cameras[door].source: must be a stream URL"),
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


def test_the_daemon_and_scoring_read_the_same_key_file_whatever_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative pseudonymise_key_file is next to the configuration, for the daemon as for `score --policy`."""
    from edge_agent.daemon.supervisor import Daemon
    from edge_agent.score import load_scoring_policy

    box = tmp_path / "etc"
    box.mkdir()
    (box / "customer-ref.key").write_text("the chain's key\n")
    text = MINIMAL.format(profile=PROFILES[0], data=tmp_path / "data")
    text += '[alerts]\npseudonymise_key_file = "customer-ref.key"\n'
    config_file = write(box, text)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "customer-ref.key").write_text("some other key\n")
    monkeypatch.chdir(elsewhere)
    config = load_config(config_file)
    assert config.alerts.pseudonymise_key_file == box / "customer-ref.key"
    assert Daemon(config).policy.pseudonymise_key == b"the chain's key"
    assert load_scoring_policy(config_file).pseudonymise_key == b"the chain's key"


def test_the_policy_tables_default_to_the_policy_dataclasses(tmp_path: Path) -> None:
    from models.alerting import AlertPolicy
    from models.risk import RiskConfig

    config = load_config(write(tmp_path, MINIMAL.format(profile=PROFILES[0], data=tmp_path / "data")))
    assert config.risk.policy() == RiskConfig() and config.alerts.policy() == AlertPolicy()
    assert config.alerts.pseudonymise_key() is None


def test_every_policy_setting_can_be_set_in_the_file(tmp_path: Path) -> None:
    from models.alerting import AlertPolicy
    from models.risk import Action, RiskConfig

    assert set(RiskSection.model_fields) == set(RiskConfig.__dataclass_fields__)
    assert set(AlertsSection.model_fields) - {"pseudonymise_key_file"} == set(AlertPolicy.__dataclass_fields__)
    text = MINIMAL.format(profile=PROFILES[0], data=tmp_path / "data") + """
[risk]
level_by = "score"
thresholds = [10, 30, 50, 70]
max_lifetime_years = 3.0
lapsed_after_days = 200
[risk.actions.purple]
name = "visit"
cost = 25.0
[alerts]
weekly_budget = 30
winback_cooldown_days = 90
[alerts.control_share]
purple = 0.2
"""
    config = load_config(write(tmp_path, text))
    risk, alerts = config.risk.policy(), config.alerts.policy()
    assert (risk.level_by, risk.thresholds, risk.max_lifetime_years, risk.lapsed_after_days) == (
        "score", (10, 30, 50, 70), 3.0, 200)
    assert risk.actions["purple"] == Action("visit", "visit", 25.0), "the label defaults to the name"
    assert risk.actions["red"].name == "service_plan", "a level left out keeps its default action"
    assert (alerts.weekly_budget, alerts.winback_cooldown_days, alerts.control_share) == (30, 90, {"purple": 0.2})


def test_camera_settings_come_from_the_profile_then_the_file_then_the_camera(tmp_path: Path) -> None:
    text = MINIMAL.format(profile="rpi4", data=tmp_path / "data") + """
[camera]
fps_budget = 5.0
[[cameras]]
name = "door"
source = "clips/door.mp4"
[[cameras]]
name = "till"
source = "rtsp://10.0.0.22/stream1"
fps_budget = 2.0
"""
    config = load_config(write(tmp_path, text))
    (door_source, door), (till_source, till) = config.camera_settings()
    assert door_source == str(tmp_path / "clips" / "door.mp4"), "a video file is relative to the configuration"
    assert till_source == "rtsp://10.0.0.22/stream1"
    assert (door.name, door.fps_budget, door.resize_width) == ("door", 5.0, 320)  # resize_width: the rpi4 profile
    assert (till.name, till.fps_budget, till.line) == ("till", 2.0, door.line)
