"""/api/stores: store health, and footfall with conversion per store."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from .deps import Db, Reader, Settings, check_store
from .queries import footfall, store_health
from .schemas import Footfall, StoreHealth

router = APIRouter(prefix="/api/stores", tags=["stores"])


@router.get("", response_model=list[StoreHealth])
def stores(account: Reader, db: Db,
           settings: Settings) -> list[StoreHealth]:
    """Every store this account may see: online or not, last seen, outbox, model, cameras, missing alerts."""
    return [StoreHealth(**row) for row in store_health(db, account, settings.stale_after_seconds)]


@router.get("/{chain}/{store_id}/footfall", response_model=Footfall, responses={403: {}})
def store_footfall(
    chain: str,
    store_id: str,
    account: Reader,
    db: Db,
    days: Annotated[int, Query(ge=1, le=366, description="Days back from the store's latest reported hour")] = 14,
    bucket: Literal["day", "hour"] = "day",
) -> Footfall:
    """Entries, exits, in-store transactions and conversion (transactions / entries) per day or hour."""
    check_store(account, chain, store_id)
    return Footfall.model_validate({"chain": chain, "store_id": store_id, "bucket": bucket, "days": days,
                                    "points": footfall(db, chain, store_id, days, bucket)})
