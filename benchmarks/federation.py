"""Federation rounds over real processes: wall time per round, split into the stores' local training
and the federation's overhead, and the bytes each store sends per round.

A SuperLink and one SuperNode per store (real flower-* processes on loopback, no TLS) run the
deployed Flower App through `churn-server federate`'s runner, over simulated store databases.
Each store reports how long its local epochs took (`train-seconds`, measured inside the
ClientApp); the server records each round's wall time and the size of every reply. Overhead =
round wall time minus the slowest store's training: message delivery and polling, the ClientApp
process starting and reading its database, and the evaluation half of the round.

Usage: .venv/bin/python benchmarks/federation.py [--stores 4] [--customers-per-store 800] [--rounds 3]
       [--local-epochs 5] [--threads 1] [--keep DIR]
Goal: overhead per round below the training time; the script says which one dominates.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_agent.ingest import ingest_files  # noqa: E402
from edge_agent.store_db import open_store_db  # noqa: E402
from server.federation.deployment import LocalDeployment  # noqa: E402
from server.federation.runner import SuperLinkConnection, federate  # noqa: E402
from server.federation.settings import FederationSettings  # noqa: E402
from server.simulate import ChainSpec, simulate_chain  # noqa: E402

VENV_BIN = Path(sys.executable).parent
CHAIN_END = date(2025, 12, 31)
AS_OF = (CHAIN_END - timedelta(days=92)).isoformat()  # leaves the horizon inside the history


def build_stores(folder: Path, stores: int, customers: int, days: int, seed: int) -> list[Path]:
    """A simulated chain, each store ingested into its own database (not timed)."""
    simulate_chain(ChainSpec(stores=stores, customers_per_store=customers, days=days, seed=seed, end=CHAIN_END), folder)
    paths = []
    for store in sorted(folder.glob("store-*")):
        db = folder / "db" / f"{store.name}.db"
        with open_store_db(db, chain="bench") as handle:
            ingest_files(handle, [store / "pos.csv"])
        paths.append(db)
    return paths


def run_federation(address: str, state: Path, stores: int, rounds: int, local_epochs: int) -> tuple[dict[str, Any], float]:
    """`churn-server federate`'s runner against the local SuperLink; (summary, wall seconds)."""
    settings = FederationSettings(
        as_of=AS_OF, state_dir=str(state), chain="bench", num_server_rounds=rounds, local_epochs=local_epochs,
        min_train_nodes=stores, min_available_nodes=stores, node_wait_seconds=120.0, round_timeout_seconds=600.0,
    )
    started = time.perf_counter()
    summary = federate(settings, SuperLinkConnection(address, insecure=True), retries=0,
                       on_round=lambda done, total: print(f"  round {done}/{total} started", file=sys.stderr))
    return summary, time.perf_counter() - started


