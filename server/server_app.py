"""The central Flower ServerApp: parses the run config once and runs the federation."""

from __future__ import annotations

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from .federation.rounds import run_federation
from .federation.settings import FederationSettings

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    run_federation(grid, FederationSettings.from_run_config(context.run_config))
