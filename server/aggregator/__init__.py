"""The MQTT aggregator: the stores' alerts, status and metrics into the central database, acked back."""

from .handling import BatchOutcome, Incoming, check_message, handle_batch
from .service import Aggregator, AggregatorError, AggregatorSettings, run_aggregator

__all__ = [
    "Aggregator", "AggregatorError", "AggregatorSettings", "BatchOutcome", "Incoming", "check_message",
    "handle_batch", "run_aggregator",
]
