"""Turning one POS row's values into a clean transaction, or a reason to reject it.

Pure functions: no I/O, no database. The reasons are a small fixed vocabulary so
that an operator sees "bad timestamp: 41" rather than forty-one different
messages; the row-specific detail travels separately into the quarantine table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

EPOCH_NAIVE = datetime(1970, 1, 1)
_EPOCH_ORDINAL = EPOCH_NAIVE.toordinal()
FUTURE_TOLERANCE_SECONDS = 2 * 86400
_TIMESTAMP_CACHE_LIMIT = 200_000


class RowRejected(Exception):
    """A row that goes to quarantine: `reason` is stable, `detail` names the value."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


class TimestampParser:
    """ISO 8601 date or date-time → store-local wall-clock seconds (and has-time flag).

    Naive values are already store-local; values with an offset are converted to
    the store's zone. Results are cached because POS exports repeat timestamps
    (date-only exports repeat them thousands of times).
    """

    def __init__(self, zone: ZoneInfo, now_utc: datetime | None = None):
        self.zone = zone
        now = (now_utc or datetime.now(timezone.utc)).astimezone(zone).replace(tzinfo=None)
        self.latest_allowed = int((now - EPOCH_NAIVE).total_seconds()) + FUTURE_TOLERANCE_SECONDS
        self._cache: dict[str, tuple[int, int]] = {}

    def parse(self, text: str) -> tuple[int, int]:
        if len(text) > 10:  # date-times rarely repeat: caching them would cost more than it saves
            return self._parse_uncached(text)
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        result = self._parse_uncached(text)
        if len(self._cache) >= _TIMESTAMP_CACHE_LIMIT:
            self._cache.clear()
        self._cache[text] = result
        return result

    def reader(self) -> Callable[[object], tuple[int, int]]:
        """The per-row reader every ingest's validator calls: a cell → (seconds, has-time). The common case,
        a naive date-time, is read inline over locals; anything else takes `parse`, the careful path."""
        parse, latest_allowed = self.parse, self.latest_allowed
        fromisoformat, epoch_ordinal = datetime.fromisoformat, _EPOCH_ORDINAL

        def read(timestamp: object) -> tuple[int, int]:
            if timestamp.__class__ is not str:
                if timestamp is None:
                    raise RowRejected("missing timestamp", "timestamp is empty")
                raise RowRejected("bad timestamp", f"{_short(timestamp)!r} is not ISO 8601 text")
            parsed = None
            if len(timestamp) > 10:  # type: ignore[arg-type]
                try:
                    parsed = fromisoformat(timestamp)  # type: ignore[arg-type]
                except ValueError:
                    pass
            if parsed is not None and parsed.tzinfo is None and parsed.year >= 1970:
                ts = ((parsed.toordinal() - epoch_ordinal) * 86400
                      + parsed.hour * 3600 + parsed.minute * 60 + parsed.second)
                if ts > latest_allowed:
                    raise RowRejected("timestamp in the future", f"{_short(timestamp)!r} is in the future")
                return ts, 1
            return parse(timestamp)  # type: ignore[arg-type]

        return read

    def _parse_uncached(self, text: str) -> tuple[int, int]:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            value = text.strip()
            if not value:
                raise RowRejected("missing timestamp", "timestamp is empty") from None
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise RowRejected("bad timestamp", f"{_short(value)!r} is not ISO 8601") from None
            text = value
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(self.zone).replace(tzinfo=None)
        if parsed.year < 1970:
            raise RowRejected("bad timestamp", f"{_short(text)!r} is before 1970")
        seconds = (
            (parsed.toordinal() - _EPOCH_ORDINAL) * 86400
            + parsed.hour * 3600
            + parsed.minute * 60
            + parsed.second
        )
        if seconds > self.latest_allowed:
            raise RowRejected("timestamp in the future", f"{_short(text)!r} is in the future")
        return seconds, 0 if len(text) <= 10 else 1


def parse_amount(value: object) -> float:
    """A decimal with '.'; negative means a refund. Commas, text and NaN are rejected."""
    try:
        amount = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        if value is None or value == "":
            raise RowRejected("missing amount", "amount is empty") from None
        raise RowRejected("bad amount", f"{_short(value)!r} is not a number") from None
    if amount - amount != 0.0 or value.__class__ is bool:  # NaN, infinities, JSON true/false
        raise RowRejected("bad amount", f"{_short(value)!r} is not a finite number")
    return amount


def parse_items(value: object) -> int | None:
    """Optional item count: empty means unknown; fractional counts are errors."""
    if value is None or value == "":
        return None
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError, OverflowError):
        pass
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RowRejected("bad items", f"{_short(value)!r} is not a count") from None
    if number - number != 0.0 or number != int(number):
        raise RowRejected("bad items", f"{_short(value)!r} is not a whole number")
    return int(number)


