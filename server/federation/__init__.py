"""Federated training across store boxes with Flower (see rounds.py for the protocol).

This package's top level stays light (no torch, no Flower): the CLI and the
console import it.
"""

from ..errors import FederationError, FederationRunError
from .settings import FederationSettings, FederationSettingsError

__all__ = ["FederationError", "FederationRunError", "FederationSettings", "FederationSettingsError"]
