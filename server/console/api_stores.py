"""/api/stores: store health, footfall with conversion, and data quality per store."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from .deps import Db, Reader, Settings, check_store
from .queries import data_quality, footfall, store_health
from .schemas import DataQuality, Footfall, StoreHealth

router = APIRouter(prefix="/api/stores", tags=["stores"])


@router.get("", response_model=list[StoreHealth])
def stores(account: Reader, db: Db,
           settings: Settings) -> list[StoreHealth]:
    """Every store this account may see: online or not, last seen, outbox, model, cameras, missing alerts, and
    its alarms (the box's, and the centre's data-quality alarms: an input's export late, a quarantine jump)."""
    return [StoreHealth(**row) for row in store_health(db, account, settings.stale_after_seconds,
                                                       settings.data_quality)]


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


@router.get("/{chain}/{store_id}/data-quality", response_model=DataQuality, responses={403: {}})
def store_data_quality(
    chain: str,
    store_id: str,
    account: Reader,
    db: Db,
    settings: Settings,
    days: Annotated[int, Query(ge=1, le=366, description="Days back from the store's today")] = 14,
) -> DataQuality:
    """Per input (POS, customer events, identities, footfall counter): the last export, rows accepted and
    quarantined per day by reason, today's quarantine rate against the store's usual; camera gaps per day;
    and the data-quality alarms."""
    check_store(account, chain, store_id)
    return DataQuality.model_validate(data_quality(db, chain, store_id, days, settings.data_quality))