def optional_text(value: object) -> str | None:
    if value is None:
        return None
    text = (value if value.__class__ is str else str(value)).strip()  # type: ignore[union-attr]
    return text or None


class DerivedIds:
    """Deterministic ids for rows that carry no transaction_id.

    The id hashes the row's normalised content, so the same sale exported twice
    (or once as CSV, once as JSON Lines) gets the same id. Identical rows within
    one file are told apart by their occurrence number, so two real identical
    sales in a date-only export are both kept, and re-reading the file still
    yields the same ids. Memory: one small entry per row without an id.
    """

    def __init__(self) -> None:
        self._seen: dict[bytes, int] = {}

    def derive(
        self,
        customer_id: str | None,
        ts: int,
        has_time: int,
        amount: float,
        items: int | None,
        channel: str | None,
    ) -> str:
        return self.of_content(f"{customer_id or ''}\x1f{ts}\x1f{has_time}\x1f{amount!r}\x1f{items}\x1f{channel}")

    def of_content(self, content: str) -> str:
        """The id of a row whose normalised content (fields joined by \\x1f) is `content`."""
        digest = hashlib.blake2b(content.encode(), digest_size=12).digest()
        occurrence = self._seen.get(digest, 0)
        self._seen[digest] = occurrence + 1
        if occurrence:
            digest = hashlib.blake2b(digest + occurrence.to_bytes(4, "big"), digest_size=12).digest()
        return "d:" + digest.hex()


class RowValidator:
    """Validates the values of one row against the POS contract for one store.

    `validate(customer_id, timestamp, amount, transaction_id, store_id, items,
    channel)` returns a row ready for the transactions table: (transaction_id,
    customer, ts, has_time, amount, items, channel), where customer is the
    integer key of a known customer, None for an anonymous sale, or, for a
    customer not seen before, the customer id itself inside a *list* row, so
    the writer can find and key the few new ones without touching every row
    again. It raises RowRejected for a row that breaks the contract.
    """

    def __init__(
        self,
        store_id: str,
        zone: ZoneInfo,
        customer_keys: dict[str, int],
        now_utc: datetime | None = None,
    ):
        self.store_id = store_id
        self.timestamps = TimestampParser(zone, now_utc)
        self.derived_ids = DerivedIds()
        self.customer_keys = customer_keys
        self.validate = self._make_validate()

    def private_value(self, column: str, value: object) -> str:
        """POS exports have no private columns: a rejected row is kept as it arrived."""
        return "" if value is None else str(value)

    def _make_validate(self) -> Callable[..., tuple | list]:  # type: ignore[type-arg]
        """The per-row function, as a closure over locals: ingest calls it a million
        times a minute, and attribute look-ups on `self` would be a fifth of its cost.
        The common case (text fields, a naive date-time, a plain decimal) runs
        inline; anything unusual takes the careful path."""
        own_store = self.store_id
        read_timestamp = self.timestamps.reader()
        derive_id = self.derived_ids.derive
        customer_keys = self.customer_keys
        channels: dict[object, str | None] = {}

        def validate(
            customer_id: object,
            timestamp: object,
            amount: object,
            transaction_id: object = None,
            store_id: object = None,
            items: object = None,
            channel: object = None,
        ) -> tuple | list:  # type: ignore[type-arg]
            ts, has_time = read_timestamp(timestamp)
            try:
                value = float(amount)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                value = parse_amount(amount)
            if value - value != 0.0 or amount.__class__ is bool:
                value = parse_amount(amount)
            if store_id is not None and store_id != own_store:
                store = optional_text(store_id)
                if store is not None and store != own_store:
                    raise RowRejected("other store", f"store_id {_short(store)!r} is not {own_store!r}")
            if items is None or items == "":
                count = None
            elif items.__class__ is str:
                try:
                    count = int(items)  # type: ignore[arg-type]
                except ValueError:
                    count = parse_items(items)
            else:
                count = parse_items(items)
            if channel:
                kind = channels.get(channel)
                if kind is None:
                    kind = optional_text(channel)
                    kind = kind.lower() if kind is not None else None
                    if len(channels) < 1000:
                        channels[channel] = kind
            else:
                kind = None
            customer = customer_id.strip() if customer_id.__class__ is str else optional_text(customer_id)  # type: ignore[union-attr]
            tx_id = transaction_id.strip() if transaction_id.__class__ is str else optional_text(transaction_id)  # type: ignore[union-attr]
            if not tx_id:
                tx_id = derive_id(customer or None, ts, has_time, value, count, kind)
            if not customer:
                return (tx_id, None, ts, has_time, value, count, kind)
            key = customer_keys.get(customer)
            if key is None:
                return [tx_id, customer, ts, has_time, value, count, kind]
            return (tx_id, key, ts, has_time, value, count, kind)

        return validate
