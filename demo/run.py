"""The whole system on one machine, step by step, with every process stopped at the end (or on Ctrl-C).

1. a simulated chain up to yesterday and a door clip per store;
2. a private CA, the broker's accounts, the SuperNode keys and the release signing key;
3. the central services: Mosquitto (the shipped config), the SuperLink, the aggregator, the console;
4. one store box per store (`edge-agent run`), which ingests its history, counts its clip and starts
   its SuperNode;
5. a federation of a few rounds over the real SuperLink; backtests of each store alone and of all
   data pooled, for comparison;
6. the release, signed and published retained; each box verifies, canaries and activates it, scores
   its customers and publishes alerts; the aggregator stores them; the console serves them;
7. the summary, read back from the console's API.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console, Group

from models.interrupts import stop_on_interrupt_and_term

from .central import Central
from .chain import CHAIN, DemoSpec, make_clips, simulate
from .console_client import ConsoleClient
from .processes import VENV_BIN, DemoError, ProcessGroup, run_command, wait_for
from .stores import StoreBox
from .summary import StoreOutcome, summary

console = Console()


@dataclass
class DemoResult:
    console_url: str
    username: str
    password: str
    federation: dict[str, Any]
    backtests: dict[str, Any]
    alerts: list[dict[str, Any]]
    outcomes: list[StoreOutcome]
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)

    def summary(self) -> Group:
        return summary(self.federation, self.backtests.get("local", {}), self.backtests.get("centralized", {}),
                       self.alerts, self.outcomes)


class Steps:
    """Progress on the terminal: one line per step with its time, a spinner while it runs."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.times: dict[str, float] = {}

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        start = time.monotonic()
        if self.quiet:
            yield
        else:
            with console.status(text + " ..."):
                yield
        self.times[text] = time.monotonic() - start
        if not self.quiet:
            console.print(f"[green]✓[/green] {text} [dim]({self.times[text]:.0f} s)[/dim]")


def _backtest(mode: str, boxes: list[StoreBox], as_of: str, logs: Path, out: dict[str, Any]) -> None:
    argv = [str(VENV_BIN / "churn-server"), "backtest", "--as-of", as_of, "--mode", mode, "--json"]
    for box in boxes:
        argv += ["--db", str(box.db)]
    try:
        # One torch thread each: two backtests beside the boxes must not oversubscribe the cores.
        out[mode] = json.loads(run_command(argv, logs / f"backtest-{mode}.log", env={"OMP_NUM_THREADS": "1"}))
    except DemoError as exc:
        out[mode] = {"error": str(exc)}


