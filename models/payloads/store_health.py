"""`retail.store-status/1` on `.../status` (retained; the Last Will says offline) and
`retail.store-metrics/1` on `.../metrics`: a store box's health, footfall and data quality, as the box
builds them and as the aggregator, the central tables and the console take them. Every field but the
origin is optional, and a box has sent the cameras in two shapes: both are accepted."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, ConfigDict, Field

from .base import INT64_MAX, METRICS_SCHEMA, STATUS_SCHEMA, PayloadError, decode
from .fields import Amount, Day, Must, Origin, Payload, Time, constant, one_of, text

STORE_STATES = ("online", "offline")
QUALITY_MAX_DAYS = 60  # days of figures one metrics message may carry
QUALITY_MAX_REASONS = 20  # quarantine reasons per input and day (a box folds the rest into OTHER_REASONS)
OTHER_REASONS = "other reasons"
MAX_NAMES = 200  # alarms, children or cameras in one message

Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
# A count the console adds up in JavaScript: exact up to 2**53.
SafeCount = Annotated[int, Field(ge=0, lt=2**53)]
HourCount = Annotated[int, Field(ge=0, lt=2**31)]
ShortText = Annotated[str, Field(max_length=500)]
# Short names to short texts: a box's alarms, its children's states, its cameras' states.
NamesToTexts = Annotated[dict[Annotated[str, Field(max_length=200)], Annotated[str, Field(max_length=1000)]],
                         Field(max_length=MAX_NAMES)]


class CameraState(Payload):
    """One camera, in the list shape a box has sent (it may have said more, e.g. frames and gaps: a box
    builds only what the console reads)."""

    source: str
    state: str


class StoreHealth(Payload):
    """What the console reads from a status or a metrics message, each of the type it expects."""

    chain: Origin
    store_id: Origin
    outbox_unacked: Annotated[Count | None, Must("must be a non-negative integer")] = None
    outbox_unacked_bytes: Annotated[Count | None, Must("must be a non-negative integer")] = None
    reason: Annotated[ShortText | None, Must("must be a text of at most 500 characters")] = None
    model_version: Annotated[ShortText | None, Must("must be a text of at most 500 characters")] = None
    last_score: Annotated[ShortText | None, Must("must be a text of at most 500 characters")] = None
    last_publish_at: Annotated[Time | None, Must("must be an ISO 8601 time")] = None
    alarms: Annotated[NamesToTexts | None, Must(f"must map at most {MAX_NAMES} names to texts")] = None
    children: Annotated[NamesToTexts | None, Must(f"must map at most {MAX_NAMES} names to texts")] = None
    cameras: Annotated[
        NamesToTexts | Annotated[list[CameraState], Field(max_length=MAX_NAMES)] | None,
        Must(f"must map at most {MAX_NAMES} sources to states, or list objects with a source and a state")] = None


class StoreStatus(StoreHealth):
    """Published retained, QoS 1, on retail/v1/{chain}/{store}/status; the box's Last Will is one with
    state offline."""

    schema_: constant(STATUS_SCHEMA) = Field(alias="schema")
    state: one_of(STORE_STATES)
    at: Annotated[Time | None, Must("must be an ISO 8601 time")] = None


def _hour(value: str) -> str:
    datetime.strptime(value, "%Y-%m-%dT%H:00")
    return value


class HourCounts(Payload):
    """One store-local hour: people in and out through the cameras, and in-store sales (counts only)."""

    item_must: ClassVar[str | None] = ("needs hour (YYYY-MM-DDTHH:00) and non-negative integer entries, exits "
                                       "and transactions")

    hour: Annotated[str, AfterValidator(_hour)]
    entries: HourCount
    exits: HourCount
    transactions: HourCount


FOOTFALL_COUNTS = HourCounts.field_names()[1:]


class QualityDay(Payload):
    """One input's ingest on one store-local day: runs, rows accepted, rows newly quarantined by reason."""

    day: Day
    runs: SafeCount
    failed: SafeCount
    accepted: SafeCount
    quarantined: SafeCount
    reasons: Annotated[dict[Annotated[str, Field(min_length=1, max_length=100)], SafeCount],
                       Field(max_length=QUALITY_MAX_REASONS),
                       Must(f"must map at most {QUALITY_MAX_REASONS} reasons to counts")]


