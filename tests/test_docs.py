"""Docs that cannot fall behind: every command is documented, and the README keeps its promises."""

from __future__ import annotations

from pathlib import Path

from edge_agent.cli import app as edge_app
from server.cli import app as server_app
from tests.cli_commands import leaf_commands

ROOT = Path(__file__).resolve().parent.parent


def test_every_command_has_a_section_in_the_cli_reference() -> None:
    reference = (ROOT / "docs" / "cli.md").read_text()
    for prog, app in (("edge-agent", edge_app), ("churn-server", server_app)):
        for name in leaf_commands(app):
            assert f"### {prog} {name}\n" in reference, f"{prog} {name} is not documented in docs/cli.md"


def test_every_command_help_has_an_example() -> None:
    for app in (edge_app, server_app):
        for name, command in leaf_commands(app).items():
            assert "Example:" in (command.help or ""), f"{name} --help has no example"


def test_readme_gives_the_two_commands_and_links_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    for line in readme.splitlines():
        for part in line.split("](")[1:]:
            target = part.split(")")[0]
            if not target.startswith("http"):
                assert (ROOT / target).exists(), f"README links to missing {target}"


def test_every_feature_is_documented() -> None:
    from models.schema import FEATURES

    model_doc = (ROOT / "docs" / "model.md").read_text()
    for feature in FEATURES:
        assert f"| `{feature.name}` | {feature.group} | {feature.description} |" in model_doc, feature.name


def test_the_configuration_tables_in_the_docs_are_valid() -> None:
    """Each [risk], [alerts] and [camera] example in the docs loads with the box's own sections."""
    import re
    import tomllib

    from edge_agent.footfall.settings import CameraSettings
    from edge_agent.policy_sections import PolicyTables

    checked = set()
    for doc in sorted((ROOT / "docs").glob("*.md")):
        for block in re.findall(r"```toml\n(.*?)```", doc.read_text(), flags=re.S):
            tables = tomllib.loads(block)
            if {"risk", "alerts"} & set(tables):
                PolicyTables.model_validate(tables)
                checked |= {"risk", "alerts"} & set(tables)
            if "camera" in tables:
                CameraSettings.model_validate(tables["camera"])
    assert checked == {"risk", "alerts"}


def test_every_camera_setting_is_in_the_footfall_docs() -> None:
    from edge_agent.footfall.settings import CameraSettings

    footfall = (ROOT / "docs" / "footfall.md").read_text()
    for key in CameraSettings.model_fields:
        assert f"`{key}`" in footfall, f"camera.{key} is not documented in docs/footfall.md"
