"""Rows of an export, each either a clean row for the database or a rejection with its raw bytes.

The reading is the same for every contract (contract.py): the contract names
the columns, and a validator (validate.py for POS) turns one row's values into
a row for the database or a RowRejected. A rejection keeps the row as it
arrived, except where the contract has private columns (phone numbers, e-mail
addresses, free-text notes): there the kept row holds what the validator
would store instead (a keyed hash, a category) and nothing of columns outside
the contract, and a line that cannot even be split into columns is not kept.

The CSV reader splits plain lines itself and hands only lines holding a quote
to the csv module (which may pull further lines for a quoted field spanning
lines): most POS exports have no quotes at all, and this keeps ingest within a
small factor of a bare insert. Lines are decoded one at a time, so bytes that
are not UTF-8 reject their own row only.
"""

from __future__ import annotations

import csv
import io
import json
import operator
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from .source import UTF8_BOM, SourceFile
from .validate import RowRejected

MAX_LINES_PER_RECORD = 50  # a quote that never closes must not swallow the file


@dataclass(frozen=True)
class Rejected:
    """A row for the quarantine table."""

    line: int
    raw: bytes
    reason: str
    detail: str


READ_ERRORS = (OSError, EOFError, zlib.error)
WITHHELD = " (the row is not kept: this input has private columns)"


class Validator(Protocol):
    """Turns one row's values, in the contract's column order, into a row for the database."""

    validate: Callable[..., tuple | list]  # type: ignore[type-arg]

    def private_value(self, column: str, value: object) -> str:
        """What may be kept of a private column's value in quarantine (what would be stored)."""
        ...


class Redactor:
    """What of a rejected row is kept: all of it, unless the contract has private columns.

    Where it has, a rejected row keeps the contract's own columns only (an
    extra column may hold anything: a name, an address), its private ones as
    what would be stored; a CSV row keeps its width, so an export of the
    quarantine still lines up under the file's header."""

    def __init__(self, source: SourceFile, validator: Validator):
        contract = source.contract
        self.private = contract.private
        self.csv_redacted = [(i, name) for i, name in enumerate(source.header)
                             if name in contract.private or name not in contract.columns]
        self.width = len(source.header)
        self.columns = contract.columns
        self.private_value = validator.private_value if self.private else None

    def unsplit(self, line: int, raw: bytes, reason: str, detail: str) -> Rejected:
        """A line that could not be split into columns: kept only where no column is private."""
        if self.private:
            return Rejected(line, b"", reason, detail + WITHHELD)
        return Rejected(line, raw, reason, detail)

    def csv_row(self, line: int, fields: list[str], raw: bytes, reason: str, detail: str) -> Rejected:
        if not self.private:
            return Rejected(line, raw, reason, detail)
        kept = list(fields[: self.width])
        for index, name in self.csv_redacted:
            kept[index] = self.private_value(name, kept[index]) if name in self.private else ""  # type: ignore[misc]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(kept)
        return Rejected(line, buffer.getvalue().encode(), reason, detail)

    def json_row(self, line: int, obj: dict[str, object], raw: bytes, reason: str, detail: str) -> Rejected:
        if not self.private:
            return Rejected(line, raw, reason, detail)
        kept = {k: self.private_value(k, v) if k in self.private else v  # type: ignore[misc]
                for k, v in obj.items() if k in self.columns}
        return Rejected(line, json.dumps(kept, ensure_ascii=False, default=str).encode(), reason, detail)


def _quoted_record(text: str, raw: bytes, lines: Iterator[bytes]) -> tuple[list[str] | None, bytes, int, str]:
    """Parse a line holding quotes, pulling more lines while a quoted field stays open.

    Returns (fields or None, raw bytes of the record, extra lines consumed, error).
    """
    texts, raws = [text], [raw]
    while True:
        try:
            fields = next(csv.reader(texts, strict=True))
            return fields, b"".join(raws), len(raws) - 1, ""
        except csv.Error as exc:
            error = str(exc)
            if "unexpected end of data" not in error or len(raws) >= MAX_LINES_PER_RECORD:
                return None, b"".join(raws), len(raws) - 1, error
        more = next(lines, None)
        if more is None:
            return None, b"".join(raws), len(raws) - 1, error
        raws.append(more)
        texts.append(more.decode("utf-8", "replace"))


Batch = tuple[list, list[Rejected]]  # type: ignore[type-arg]


