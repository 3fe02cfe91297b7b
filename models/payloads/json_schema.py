"""docs/alert-payload.schema.json, generated from the alert model: integrators validate alerts with it,
so it is written from the code, never by hand (`python -m models.payloads` rewrites it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from .alert import ChurnAlert
from .fields import Payload

ALERT_SCHEMA_FILE = Path(__file__).resolve().parents[2] / "docs" / "alert-payload.schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
# The order keywords are written in, so the file reads the same way from one generation to the next.
KEYWORD_ORDER = ("$schema", "title", "type", "const", "enum", "format", "minLength", "maxLength", "minimum",
                 "maximum", "required", "additionalProperties", "properties", "items", "maxItems", "description")


class _Published(GenerateJsonSchema):
    """Plain draft 2020-12 as integrators read it: nullable as a list of types, no generated titles,
    no defaults (an absent optional field says its meaning in its description)."""

    schema_dialect = DIALECT

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        if isinstance(inner.get("type"), str):
            return {**inner, "type": [inner["type"], "null"]}
        return super().nullable_schema(schema)


def json_schema(model: type[Payload]) -> dict[str, Any]:
    """`model` as one self-contained JSON Schema: nested objects inline, the top one titled and described."""
    generated = model.model_json_schema(schema_generator=_Published)
    definitions = generated.pop("$defs", {})

    def inline(node: Any, top: bool = False) -> Any:
        if isinstance(node, list):
            return [inline(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return inline({**definitions[node["$ref"].rsplit("/", 1)[1]], **{k: v for k, v in node.items()
                                                                           if k != "$ref"}})
        kept = {k: inline(v) for k, v in node.items()
                if top or node.get("type") != "object" or k not in ("title", "description")}
        if "description" in kept and isinstance(kept["description"], str):
            kept["description"] = " ".join(kept["description"].split())
        return kept

    body = _ordered(inline(generated, top=True))
    return {"$schema": DIALECT, "title": body.pop("title"), "description": body.pop("description"), **body}


def _ordered(node: Any) -> Any:
    """Keywords in KEYWORD_ORDER (then as generated); the properties in the model's order."""
    if isinstance(node, list):
        return [_ordered(item) for item in node]
    if not isinstance(node, dict):
        return node
    rank = {keyword: index for index, keyword in enumerate(KEYWORD_ORDER)}
    return {key: {name: _ordered(sub) for name, sub in value.items()} if key == "properties" else _ordered(value)
            for key, value in sorted(node.items(), key=lambda item: rank.get(item[0], len(rank)))}


def alert_schema_text() -> str:
    """The text docs/alert-payload.schema.json must hold."""
    return json.dumps(json_schema(ChurnAlert), indent=2, ensure_ascii=False) + "\n"


def write_alert_schema(path: Path = ALERT_SCHEMA_FILE) -> Path:
    path.write_text(alert_schema_text())
    return path