def clientapp_import_seconds(runs: int = 3) -> float:
    """Baseline: a fresh interpreter importing the ClientApp (flwr, torch), which every message's process pays."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import flwr.clientapp, edge_agent.client_app"], check=True,
                       cwd=Path(__file__).resolve().parent.parent)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def clientapp_runtime(superlink_db: Path) -> float | None:
    """Seconds the stores' ClientApp processes ran in total (process start to reply), as the SuperLink
    recorded them; None if this Flower version keeps it elsewhere."""
    try:
        with sqlite3.connect(f"file:{superlink_db}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT sum(clientapp_runtime) FROM run").fetchone()
        return float(row[0]) if row and row[0] is not None else None
    except sqlite3.Error:
        return None


@dataclass(frozen=True)
class RoundFigures:
    number: int
    wall: float  # the whole round: training and evaluation
    train_phase: float  # configure_train to aggregate_train
    slowest_training: float  # the slowest store's local epochs
    slowest_prepare: float  # the slowest store's reading and labelling in its fresh ClientApp process
    array_bytes: list[int]  # per store: the weights in its reply
    message_bytes: list[int]  # per store: every object of its reply message

    @property
    def overhead(self) -> float:
        return self.wall - self.slowest_training


def round_figures(entry: dict[str, Any]) -> RoundFigures:
    timing = entry["timing"]
    return RoundFigures(
        number=int(entry["round"]),
        wall=float(timing["round_wall_seconds"]),
        train_phase=float(timing["train_wall_seconds"]),
        slowest_training=max(timing["train_seconds"].values()),
        slowest_prepare=max(timing["prepare_seconds"].values(), default=0.0),
        array_bytes=[int(v) for v in timing["array_bytes"].values()],
        message_bytes=[int(v) for v in timing["message_bytes"].values()],
    )


def print_round(r: RoundFigures) -> None:
    print(f"round {r.number}: wall {r.wall:.1f} s (training phase {r.train_phase:.1f} s, evaluation "
          f"{r.wall - r.train_phase:.1f} s); slowest store trained {r.slowest_training:.1f} s; overhead "
          f"{r.overhead:.1f} s (of which loading the store's cutoffs {r.slowest_prepare:.1f} s); "
          f"bytes sent per store: arrays {statistics.median(r.array_bytes):,.0f}, "
          f"message {statistics.median(r.message_bytes):,.0f}")


def print_processes(figures: list[RoundFigures], stores: int, runtime: float | None, import_seconds: float) -> None:
    """What the ClientApp processes cost beyond the stores' own work."""
    messages = stores * (2 + 2 * len(figures))  # stats, a train and an evaluate per round, calibrate
    if runtime is None:
        print(f"cold import of the ClientApp (flwr + torch) in a fresh interpreter: {import_seconds:.1f} s (baseline)")
        return
    print(f"ClientApp processes: {runtime:.1f} s over {messages} messages ({runtime / messages:.1f} s each); "
          f"cold import of the ClientApp in a fresh interpreter: {import_seconds:.1f} s (baseline, alone)")


def print_summary(figures: list[RoundFigures], total_seconds: float) -> None:
    wall = statistics.median(r.wall for r in figures)
    training = statistics.median(r.slowest_training for r in figures)
    overhead = statistics.median(r.overhead for r in figures)
    evaluation = statistics.median(r.wall - r.train_phase for r in figures)
    prepare = statistics.median(r.slowest_prepare for r in figures)
    rounds_total = sum(r.wall for r in figures)
    print(f"median round: wall {wall:.1f} s, training (slowest store) {training:.1f} s, overhead {overhead:.1f} s "
          f"(evaluation half {evaluation:.1f} s, loading cutoffs {prepare:.1f} s, the rest "
          f"{overhead - evaluation - prepare:.1f} s)")
    print(f"bytes sent per store per round: arrays {statistics.median(b for r in figures for b in r.array_bytes):,.0f}, "
          f"message {statistics.median(b for r in figures for b in r.message_bytes):,.0f}")
    print(f"whole federation: {total_seconds:.1f} s, of which rounds {rounds_total:.1f} s (the rest: start-up, "
          "normalisation, calibration, export)")
    ratio = overhead / training if training > 0 else float("inf")
    print(f"ratio overhead/training: {ratio:.2f} ({'training' if ratio < 1 else 'overhead'} dominates)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=4)
    parser.add_argument("--customers-per-store", type=int, default=800)
    parser.add_argument("--days", type=int, default=450, help="days of simulated history per store")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--local-epochs", type=int, default=5, help="the federation's default")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per store (node config)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="keep the chain, logs and state here instead of a temporary folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-federation-") as scratch:
        folder = args.keep or Path(scratch)
        dbs = build_stores(folder / "chain", args.stores, args.customers_per_store, args.days, args.seed)
        print(f"stores: {args.stores} x ~{args.customers_per_store} customers, rounds: {args.rounds}, "
              f"local epochs: {args.local_epochs}, threads per store: {args.threads}, as-of {AS_OF}")
        import_seconds = clientapp_import_seconds()
        with LocalDeployment(dbs, folder / "flower", args.threads) as deployment:
            summary, total = run_federation(deployment.address, folder / "state", args.stores, args.rounds,
                                            args.local_epochs)
        figures = [round_figures(entry) for entry in summary["rounds"] if entry.get("timing", {}).get("train_seconds")]
        if not figures:
            raise SystemExit("no round trained; see the logs (--keep DIR)")
        for r in figures:
            print_round(r)
        print_processes(figures, args.stores, clientapp_runtime(folder / "flower" / "superlink" / "state.db"),
                        import_seconds)
        print_summary(figures, total)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; every process it started is stopped")
