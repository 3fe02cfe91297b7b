"""/api/rounds, /api/uplift and /api/decay: how the model trains, what the actions achieve, and when to retrain."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query

from models.risk import LEVELS

from .decay import live_precision, retrain_signal
from .deps import Db, Reader, Settings, check_store
from .queries import DECAY_LEVELS, decay_periods, outcome_groups, releases
from .schemas import DecayReport, Release, UpliftReport
from .uplift import total_return, uplift_by_action, uplift_by_level

router = APIRouter(prefix="/api", tags=["results"])
CONFIDENCE = 0.95


@router.get("/rounds", response_model=list[Release])
def model_rounds(_account: Reader, db: Db,
                 limit: Annotated[int, Query(ge=1, le=200)] = 20) -> list[Release]:
    """Recorded federated releases, newest first, with each round's AUC, stores and privacy budget."""
    return [Release(**r) for r in releases(db, limit)]


@router.get("/uplift", response_model=UpliftReport, responses={403: {}})
def uplift(account: Reader, db: Db,
           chain: str | None = None, store_id: str | None = None) -> UpliftReport:
    """Retention with action against the control group, per level and per action, with 95% intervals and ROI."""
    check_store(account, chain, store_id)
    groups = outcome_groups(db, account, chain, store_id)
    by_level = uplift_by_level(groups, LEVELS)
    return UpliftReport.model_validate({
        "confidence": CONFIDENCE, "by_level": [asdict(r) for r in by_level],
        "by_action": [asdict(r) for r in uplift_by_action(groups)], "total": asdict(total_return(by_level))})


@router.get("/decay", response_model=DecayReport, responses={403: {}})
def decay(account: Reader, db: Db,
          settings: Settings,
          chain: str | None = None, store_id: str | None = None) -> DecayReport:
    """Live precision of past alerts (control group, orange and above) per month, and the retrain signal."""
    check_store(account, chain, store_id)
    periods = decay_periods(db, account, chain, store_id)
    signal = retrain_signal(periods, settings.retrain_below, settings.decay_min_outcomes)
    return DecayReport.model_validate({"levels": list(DECAY_LEVELS), "signal": asdict(signal),
                                       "periods": [asdict(p) for p in live_precision(periods)]})
