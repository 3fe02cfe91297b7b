"""The typed tree a configuration file becomes: strict sections, one-line errors, paths from the file's folder.

Shared by the store box's configuration (edge_agent/config.py) and the scoring
policy file (`edge-agent score --policy`), so a key means the same thing, and a
relative path the same file, whichever of them reads it.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class Section(BaseModel):
    """A TOML table: every key known, nothing silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _model_at(root: type[BaseModel], location: list[str | int]) -> type[BaseModel] | None:
    """The section model found by following `location` (keys and list indices) down from `root`."""
    model: type[BaseModel] | None = root
    for part in location:
        if isinstance(part, int):
            continue  # an entry of a list of tables: the entry's model is the list's item type
        if model is None or part not in model.model_fields:
            return None
        model = _section_type(model.model_fields[part].annotation)
    return model


def _section_type(annotation: Any) -> type[BaseModel] | None:
    """The section model in a field's type: `AlertsSection`, `MqttSection | None`, `list[CameraEntry]`."""
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation if issubclass(annotation, BaseModel) else None
    for argument in getattr(annotation, "__args__", ()):
        found = _section_type(argument)
        if found is not None:
            return found
    return None


def _entry_name(raw: Any, location: list[str | int], index: int) -> str:
    """`cameras[door]` rather than `cameras[0]` when the entry has a name."""
    value = raw
    for part in location[:index + 1]:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return str(location[index])
    name = value.get("name") if isinstance(value, dict) else None
    return str(name) if isinstance(name, str) and name else str(location[index])


def _dotted(location: list[str | int], raw: Any) -> str:
    text = ""
    for i, part in enumerate(location):
        if isinstance(part, int):
            text += f"[{_entry_name(raw, location, i)}]"
        else:
            text += f".{part}" if text else part
    return text


def explain(exc: ValidationError, root: type[BaseModel], raw: Any) -> str:
    """The first problem as one line naming its key: `unknown key alerts.weekly_budjet; did you mean weekly_budget?`.

    An entry of a list of tables (`[[cameras]]`) is one of that table's kind, so
    its keys are named as that kind's (`camera.line in cameras[door]`).
    """
    error = exc.errors()[0]
    location: list[str | int] = [p if isinstance(p, int) else str(p) for p in error["loc"]]
    key = _dotted(location, raw)
    if error["type"] == "extra_forbidden":
        section = _model_at(root, location[:-1])
        choices = sorted(section.model_fields) if section is not None else []
        near = difflib.get_close_matches(str(location[-1]), choices, n=1)
        hint = f"; did you mean {near[0]}?" if near else f"; known keys: {', '.join(choices)}"
        if len(location) >= 3 and isinstance(location[-2], int):
            kind = str(location[-3]).removesuffix("s")
            return f"unknown key {kind}.{location[-1]} in {_dotted(location[:-1], raw)}{hint}"
        return f"unknown key {key}{hint}"
    if error["type"] == "missing":
        parent = _dotted(location[:-1], raw)
        where = f" under [{parent}]" if parent else ""
        return f"missing key {key}: add {location[-1]} = ...{where}"
    message = error["msg"].removeprefix("Value error, ")
    if key and message.startswith(f"{key}."):
        return message  # the section's own check already names the key
    return f"{key}: {message}" if key else message


def resolve_paths(tree: Any, base: Path) -> Any:
    """Every relative path in the tree, made absolute against `base` (the configuration file's folder).

    The one place this happens, so the daemon (started by systemd in /) and a
    command run by hand from anywhere read the same files.
    """
    if isinstance(tree, Path) and not tree.is_absolute():
        return (base / tree).resolve()
    if isinstance(tree, BaseModel):
        return tree.model_copy(update={k: resolve_paths(getattr(tree, k), base) for k in type(tree).model_fields})
    if isinstance(tree, list):
        return [resolve_paths(v, base) for v in tree]
    return tree
