"""Small builders and readers several test modules share (shared helpers live here, not in a test module)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from models.scoring import ScoredCustomer
from server.central import open_central_db, tables
from server.federation.settings import FederationSettings
from tests.conftest import CHAIN_AS_OF

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "alert-payload.schema.json"


def customer(ref: str, score: int, level: str) -> ScoredCustomer:
    """A scored customer as scoring hands it to the alerting step, with one reason."""
    return ScoredCustomer(ref, score / 100, score, level, "callback", "phone call-back", 6.0, 500.0, 25.0,
                          [{"text": "last visit 41 days ago, usually every 12 days", "feature": "days_since_last_visit",
                            "value": 41.0, "usual": 12.0, "group": "recency", "contribution": 1.2}])


def alert_counts(target: str) -> tuple[int, ...]:
    """(rows, distinct alert ids, distinct (store, seq)) in the central database."""
    a = tables.alerts
    distinct_seqs = select(func.count()).select_from(select(a.c.store_id, a.c.seq).distinct().subquery())
    with open_central_db(target) as db, db.read() as connection:
        return tuple(connection.execute(select(
            func.count(), func.count(a.c.alert_id.distinct()), distinct_seqs.scalar_subquery())).one())


def published_schema() -> dict[str, Any]:
    """docs/alert-payload.schema.json, the churn alert's JSON Schema as integrators get it."""
    return json.loads(SCHEMA_PATH.read_text())  # type: ignore[no-any-return]


def federation_settings(state: Path, **overrides: Any) -> FederationSettings:
    """A small, quick federation over the test chain (two rounds of one epoch), with `overrides`."""
    values: dict[str, Any] = {"as_of": CHAIN_AS_OF, "state_dir": str(state), "num_server_rounds": 2,
                              "local_epochs": 1, "min_train_nodes": 2, "node_wait_seconds": 1.0}
    values.update(overrides)
    return FederationSettings(**values)