def _csv_batches(
    handle: BinaryIO, source: SourceFile, validator: Validator, batch_size: int
) -> Iterator[Batch]:
    """Batches of (clean rows, rejected rows); the hot loop appends directly to them."""
    header = source.header
    contract = source.contract
    index = {name: header.index(name) for name in header if name}
    width = len(header)
    # One C call picks the contract's values; an absent column reads the
    # None appended after the row's own fields (index -1).
    pick = operator.itemgetter(
        *(index[name] for name in contract.required), *(index.get(name, -1) for name in contract.optional)
    )
    validate = validator.validate
    redactor = Redactor(source, validator)
    lines = iter(handle)
    rows: list = []  # type: ignore[type-arg]
    rejected: list[Rejected] = []
    room = batch_size
    line_no = 1
    try:
        if next(lines, None) is None:  # the header, checked by inspect_source
            return
        for raw in lines:
            line_no += 1
            if room <= 0:
                yield rows, rejected
                rows, rejected, room = [], [], batch_size
            start = line_no
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                rejected.append(
                    redactor.unsplit(start, raw.rstrip(b"\r\n"), "not UTF-8", "row holds bytes that are not UTF-8")
                )
                room -= 1
                continue
            if '"' in text:
                fields, raw, extra, error = _quoted_record(text, raw, lines)
                line_no += extra
                if fields is None:
                    rejected.append(redactor.unsplit(start, raw.rstrip(b"\r\n"), "malformed CSV", error))
                    room -= 1
                    continue
            else:
                fields = text.rstrip("\r\n").split(",")
            if len(fields) != width:
                if len(fields) <= 1 and not "".join(fields).strip():
                    continue  # a blank line is not a row
                detail = f"expected {width} fields, found {len(fields)}"
                rejected.append(redactor.unsplit(start, raw.rstrip(b"\r\n"), "wrong field count", detail))
                room -= 1
                continue
            room -= 1
            fields.append(None)
            try:
                rows.append(validate(*pick(fields)))
            except RowRejected as rejection:
                rejected.append(
                    redactor.csv_row(start, fields, raw.rstrip(b"\r\n"), rejection.reason, rejection.detail)
                )
    except READ_ERRORS as exc:
        rejected.append(Rejected(line_no + 1, b"", "unreadable data", f"unreadable after line {line_no}: {exc}"))
    yield rows, rejected


def _jsonl_records(
    handle: BinaryIO, source: SourceFile, validator: Validator
) -> Iterator[tuple | list | Rejected]:  # type: ignore[type-arg]
    validate = validator.validate
    columns = source.contract.columns
    json_required = source.contract.json_required
    redactor = Redactor(source, validator)
    line_no = 0
    try:
        for raw in handle:
            line_no += 1
            if line_no == 1 and raw.startswith(UTF8_BOM):
                raw = raw[len(UTF8_BOM) :]
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield redactor.unsplit(line_no, raw, "not UTF-8", "row holds bytes that are not UTF-8")
                continue
            except ValueError as exc:
                yield redactor.unsplit(line_no, raw, "not a JSON object", f"invalid JSON: {str(exc)[:200]}")
                continue
            except RecursionError:  # a few KB of [[[[...: one row's problem, never the file's or the box's
                yield redactor.unsplit(line_no, raw, "not a JSON object", "invalid JSON: nested too deeply")
                continue
            if not isinstance(obj, dict):
                yield redactor.unsplit(line_no, raw, "not a JSON object", f"found a JSON {type(obj).__name__}")
                continue
            absent = next((name for name in json_required if name not in obj), None)
            if absent is not None:
                yield redactor.json_row(line_no, obj, raw, f"missing {absent}", f"the {absent} key is absent")
                continue
            try:
                yield validate(*(obj.get(name) for name in columns))
            except RowRejected as rejected:
                yield redactor.json_row(line_no, obj, raw, rejected.reason, rejected.detail)
            except (TypeError, ValueError, OverflowError, RecursionError) as exc:  # a value of a type no till sends
                yield redactor.json_row(
                    line_no, obj, raw, "bad value", f"a value could not be read ({type(exc).__name__})"
                )
    except READ_ERRORS as exc:
        yield Rejected(line_no + 1, b"", "unreadable data", f"unreadable after line {line_no}: {exc}")


def _batched(records: Iterator[tuple | list | Rejected], batch_size: int) -> Iterator[Batch]:  # type: ignore[type-arg]
    rows: list = []  # type: ignore[type-arg]
    rejected: list[Rejected] = []
    for record in records:
        if record.__class__ is Rejected:
            rejected.append(record)  # type: ignore[arg-type]
        else:
            rows.append(record)
        if len(rows) + len(rejected) >= batch_size:
            yield rows, rejected
            rows, rejected = [], []
    yield rows, rejected


def iter_batches(handle: BinaryIO, source: SourceFile, validator: Validator, batch_size: int) -> Iterator[Batch]:
    """Every data row of the source in file order, in batches of at most `batch_size` rows.

    Blank lines are skipped; the last batch may be empty.
    """
    if source.format == "csv":
        return _csv_batches(handle, source, validator, batch_size)
    return _batched(_jsonl_records(handle, source, validator), batch_size)