def run_demo(spec: DemoSpec, out: Path, *, broker_url: str | None = None, console_port: int = 0,
             keep_running: bool = False, quiet: bool = False) -> DemoResult:
    started = time.monotonic()
    out = out.resolve()  # Flower's config and the box configs want absolute paths
    if out.exists():
        shutil.rmtree(out)
    group = ProcessGroup(out / "logs", env={"PATH": f"{VENV_BIN}:/usr/bin:/bin"})
    central = Central(out / "central", group, broker_url, console_port)
    steps = Steps(quiet)
    # Ctrl-C and SIGTERM stop the demo even when it was started as a background job, which inherits SIGINT
    # ignored (`make demo &`, `make test &` running the demo's own test).
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    stop_on_interrupt_and_term()
    try:
        with steps.step(f"Simulating {spec.stores} stores × {spec.customers} customers, {spec.days} days, "
                        f"and a door clip per store"):
            summaries = simulate(spec, out / "chain", group.logs / "simulate.log")
            files = make_clips(spec, out / "chain", summaries)
        boxes = [StoreBox(f.store_id, out / "stores" / f.store_id, f) for f in files]
        with steps.step("Issuing keys, certificates and broker accounts"):
            central.issue_credentials([b.store_id for b in boxes])
        with steps.step("Starting the broker, the SuperLink, the aggregator and the console"):
            central.start_broker()
            central.start_superlink([central.pki / f"supernode-{b.store_id}.pub" for b in boxes])
            central.start_aggregator()
            username, password = central.create_admin()
            central.start_console()
        with steps.step(f"Starting {len(boxes)} store boxes (edge-agent run) and loading their history"):
            for box in boxes:
                box.write_config(central, threads=1)
                box.prepare(group.logs)
                box.start(group)
            for box in boxes:
                wait_for(lambda box=box: box.health()["components"]["dropbox"]["files_done"] >= 1, 300,
                         f"{box.store_id} ingesting its history", group)
        as_of = spec.end.isoformat()
        backtests: dict[str, Any] = {}
        backtest_as_of = (spec.end - timedelta(days=91)).isoformat()
        threads = [threading.Thread(target=_backtest, args=(mode, boxes, backtest_as_of, group.logs, backtests))
                   for mode in ("local", "centralized")]
        with steps.step(f"Federated training: {spec.rounds} rounds over the SuperLink with {len(boxes)} SuperNodes"):
            federation = central.federate(as_of, spec.rounds, len(boxes), local_epochs=3)
        for thread in threads:  # the comparison runs while the release goes out
            thread.start()
        version = str(federation["manifest"]["version"])  # type: ignore[index]
        with steps.step(f"Releasing {version}: signed, published retained, verified and activated by every box"):
            central.release(str(federation["release_dir"]))
            for box in boxes:
                wait_for(lambda box=box: box.health().get("model_version") == version, 180,
                         f"{box.store_id} activating {version}", group)
        with steps.step("Scoring on every box; alerts through the broker to the aggregator and the console"):
            for box in boxes:
                wait_for(lambda box=box: (box.health().get("last_score") or {}).get("model_version") == version,
                         240, f"{box.store_id} scoring with {version}", group)
            client = ConsoleClient(central.console_url)
            wait_for(lambda: client.login(username, password), 60, "a console login", group)

            def delivered() -> bool:
                counts = {box.store_id: box.counts() for box in boxes}
                if any(c["unacked"] for c in counts.values()):
                    return False
                in_console = {box.store_id: client.get("/api/alerts", store_id=box.store_id, chain=CHAIN,
                                                       limit=1)["total"] for box in boxes}
                return all(in_console[s] == counts[s]["alerts"] for s in counts)

            wait_for(delivered, 240, "every alert acknowledged and in the console", group, every=2)
        with steps.step("Backtests for comparison: each store alone, and all data pooled"):
            for thread in threads:
                thread.join()
        alerts = client.all_alerts()
        stores = {s["store_id"]: s for s in client.get("/api/stores")}
        outcomes = []
        for box in boxes:
            health, counts = box.health(), box.counts()
            outcomes.append(StoreOutcome(box.store_id, counts["alerts"], counts["unacked"],
                                         stores.get(box.store_id, {}).get("state", "unknown"),
                                         health.get("model_version"), (counts["entries"], counts["exits"]),
                                         box.files.clip_truth))
        result = DemoResult(central.console_url, username, password, federation, backtests, alerts, outcomes,
                            time.monotonic() - started, steps.times)
        if not quiet:
            console.print(result.summary())
        if not quiet:
            console.print(f"\nConsole: [bold]{central.console_url}[/bold]  login [bold]{username}[/bold] / "
                          f"[bold]{password}[/bold] (also in {central.root / 'console-admin.password'})")
            console.print(f"Everything ran in {result.seconds / 60:.1f} min; logs in {group.logs}.")
        if keep_running:
            console.print("Still running (--keep-running): Ctrl-C stops every process.")
            while True:
                group.check()
                time.sleep(2)
        return result
    except KeyboardInterrupt:
        console.print("\nInterrupted: stopping every process the demo started ...")
        raise
    finally:
        group.stop_all()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
