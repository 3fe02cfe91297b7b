"""The central side's domain errors, in a module light enough for the CLI to import at start.

(The modules that raise them pull in torch or Flower; `churn-server aggregator`
and the console must not.)
"""


class TrainingError(Exception):
    """Training cannot run as asked."""


class BacktestError(Exception):
    """A backtest that cannot be run as asked."""


class FederationError(Exception):
    """The federation cannot produce a model (no store answered, nothing to train on)."""


class FederationRunError(Exception):
    """The federation did not complete; the message says why and where the log is."""


class SummaryError(Exception):
    """A federation summary (federation.json) that cannot be recorded; the message says which part is wrong."""


class ConsoleError(Exception):
    """An account or console setting that cannot be used (a bad username, role, store or password)."""
