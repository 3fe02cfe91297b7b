"""Camera settings: every device profile loads, a typo is named, other tables are left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.footfall.command import resolve_settings
from edge_agent.footfall.settings import CameraSettings, CameraSettingsError, load_camera_settings, parse_line

PROFILES = sorted((Path(__file__).resolve().parents[2] / "edge_agent" / "profiles").glob("*.toml"))


def test_the_three_device_profiles_exist() -> None:
    assert {p.stem for p in PROFILES} >= {"rpi4", "jetson-orin-nano", "x86-minipc"}


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_every_profile_loads_with_a_line_and_a_queue_zone(profile: Path) -> None:
    settings = load_camera_settings(profile)
    assert settings.line is not None and settings.queue_zone is not None
    assert 3600 % settings.bucket_seconds == 0


def test_the_pi_does_less_work_per_second_than_the_mini_pc() -> None:
    by_name = {p.stem: load_camera_settings(p) for p in PROFILES}
    assert by_name["rpi4"].resize_width < by_name["x86-minipc"].resize_width
    assert by_name["rpi4"].fps_budget < by_name["x86-minipc"].fps_budget


def test_other_tables_are_ignored_and_unknown_camera_keys_are_named(tmp_path: Path) -> None:
    profile = tmp_path / "box.toml"
    profile.write_text('[store]\nstore_id = "paris-01"\n[mqtt]\nurl = "mqtt://x"\n[camera]\nresize_width = 400\n')
    assert load_camera_settings(profile).resize_width == 400
    profile.write_text("[camera]\nresize_widht = 400\n")
    with pytest.raises(CameraSettingsError, match="unknown key camera.resize_widht"):
        load_camera_settings(profile)


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ("fps_budget = 0", "camera.fps_budget"),
        ("bucket_seconds = 700", "camera.bucket_seconds"),
        ('subtractor = "gmg"', "camera.subtractor"),
        ("line = [1, 2, 3]", "camera.line"),
        ("line = [5, 5, 5, 5]", "camera.line"),
        ("queue_zone = [[0, 0], [1, 1]]", "camera.queue_zone"),
        ("masks = [[[0, 0], [9, 0], [9, 9]], [[0, 0], [1, 1]]]", "camera.masks"),
        ("reconnect_initial_seconds = 10.0\nreconnect_max_seconds = 1.0", "reconnect_max_seconds"),
    ],
)
def test_bad_values_are_errors_naming_the_key(tmp_path: Path, table: str, named: str) -> None:
    profile = tmp_path / "box.toml"
    profile.write_text(f"[camera]\n{table}\n")
    with pytest.raises(CameraSettingsError, match=named):
        load_camera_settings(profile)


def test_not_toml_is_a_clear_error(tmp_path: Path) -> None:
    profile = tmp_path / "box.toml"
    profile.write_text("[camera\n")
    with pytest.raises(CameraSettingsError, match="not valid TOML"):
        load_camera_settings(profile)


def test_flags_override_the_profile() -> None:
    settings = resolve_settings(PROFILES[0], "10,20,30,40", ["resize_width=256", "subtractor=knn", "queue_zone=[[0,0],[9,0],[9,9]]"])
    assert settings.line == (10, 20, 30, 40)
    assert (settings.resize_width, settings.subtractor) == (256, "knn")
    assert settings.queue_zone == ((0, 0), (9, 0), (9, 9))
    assert settings.fps_budget == load_camera_settings(PROFILES[0]).fps_budget


def test_masks_come_from_the_profile_or_the_command_line(tmp_path: Path) -> None:
    profile = tmp_path / "box.toml"
    profile.write_text("[camera]\nmasks = [[[0, 0], [100, 0], [100, 50]], [[200, 200], [300, 200], [300, 300], [200, 300]]]\n")
    assert load_camera_settings(profile).masks == (((0, 0), (100, 0), (100, 50)), ((200, 200), (300, 200), (300, 300), (200, 300)))
    settings = resolve_settings(None, "0,1,2,3", ["masks=[[[0,0],[9,0],[9,9]]]"])
    assert settings.masks == (((0, 0), (9, 0), (9, 9)),)


def test_line_flag_needs_four_numbers() -> None:
    assert parse_line("0, 240, 640,240") == (0, 240, 640, 240)
    with pytest.raises(CameraSettingsError, match="X1,Y1,X2,Y2"):
        parse_line("0,240,640")


def test_defaults_have_no_line() -> None:
    assert CameraSettings().line is None and CameraSettings().source_name == "camera:door"
