"""A checker for the JSON Schema keywords docs/alert-payload.schema.json uses (jsonschema is not a dependency),
so tests can hold alerts against the schema integrators get."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any


TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
                                      "null": (type(None),), "object": (dict,), "array": (list,)}
ANNOTATIONS = {"$schema", "$id", "title", "description"}


def _is(value: Any, kind: str) -> bool:
    if isinstance(value, bool) and kind != "boolean":
        return False
    return isinstance(value, TYPES[kind])


def _format_ok(value: str, kind: str) -> bool:
    try:
        if kind == "date":
            return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)) and bool(date.fromisoformat(value))
        if kind == "date-time":
            return "T" in value and bool(datetime.fromisoformat(value))
    except ValueError:
        return False
    raise ValueError(f"format {kind} is not supported by this checker")


def schema_errors(schema: dict[str, Any], value: Any, path: str = "$") -> list[str]:
    """Where `value` breaks `schema`. An unknown keyword is an error in the schema, not silently ignored."""
    unknown = set(schema) - ANNOTATIONS - {"type", "const", "enum", "required", "properties", "items", "minLength",
                                           "maxLength", "minimum", "maximum", "format", "maxItems",
                                           "additionalProperties"}
    if unknown:
        raise ValueError(f"{path}: keywords {sorted(unknown)} are not supported by this checker")
    kinds = schema.get("type")
    if kinds is not None and not any(_is(value, k) for k in ([kinds] if isinstance(kinds, str) else kinds)):
        return [f"{path}: not {kinds}"]
    errors = []
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: not one of {schema['enum']}")
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            errors.append(f"{path}: length {len(value)} out of bounds")
        if "format" in schema and not _format_ok(value, schema["format"]):
            errors.append(f"{path}: not a {schema['format']}")
    if _is(value, "number") and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        errors.append(f"{path}: {value} out of bounds")
    if isinstance(value, dict):
        errors += [f"{path}: missing {name}" for name in schema.get("required", []) if name not in value]
        if schema.get("additionalProperties") is False:
            errors += [f"{path}: unexpected {name}" for name in value if name not in schema.get("properties", {})]
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                errors += schema_errors(sub, value[name], f"{path}.{name}")
    if isinstance(value, list) and len(value) > schema.get("maxItems", len(value)):
        errors.append(f"{path}: more than {schema['maxItems']} items")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += schema_errors(schema["items"], item, f"{path}[{index}]")
    return errors
