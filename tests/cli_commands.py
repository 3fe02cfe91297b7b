"""Every command a user can run, read from the Typer apps (for the docs and unit-file tests)."""

from __future__ import annotations

import click
import typer.main


def leaf_commands(app: typer.Typer) -> dict[str, click.Command]:
    """'ingest', 'model fetch', ...: every command a user runs, sub-groups included."""
    found: dict[str, click.Command] = {}

    def walk(group: click.Group, prefix: str) -> None:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                walk(command, f"{prefix}{name} ")
            else:
                found[f"{prefix}{name}"] = command

    walk(typer.main.get_group(app), "")
    return found
