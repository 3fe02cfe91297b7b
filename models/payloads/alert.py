"""`retail.churn-alert/1` on `.../alert/churn`: one customer's alert, as a store box builds it and as
the aggregator, the central tables, the console and docs/alert-payload.schema.json take it."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Field

from ..events import EVENT_KINDS
from ..risk import LEVELS
from .base import ALERT_SCHEMA, INT64_MAX, PayloadError
from .fields import Amount, Day, Measure, Must, Origin, Payload, Seq, Time, constant, one_of, text

# An alert is an early warning (still buying, drifting away) or a win-back (lapsed by their own rhythm).
ALERT_KINDS = ("early_warning", "win_back")
# What an alert may carry of the customer's own events: a few, each a kind, an age and a number, never text.
RECENT_EVENTS_MAX = 10
MAX_DAYS_AGO = 3660


class Reason(Payload):
    """Why the customer is at risk, in words and in the feature's numbers."""

    item_must: ClassVar[str | None] = "needs text and feature"

    text: str = Field(description="human-readable, e.g. 'last visit 41 days ago, usually every 12 days'")
    feature: str = Field(description="the feature behind the reason")
    value: Annotated[Measure, Must("must be a finite number or null")] = Field(
        None, description="the customer's value of the feature")
    usual: Annotated[Measure, Must("must be a finite number or null")] = Field(
        None, description="the customer's or the store's usual value")


class RecentEvent(Payload):
    """One of the customer's own events: a kind, an age and a number, and no other key (a note, an account
    or a phone number has no field to travel in)."""

    model_config = ConfigDict(extra="forbid")

    kind: one_of(EVENT_KINDS) = Field(description="the customer-events contract's kind")
    days_ago: Annotated[int, Field(ge=0, le=MAX_DAYS_AGO), Must(f"must be an integer in 0..{MAX_DAYS_AGO}")] = Field(
        description="days before the end of the as-of date, as the reasons count them "
                    "(an event on the as-of date is 1 day ago)")
    value: Annotated[Measure, Must("must be a finite number or null")] = Field(
        description="the event's number (a rating, a survey score, a returned amount), null where the kind "
                    "carries none")


RECENT_EVENT_FIELDS = RecentEvent.field_names()
RecentEvent.item_must = f"must have exactly {', '.join(RECENT_EVENT_FIELDS)}"


class ChurnAlert(Payload):
    """Published QoS 1 on retail/v1/{chain}/{store}/alert/churn. Further fields may be added compatibly;
    consumers ignore what they do not know."""

    model_config = ConfigDict(title=f"Churn alert ({ALERT_SCHEMA})")

    schema_: constant(ALERT_SCHEMA) = Field(
        alias="schema", description="payload schema and version")
    alert_id: text(64) = Field(
        description="unique, stable across resends; subscribers deduplicate by it")
    seq: Seq = Field(
        description="per-store message counter, monotonic, survives restarts; gaps show loss")
    chain: Origin = Field(description="retail chain (tenant); equals the topic's {chain}")
    store_id: Origin = Field(description="store; equals the topic's {store}")
    customer_ref: text(128) = Field(
        description="loyalty id, or an HMAC of it when the store pseudonymises")
    as_of: Day = Field(description="scoring date, YYYY-MM-DD")
    risk_score: Annotated[int, Field(ge=0, le=100), Must("must be in 0..100")]
    level: one_of(LEVELS) = Field(
        description="risk level, from the value at risk and the store's budget")
    action: Annotated[str | None, Must("must be a text or null")] = Field(
        description="intervention id; null for the control group")
    action_label: Annotated[str | None, Must("must be a text or null")] = Field(None, description="the action in words")
    reasons: Annotated[list[Reason], Must("must be a list of {text, feature, value, usual}")] = Field(
        description="strongest first")
    clv_estimate: Annotated[Amount, Must("must be a finite number of at least 0")] = Field(
        description="estimated customer lifetime value")
    action_cost_cap: Annotated[Amount, Must("must be a finite number of at least 0")] = Field(
        description="most the action may cost")
    model_version: text(200) = Field(description="model that scored the customer")
    created_at: Time = Field(description="UTC, ISO 8601")
    control: Annotated[bool, Must("must be a boolean")] = Field(
        False, description="held out from action to measure uplift")
    kind: one_of(ALERT_KINDS) = Field(
        "early_warning", description="early_warning: still buying, drifting away from their own rhythm; "
                                     "win_back: already lapsed by it (absent: early_warning)")
    days_silent: Annotated[int, Field(ge=0, le=INT64_MAX), Must("must be a non-negative integer")] = Field(
        None, description="days since the last visit")
    value_at_risk: Annotated[Amount, Must("must be a finite number of at least 0")] = Field(
        None, description="churn probability x CLV: what the level ranks by")
    recent_events: Annotated[list[RecentEvent] | None, Field(max_length=RECENT_EVENTS_MAX),
                             Must(f"must list at most {RECENT_EVENTS_MAX} events")] = Field(
        None, description="the customer's latest events, newest first: kind, days ago and a number only "
                          "(never a note, an account, a phone number or an e-mail)")


def check_alert(document: dict[str, Any], chain: str | None = None, store_id: str | None = None) -> dict[str, Any]:
    """A `retail.churn-alert/1` payload (the document itself), or PayloadError."""
    if not isinstance(document, dict) or document.get("schema") != ALERT_SCHEMA:
        found = document.get("schema") if isinstance(document, dict) else None
        raise PayloadError(f"schema must be {ALERT_SCHEMA!r}, got {found!r}")
    ChurnAlert.check(document, {"chain": chain, "store_id": store_id})
    return document
