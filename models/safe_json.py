"""JSON from bytes nobody vouches for: whatever arrives, a document within bounds or one clear error.

`json.loads` alone lets through what breaks the code further on: nesting deep
enough to raise RecursionError (not ValueError), `NaN` and `Infinity`, a float
like 1e999 that becomes infinity, integers past 64 bits that a database
refuses, lone UTF-16 surrogates that cannot be encoded again, NUL characters
that PostgreSQL refuses in text, and byte encodings other than UTF-8. Every
side that reads a message off the network (the aggregator, a store box reading
acks and releases) parses it here, so each of those ends as a `JsonRefused`
with a one-line reason, never as an exception nobody expected.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32
INT64 = 2**63 - 1


class JsonRefused(ValueError):
    """Bytes that are not a bounded, finite, valid-Unicode JSON document; the message says why."""


def _no_constants(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON number")


def _bounded_int(text: str) -> int:
    value = int(text)  # more than 4300 digits raise ValueError: refused as not JSON
    if not -INT64 - 1 <= value <= INT64:
        raise JsonRefused("an integer beyond 64 bits")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRefused(f"{text[:40]} is not a finite number")
    return value


# The walk below is needed only when the text could hold what the parser lets through: an escaped NUL or
# surrogate, or more brackets than the allowed depth. Typical messages (a few brackets, no such escape)
# skip it and cost little more than json.loads.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise JsonRefused(f"{where} holds a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonRefused(f"{where} holds an unpaired UTF-16 surrogate") from None


def _check_tree(document: Any, max_depth: int) -> None:
    """Walk the parsed document without recursion: depth, numbers and strings."""
    pending: list[tuple[Any, int, str]] = [(document, 1, "$")]
    while pending:
        value, depth, where = pending.pop()
        if isinstance(value, (dict, list)):
            if depth > max_depth:
                raise JsonRefused(f"nested deeper than {max_depth} levels")
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_text(key, f"a key in {where}")
                    pending.append((item, depth + 1, f"{where}.{key[:40]}"))
            else:
                pending.extend((item, depth + 1, f"{where}[{index}]") for index, item in enumerate(value))
        elif isinstance(value, str):
            _check_text(value, where)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not -INT64 - 1 <= value <= INT64:
                raise JsonRefused(f"{where} is an integer beyond 64 bits")
        elif isinstance(value, float) and not math.isfinite(value):
            raise JsonRefused(f"{where} is not a finite number")


def loads_bounded(raw: bytes | str, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Parse `raw` (UTF-8) into a JSON value, or raise JsonRefused naming the first problem."""
    if len(raw) > max_bytes:
        raise JsonRefused(f"{len(raw)} bytes, more than the {max_bytes} allowed")
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray, memoryview)) else raw
    except UnicodeDecodeError as exc:
        raise JsonRefused(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        document = json.loads(text, parse_constant=_no_constants, parse_int=_bounded_int, parse_float=_finite_float)
    except RecursionError:
        raise JsonRefused(f"nested deeper than {max_depth} levels") from None
    except JsonRefused:
        raise
    except ValueError as exc:  # JSONDecodeError, and an integer of more than 4300 digits
        raise JsonRefused(f"not JSON: {str(exc)[:120]}") from None
    if text.count("[") + text.count("{") > max_depth or _SUSPECT_ESCAPE.search(text):
        _check_tree(document, max_depth)
    return document
