"""The three file contracts the box ingests: POS sales, customer events, identity links.

One place names each contract's columns, the `ingest_runs.input` it is
recorded under, and which of its columns hold values that must never reach the
database as they arrived (free text, phone numbers, e-mail addresses), so that
reading, quarantining and recognising a file work the same for all three.
docs/ingest.md describes each contract for the people who write the files.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Contract:
    """The columns of one input: what a header must name, and what a row may carry."""

    name: str  # as an operator reads it in an error: "not a POS CSV"
    input: str  # ingest_runs.input
    required: tuple[str, ...]  # the header must name each of these
    optional: tuple[str, ...]
    any_of: tuple[str, ...] = ()  # the header must name at least one of these (all are in `optional`)
    private: tuple[str, ...] = ()  # never stored as they arrived, not even in quarantine
    json_required: tuple[str, ...] = ()  # keys a JSON Lines row must hold, even when empty

    @property
    def columns(self) -> tuple[str, ...]:
        """The order in which a row's values reach the validator."""
        return self.required + self.optional


POS = Contract(
    name="POS",
    input="pos",
    required=("customer_id", "timestamp", "amount"),
    optional=("transaction_id", "store_id", "items", "channel"),
    json_required=("customer_id",),
)

EVENTS = Contract(
    name="customer-events",
    input="events",
    required=("timestamp", "kind"),
    optional=("customer_id", "phone", "email", "value", "channel", "event_id", "note", "store_id"),
    any_of=("customer_id", "phone", "email"),
    private=("phone", "email", "note"),
)

IDENTITIES = Contract(
    name="identities",
    input="identities",
    required=("customer_id",),
    optional=("online_account", "phone", "email"),
    any_of=("online_account", "phone", "email"),
    private=("phone", "email"),
)

CONTRACTS = (POS, EVENTS, IDENTITIES)


def recognise(columns: tuple[str, ...] | frozenset[str]) -> Contract:
    """Which contract a file's columns (a CSV header, a JSON row's keys) speak.

    A file naming every POS column is a till export, whatever else it carries
    (a till may well export a `kind`); else a `kind` makes it events, and links
    without a `timestamp` make it identities. Anything else is judged as the
    POS export it fails to be."""
    names = set(columns)
    if names >= set(POS.required):
        return POS
    if "kind" in names:
        return EVENTS
    if "timestamp" not in names and names & set(IDENTITIES.any_of):
        return IDENTITIES
    return POS