QUALITY_DAY_COUNTS = QualityDay.field_names()[1:-1]
QualityDay.item_must = f"needs non-negative integer {', '.join(QUALITY_DAY_COUNTS)}, a day and reasons"


class InputFigures(Payload):
    """One input's figures: when it last exported, and its days."""

    last_export_at: Annotated[Time | None, Must("must be an ISO 8601 time")] = None
    daily: Annotated[list[QualityDay], Field(max_length=QUALITY_MAX_DAYS),
                     Must(f"must list at most {QUALITY_MAX_DAYS} days")]


_FIGURES_MUST = Must("must be an object with last_export_at and daily")


class Inputs(Payload):
    """The store box's inputs, as its ingest runs record them (store database migration 8); no other."""

    model_config = ConfigDict(extra="forbid")

    pos: Annotated[InputFigures, _FIGURES_MUST] = Field(None)
    events: Annotated[InputFigures, _FIGURES_MUST] = Field(None)
    identities: Annotated[InputFigures, _FIGURES_MUST] = Field(None)
    footfall: Annotated[InputFigures, _FIGURES_MUST] = Field(None)


DATA_INPUTS = Inputs.field_names()


class CameraGapDay(Payload):
    """A camera's gaps on one store-local day."""

    item_must: ClassVar[str | None] = "needs day (YYYY-MM-DD), source, a count of gaps and their seconds"

    day: Day
    source: text(200)
    gaps: SafeCount
    seconds: Amount


class DataQuality(Payload):
    """Per input and store-local day, the rows accepted and quarantined (by reason), the time of the
    input's last export, and the camera gaps per day: the figures of the central data-quality board."""

    today: Day
    days: Annotated[int, Field(ge=1, le=QUALITY_MAX_DAYS), Must(f"must be in 1..{QUALITY_MAX_DAYS}")]
    inputs: Annotated[Inputs, Must(f"must map inputs to their figures; the inputs are {', '.join(DATA_INPUTS)}")]
    camera_gaps: Annotated[list[CameraGapDay], Field(max_length=QUALITY_MAX_DAYS * 20),
                           Must(f"must list at most {QUALITY_MAX_DAYS * 20} entries")]


class StoreMetrics(StoreHealth):
    """Published QoS 0 on retail/v1/{chain}/{store}/metrics: the aggregator upserts hours and days, so a
    lost message is repaired by the next."""

    schema_: constant(METRICS_SCHEMA) = Field(alias="schema")
    at: Time
    footfall_hourly: Annotated[list[HourCounts] | None, Must("must be a list")] = None
    data_quality: Annotated[DataQuality | None, Must("must be an object")] = None


def check_status(raw: bytes, chain: str | None = None, store_id: str | None = None) -> dict[str, Any]:
    """A `retail.store-status/1` payload (the document itself), or PayloadError."""
    document = decode(raw)
    if document.get("schema") != STATUS_SCHEMA:
        raise PayloadError(f"schema must be {STATUS_SCHEMA!r}")
    StoreStatus.check(document, {"chain": chain, "store_id": store_id})
    return document


def check_metrics(raw: bytes, chain: str | None = None, store_id: str | None = None) -> dict[str, Any]:
    """A `retail.store-metrics/1` payload (the document itself), or PayloadError."""
    document = decode(raw)
    if document.get("schema") != METRICS_SCHEMA:
        raise PayloadError(f"schema must be {METRICS_SCHEMA!r}")
    StoreMetrics.check(document, {"chain": chain, "store_id": store_id})
    return document
