"""The building blocks of the payload models: strict field types that refuse hostile input with
PayloadError, and the translation of pydantic's errors into the contract's one-line reasons.

A payload model both builds what a store box sends (`Payload.build`) and checks what arrives
(`Payload.check`); the aggregator dead-letters a refused payload with the reason, so every reason
names the field, e.g. "field risk_score must be in 0..100" or "recent_events[0].kind must be one of ...".
"""

from __future__ import annotations

import math
import types
import typing
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, ValidationError, ValidationInfo, WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from .base import INT64_MAX, PayloadError, topic_mismatch


class Must:
    """Annotated metadata: what a field must be, said in the reason when it is not."""

    def __init__(self, text: str) -> None:
        self.text = text


def refuse(reason: str) -> PydanticCustomError:
    """An error whose reason is taken verbatim (one that depends on more than the field, e.g. the topic)."""
    return PydanticCustomError("payload", "{reason}", {"reason": reason})


def _one_of(values: tuple[str, ...]) -> Any:
    def check(value: str) -> str:
        if value not in values:
            raise ValueError("not one of the values")
        return value
    return check


def one_of(values: tuple[str, ...]) -> Any:
    """A text among `values` (published as a JSON Schema enum)."""
    return Annotated[str, AfterValidator(_one_of(values)), WithJsonSchema({"enum": list(values)}),
                     Must(f"must be one of {', '.join(values)}")]


def constant(value: str) -> Any:
    """A payload's schema id (published as a JSON Schema const)."""
    return Annotated[str, AfterValidator(_one_of((value,))), WithJsonSchema({"const": value}),
                     Must(f"must be {value!r}")]


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a number")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError("not a finite number") from None
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _amount(value: Any) -> Any:
    if _number(value) < 0:
        raise ValueError("negative")
    return value


def _measure(value: Any) -> Any:
    if value is not None:
        _number(value)
    return value


# Numbers keep their JSON type (41 stays 41, not 41.0); a boolean, NaN or infinity is not a number.
Amount = Annotated[float, PlainValidator(_amount), WithJsonSchema({"type": "number", "minimum": 0})]
Measure = Annotated[float | None, PlainValidator(_measure), WithJsonSchema({"type": ["number", "null"]})]


def _iso_date(value: str) -> str:
    date.fromisoformat(value)
    return value


def _iso_time(value: str) -> str:
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


Day = Annotated[str, Field(max_length=10, json_schema_extra={"format": "date"}), AfterValidator(_iso_date),
                Must("must be a date (YYYY-MM-DD)")]
Time = Annotated[str, Field(max_length=40, json_schema_extra={"format": "date-time"}), AfterValidator(_iso_time),
                 Must("must be an ISO 8601 time")]


def text(limit: int) -> Any:
    """A non-empty text of at most `limit` characters."""
    return Annotated[str, Field(min_length=1, max_length=limit), Must(f"must be 1 to {limit} characters")]


def _from_its_topic(value: str, info: ValidationInfo) -> str:
    """A store cannot speak for another: the payload names the store whose topic it came on (the
    validation context's `chain` and `store_id`; absent or None: not checked)."""
    field = str(info.field_name)
    problem = topic_mismatch(field, value, (info.context or {}).get(field))
    if problem:
        raise refuse(problem)
    return value


# The chain or the store a message is from: the same as its topic's.
Origin = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_from_its_topic),
                   Must("must be 1 to 200 characters")]
# A store's message counter: one per message on its alert topic, from 1.
Seq = Annotated[int, Field(ge=1, le=INT64_MAX), Must("must be a positive integer")]


class Payload(BaseModel):
    """A JSON payload on an MQTT topic. Fields a newer box adds are ignored, as the contracts promise;
    a field name outside the model is refused when building, where it can only be a mistake."""

    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)
    # the reason for an item of a list that is not an object with the right fields
    item_must: ClassVar[str | None] = None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The fields as the payload names them, in the contract's order."""
        return tuple(info.alias or name for name, info in cls.model_fields.items())

    @classmethod
    def absent_means(cls, field: str) -> Any:
        """What an optional field absent or null stands for (an empty list for a list; None: nothing)."""
        info = next(i for n, i in cls.model_fields.items() if field in (n, i.alias))
        if _is_list(info.annotation):
            return []
        return None if info.is_required() else info.get_default()

    @classmethod
    def check(cls, document: Any, context: dict[str, Any] | None = None) -> Self:
        """The validated model of `document`, or PayloadError naming the first field that breaks the contract."""
        try:
            return cls.model_validate(document, context=context)
        except ValidationError as exc:
            raise PayloadError(_reason(cls, exc.errors()[0])) from None
        except RecursionError:
            raise PayloadError("nested too deeply") from None

    @classmethod
    def build(cls, **fields: Any) -> dict[str, Any]:
        """The payload as sent: validated, with exactly the fields given (a null given stays a null)."""
        unknown = sorted(set(fields) - set(cls.field_names()))
        if unknown:
            raise PayloadError(f"{cls.__name__} has no field {', '.join(unknown)}")
        dumped: dict[str, Any] = cls.check(fields).model_dump(by_alias=True, exclude_unset=True)
        return dumped


def _reason(model: type[Payload], error: Any) -> str:
    """One line naming where `error` is and what the field must be."""
    if error["type"] == "payload":
        return str(error["ctx"]["reason"])
    loc = error["loc"]
    if error["type"] == "missing" and len(loc) == 1:
        return f"missing field {loc[0]}"
    if error["type"] == "missing" and isinstance(loc[-2], str):  # from an object that is itself a field
        return f"{_dotted(loc[:-1])}: missing field {loc[-1]}"
    if error["type"] in ("missing", "extra_forbidden"):
        loc = loc[:-1]  # the object lacks or has one field too many: the object is at fault
    path, where, must = "", "", None
    current: type[Payload] | None = model
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            if current is not None and current.item_must:
                where, must = path, current.item_must
            continue
        fields = current.model_fields if current is not None else {}
        name = next((n for n, f in fields.items() if part in (n, f.alias)), None)
        if name is None:
            break
        said = [m.text for m in fields[name].metadata if isinstance(m, Must)]
        if said:
            # a field of an object that is itself a field reads "data_quality: field today must ..."
            where = f"{path}: field {part}" if path and not path.endswith("]") else f"{path}.{part}" if path else part
            must = said[0]
        path = f"{path}.{part}" if path else str(part)
        current = _model_in(fields[name].annotation)
    if must is None:
        return f"{_dotted(loc) or 'payload'}: {error['msg']}"
    return f"field {where} {must}" if where.isidentifier() else f"{where} {must}"


def _dotted(loc: Any) -> str:
    """A place in the payload as its reasons name it: data_quality.inputs.pos.daily[0]."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_list(a) for a in typing.get_args(annotation))
    return typing.get_origin(annotation) is list


def _model_in(annotation: Any) -> type[Payload] | None:
    """The payload model a field holds, directly or as the items of a list (None: none)."""
    if isinstance(annotation, type) and issubclass(annotation, Payload):
        return annotation
    if typing.get_origin(annotation) in (list, typing.Union, types.UnionType):
        return next((m for a in typing.get_args(annotation) if (m := _model_in(a))), None)
    return None
