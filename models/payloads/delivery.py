"""The rest of an alert's delivery: `retail.churn-alert-overflow/1` on `.../alert/churn` (the alerts beyond
a store's daily cap, summarised in one message: never dropped silently) and `retail.churn-ack/1` on
`.../ack` (what the aggregator has stored, and what it refused)."""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Field, model_validator

from ..risk import LEVELS
from .alert import check_alert
from .base import ACK_SCHEMA, OVERFLOW_SCHEMA, PayloadError, decode
from .fields import Day, Must, Origin, Payload, Seq, Time, constant, one_of, refuse, text


class HeldBack(Payload):
    """A customer the cap held back: who, and how urgent (a box may add more, e.g. the risk score)."""

    model_config = ConfigDict(extra="allow")
    item_must: ClassVar[str | None] = "needs customer_ref and level"

    customer_ref: str
    level: one_of(LEVELS)


class AlertOverflow(Payload):
    """The alerts beyond the store's daily cap or weekly budget, by customer."""

    schema_: constant(OVERFLOW_SCHEMA) = Field(alias="schema")
    alert_id: text(64) = Field(description="named by the day and the customers held back")
    seq: Seq
    chain: Origin
    store_id: Origin
    as_of: Day
    suppressed: Annotated[int, Must("must equal the number of customers")]
    customers: Annotated[list[HeldBack], Must("must be a list of {customer_ref, level}")]
    model_version: Annotated[str | None, Must("must be a text")] = None
    created_at: Time

    @model_validator(mode="after")
    def _counted(self) -> AlertOverflow:
        if self.suppressed != len(self.customers):
            raise refuse("field suppressed must equal the number of customers")
        return self


def check_overflow(document: dict[str, Any], chain: str | None = None, store_id: str | None = None) -> dict[str, Any]:
    """A `retail.churn-alert-overflow/1` payload (the document itself), or PayloadError."""
    if document.get("schema") != OVERFLOW_SCHEMA:
        raise PayloadError(f"schema must be {OVERFLOW_SCHEMA!r}")
    AlertOverflow.check(document, {"chain": chain, "store_id": store_id})
    return document


def check_alert_message(raw: bytes, chain: str | None = None, store_id: str | None = None) -> dict[str, Any]:
    """Whatever arrives on an alert topic: a churn alert or an overflow summary."""
    document = decode(raw)
    if document.get("schema") == OVERFLOW_SCHEMA:
        return check_overflow(document, chain, store_id)
    return check_alert(document, chain, store_id)


class Rejected(Payload):
    """An alert the aggregator put in its dead letters, and why."""

    model_config = ConfigDict(extra="allow")

    alert_id: str
    reason: str


class Ack(Payload):
    """What the aggregator stored: the store drops these from its outbox, and stops resending the rejected."""

    schema_: constant(ACK_SCHEMA) = Field(alias="schema")
    alert_ids: Annotated[list[str], Must("must be a list of strings")]
    up_to_seq: Annotated[int | None, Must("must be an integer or null")]
    acked_at: Annotated[str | None, Must("must be a text")] = None
    rejected: Annotated[list[Rejected], Must("must be a list of {alert_id, reason}")] = []


def ack(alert_ids: list[str], up_to_seq: int | None, acked_at: str,
        rejected: list[dict[str, str]] | None = None) -> bytes:
    """`rejected`: [{"alert_id", "reason"}] for alerts the aggregator put in its dead letters, so the
    store stops resending them and raises its alarm instead."""
    extra = {"rejected": rejected} if rejected else {}
    return json.dumps(Ack.build(schema=ACK_SCHEMA, alert_ids=alert_ids, up_to_seq=up_to_seq, acked_at=acked_at,
                                **extra)).encode()


def check_ack(raw: bytes) -> dict[str, Any]:
    """A `retail.churn-ack/1` payload, or PayloadError."""
    document = decode(raw)
    if document.get("schema") != ACK_SCHEMA:
        raise PayloadError(f"schema must be {ACK_SCHEMA!r}")
    Ack.check(document)
    return document
