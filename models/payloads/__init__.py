"""The JSON payloads on the MQTT topics: one definition, checked the same way by every side.

Contract schemas (docs/architecture.md):

- `retail.churn-alert/1` on `.../alert/churn`: one customer's alert (alert.ChurnAlert);
- `retail.churn-alert-overflow/1` on `.../alert/churn`: the alerts beyond a
  store's daily cap, summarised in one message (never dropped silently; delivery.AlertOverflow);
- `retail.churn-ack/1` on `.../ack`: what the aggregator has stored (delivery.Ack);
- `retail.store-status/1` on `.../status` (retained; the Last Will says offline);
- `retail.store-metrics/1` on `.../metrics`: health, footfall and data quality (store_health.StoreStatus and
  store_health.StoreMetrics).

Every payload is a pydantic model that builds what is sent (`Model.build`, so a box never queues or
publishes a payload that breaks its contract) and checks what arrives. `check_*` raise PayloadError with a
reason naming the field: the aggregator puts such a payload in its dead-letter table with that reason.
docs/alert-payload.schema.json is generated from the alert model (`python -m models.payloads`).
"""

from .alert import (
    ALERT_KINDS, MAX_DAYS_AGO, RECENT_EVENT_FIELDS, RECENT_EVENTS_MAX, ChurnAlert, Reason, RecentEvent, check_alert,
)
from .base import (
    ACK_SCHEMA, ALERT_SCHEMA, MAX_PAYLOAD_BYTES, METRICS_SCHEMA, OVERFLOW_SCHEMA, STATUS_SCHEMA, PayloadError,
    alert_id_of, decode,
)
from .delivery import Ack, AlertOverflow, ack, check_ack, check_alert_message, check_overflow
from .store_health import (
    DATA_INPUTS, FOOTFALL_COUNTS, OTHER_REASONS, QUALITY_DAY_COUNTS, QUALITY_MAX_DAYS, QUALITY_MAX_REASONS,
    STORE_STATES, CameraGapDay, DataQuality, HourCounts, QualityDay, StoreMetrics, StoreStatus, check_metrics,
    check_status,
)

__all__ = [
    "ACK_SCHEMA", "ALERT_KINDS", "ALERT_SCHEMA", "DATA_INPUTS", "FOOTFALL_COUNTS", "MAX_DAYS_AGO", "MAX_PAYLOAD_BYTES",
    "METRICS_SCHEMA", "OTHER_REASONS", "OVERFLOW_SCHEMA", "QUALITY_DAY_COUNTS", "QUALITY_MAX_DAYS",
    "QUALITY_MAX_REASONS", "RECENT_EVENTS_MAX", "RECENT_EVENT_FIELDS", "STATUS_SCHEMA", "STORE_STATES", "Ack",
    "AlertOverflow", "CameraGapDay", "ChurnAlert", "DataQuality", "HourCounts", "PayloadError", "QualityDay", "Reason",
    "RecentEvent", "StoreMetrics", "StoreStatus", "ack", "alert_id_of", "check_ack", "check_alert",
    "check_alert_message", "check_metrics", "check_overflow", "check_status", "decode",
]
