"""Federation rounds over real processes: wall time per round, split into the stores' local training
and the federation's overhead, and the bytes each store sends per round.

A SuperLink and one SuperNode per store (real flower-* processes on loopback, no TLS) run the
deployed Flower App through `churn-server federate`'s runner, over simulated store databases.
Each store reports how long its local epochs took (`train-seconds`, measured inside the
ClientApp), how long its ClientApp process took to start, to read the store and to evaluate the
incoming global model; the server records each round's wall time (one exchange per round) and the
size of every reply. Overhead = round wall time minus the slowest store's training. Baseline, in
the same run: a fresh interpreter importing the ClientApp, which every message's process pays.

Usage: .venv/bin/python benchmarks/federation.py [--stores 4] [--customers-per-store 800] [--rounds 3]
       [--local-epochs 5] [--threads 1] [--keep DIR]
Goal: overhead per round below the training time; the script says which one dominates.
"""

from __future__ import annotations

import argparse
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


# What a training message's ClientApp process imports before it trains: Flower, our ClientApp, the trainer (torch).
CLIENTAPP_IMPORTS = "import flwr.clientapp, edge_agent.client_app, edge_agent.federated_store, edge_agent.training_rows"


def clientapp_import_seconds(runs: int = 3) -> float:
    """Baseline: a fresh interpreter importing what a training message's ClientApp process imports (flwr, torch)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", CLIENTAPP_IMPORTS], check=True,
                       cwd=Path(__file__).resolve().parent.parent)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@dataclass(frozen=True)
class RoundFigures:
    number: int
    wall: float  # the whole round, one exchange: the previous round's evaluation rides on the training reply
    slowest_training: float  # the slowest store's local epochs
    slowest_startup: float  # the slowest store's ClientApp process, from its start until the trainer was loaded
    slowest_prepare: float  # the slowest store's reading and labelling (or its cached rows)
    slowest_evaluation: float  # the slowest store's evaluation of the incoming global model
    array_bytes: list[int]  # per store: the weights in its reply
    message_bytes: list[int]  # per store: every object of its reply message

    @property
    def overhead(self) -> float:
        return self.wall - self.slowest_training

    @property
    def waits(self) -> float:
        """What no store's process accounts for: delivery and the polls on both sides."""
        return self.overhead - self.slowest_startup - self.slowest_prepare - self.slowest_evaluation


def _slowest(timing: dict[str, Any], key: str) -> float:
    return max(timing.get(key, {}).values(), default=0.0)


def round_figures(entry: dict[str, Any]) -> RoundFigures:
    timing = entry["timing"]
    return RoundFigures(
        number=int(entry["round"]),
        wall=float(timing["round_wall_seconds"]),
        slowest_training=_slowest(timing, "train_seconds"),
        slowest_startup=_slowest(timing, "startup_seconds"),
        slowest_prepare=_slowest(timing, "prepare_seconds"),
        slowest_evaluation=_slowest(timing, "evaluate_seconds"),
        array_bytes=[int(v) for v in timing["array_bytes"].values()],
        message_bytes=[int(v) for v in timing["message_bytes"].values()],
    )


def print_round(r: RoundFigures) -> None:
    print(f"round {r.number}: wall {r.wall:.1f} s; slowest store trained {r.slowest_training:.1f} s; overhead "
          f"{r.overhead:.1f} s (ClientApp start-up {r.slowest_startup:.1f} s, reading the store "
          f"{r.slowest_prepare:.1f} s, evaluating the incoming model {r.slowest_evaluation:.1f} s, delivery and polls "
          f"{r.waits:.1f} s); bytes sent per store: arrays {statistics.median(r.array_bytes):,.0f}, "
          f"message {statistics.median(r.message_bytes):,.0f}")


def print_summary(figures: list[RoundFigures], total_seconds: float, steps: dict[str, float],
                  import_seconds: float) -> None:
    wall = statistics.median(r.wall for r in figures)
    training = statistics.median(r.slowest_training for r in figures)
    overhead = statistics.median(r.overhead for r in figures)
    startup = statistics.median(r.slowest_startup for r in figures)
    waits = statistics.median(r.waits for r in figures)
    print(f"median round: wall {wall:.1f} s, training (slowest store) {training:.1f} s, overhead {overhead:.1f} s "
          f"(ClientApp start-up {startup:.1f} s, delivery and polls {waits:.1f} s)")
    print(f"bytes sent per store per round: arrays {statistics.median(b for r in figures for b in r.array_bytes):,.0f}, "
          f"message {statistics.median(b for r in figures for b in r.message_bytes):,.0f}")
    parts = ", ".join(f"{name.removesuffix('_seconds')} {seconds:.1f} s" for name, seconds in steps.items()
                      if name.endswith("_seconds"))
    print(f"whole federation: {total_seconds:.1f} s ({parts}; {int(steps.get('exchanges', 0))} exchanges)")
    print(f"baseline: a fresh interpreter importing the ClientApp and its trainer (flwr + torch), alone: {import_seconds:.1f} s; "
          f"the round's overhead is {overhead / import_seconds:.1f} x that")
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
        print_summary(figures, total, summary.get("timing", {}), import_seconds)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; every process it started is stopped")
