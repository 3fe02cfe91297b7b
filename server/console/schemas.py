"""The API's request and response models: what /openapi.json documents and the page relies on."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Role = Literal["viewer", "staff", "admin"]
State = Literal["open", "assigned", "contacted", "closed"]
Kind = Literal["early_warning", "win_back"]
Outcome = Literal["contacted", "offer_accepted", "offer_declined", "stayed", "churned"]
Note = str | None


# --- accounts and sessions ---

class LoginRequest(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class SessionInfo(BaseModel):
    username: str
    role: Role
    stores: list[str] = Field(description="CHAIN/STORE_ID of a staff account's stores; empty: every store")
    csrf_token: str = Field(description="Send it back in the X-CSRF-Token header of every POST, PUT, PATCH, DELETE")
    expires_at: str


class User(BaseModel):
    username: str
    role: Role
    stores: list[str]
    disabled: bool


class NewUser(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    role: Role
    stores: list[str] = Field(default_factory=list, description="CHAIN/STORE_ID, staff accounts only")


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


# --- alerts ---

class OutcomeStep(BaseModel):
    outcome: Outcome
    cost: float | None
    note: Note
    recorded_by: str
    recorded_at: str


class Alert(BaseModel):
    alert_id: str
    seq: int
    chain: str
    store_id: str
    customer_ref: str
    as_of: str
    risk_score: int
    level: str
    action: str | None
    action_label: str | None
    reasons: list[dict[str, Any]]
    clv_estimate: float
    action_cost_cap: float
    model_version: str
    created_at: str
    control: bool = Field(description="Held out from action by the store (the control group)")
    kind: Kind = Field(description="early_warning: still buying, drifting away; win_back: lapsed by their own rhythm")
    received_at: str
    state: State
    assignee: str | None
    assigned_at: str | None
    contacted_at: str | None
    offer: Literal["accepted", "declined"] | None
    result: Literal["stayed", "churned"] | None
    result_at: str | None
    cost: float | None = Field(description="Actual cost recorded; when absent, action_cost_cap counts")
    updated_at: str | None
    updated_by: str | None


class RecentEvent(BaseModel):
    kind: str = Field(description="the customer-events contract's kind: complaint, survey, return, ...")
    days_ago: int = Field(description="days before the end of the alert's as-of date (that date itself: 1)")
    value: float | None = Field(description="a rating, a survey score or a returned amount; null for other kinds")
    text: str = Field(description="in staff's words, e.g. 'complaint 12 days ago', 'survey score 3, 30 days ago'")


class AlertDetail(Alert):
    recent_events: list[RecentEvent] = Field(description="the customer's latest events (at most 10 of the last "
                                                         "90 days), newest first, shown beside the reasons")
    outcomes: list[OutcomeStep]


class AlertPage(BaseModel):
    total: int
    limit: int
    offset: int
    alerts: list[Alert]


class AssignRequest(BaseModel):
    assignee: str | None = Field(description="A user who may act on the alert's store; null to unassign")


class ContactedRequest(BaseModel):
    note: Note = Field(default=None, max_length=500)


class OutcomeRequest(BaseModel):
    outcome: Outcome
    cost: float | None = Field(default=None, ge=0, le=1e9, allow_inf_nan=False,
                               description="What the action actually cost (optional)")
    note: Note = Field(default=None, max_length=500)


# --- stores ---

class Camera(BaseModel):
    source: str
    state: str


class StoreHealth(BaseModel):
    chain: str
    store_id: str
    state: str = Field(description="online, offline (the box said so or its Last Will did) or unknown")
    silent: bool = Field(description="online, but no status for longer than the console's --stale-after")
    last_seen: str | None
    reason: str | None
    outbox_unacked: int | None
    last_publish_at: str | None
    model_version: str | None
    cameras: list[Camera]
    camera_state: Literal["ok", "degraded", "none"]
    alarms: dict[str, Any] = Field(description="the box's alarms, and the centre's data-quality alarms "
                                               "(data_quality.INPUT.export_late, data_quality.INPUT.quarantine_jump)")
    metrics_at: str | None
    open_gaps: int
    missing_alerts: int
    alerts: int
    last_alert_at: str | None


class FootfallPoint(BaseModel):
    period: str
    entries: int
    exits: int
    transactions: int
    conversion: float | None = Field(description="transactions / entries")


class Footfall(BaseModel):
    chain: str
    store_id: str
    bucket: Literal["day", "hour"]
    days: int
    points: list[FootfallPoint]


class InputDay(BaseModel):
    day: str = Field(description="YYYY-MM-DD, store local")
    runs: int = Field(description="ingest runs (files) started that day")
    failed: int = Field(description="runs that could not read their file")
    accepted: int = Field(description="rows new to the store")
    quarantined: int = Field(description="rows newly put in quarantine")
    rate: float | None = Field(description="quarantined / (accepted + quarantined)")
    reasons: dict[str, int] = Field(description="quarantined rows by reason")


class InputQuality(BaseModel):
    input: str = Field(description="pos, events, identities or footfall")
    label: str
    last_export_at: str | None = Field(description="when the store last finished ingesting one of its exports (UTC)")
    today_rate: float | None = Field(description="today's quarantine rate at the store")
    trailing_rate: float | None = Field(description="the store's quarantine rate over the days before today")
    days: list[InputDay]


class CameraGapDay(BaseModel):
    day: str
    source: str
    gaps: int
    seconds: float


class DataQuality(BaseModel):
    chain: str
    store_id: str
    today: str | None = Field(description="the store's local date in its latest metrics; null: it reports none")
    days: int
    inputs: list[InputQuality]
    camera_gaps: list[CameraGapDay]
    alarms: dict[str, str]


# --- model rounds, uplift, decay ---

class Round(BaseModel):
    round: int
    trained: list[str]
    evaluated: list[str]
    failures: int
    train_loss: float | None
    auc: float | None
    loss: float | None
    per_store_auc: dict[str, float | None]
    skipped: str
    epsilon: float | None
    delta: float | None
    wall_seconds: float | None = Field(description="The round's wall time at the server")
    train_seconds: float | None = Field(description="The slowest store's local training, as it measured it")
    overhead_seconds: float | None = Field(description="Wall time minus that training: the federation's overhead")


class Release(BaseModel):
    version: str
    chain: str
    as_of: str | None
    finished_at: str | None
    strategy: str | None
    auc: float | None
    stores: list[str]
    privacy: dict[str, float | None] | None = Field(description="Differential privacy's budget; null without it")
    epsilon: float | None
    rounds: list[Round]


class Rate(BaseModel):
    n: int
    stayed: int
    rate: float | None
    low: float | None
    high: float | None


class UpliftRow(BaseModel):
    key: str
    treated: Rate
    control: Rate
    uplift: float | None
    uplift_low: float | None
    uplift_high: float | None
    cost: float
    clv: float
    recovered: float | None
    recovered_low: float | None
    recovered_high: float | None
    net: float | None
    roi: float | None


class Return(BaseModel):
    levels: list[str]
    unmeasured: list[str]
    cost: float
    recovered: float
    recovered_low: float
    recovered_high: float
    net: float
    roi: float | None


class UpliftReport(BaseModel):
    confidence: float
    by_level: list[UpliftRow]
    by_action: list[UpliftRow]
    total: Return


class Precision(BaseModel):
    period: str
    outcomes: int
    churned: int
    precision: float | None
    low: float | None
    high: float | None
    expected: float | None


class RetrainSignal(BaseModel):
    retrain: bool
    reason: str
    threshold: float
    min_outcomes: int
    current: Precision | None


class DecayReport(BaseModel):
    levels: list[str]
    periods: list[Precision]
    signal: RetrainSignal
