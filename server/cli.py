"""`churn-server`: the central side's command line. Each command is a thin wrapper over one library call."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import tomllib
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from models.alerting import AlertPolicy, AlertPolicyError
from models.contracts import ContractError
from models.interrupts import stop_on_interrupt_and_term
from models.labels import LabelError
from models.risk import RiskConfig, RiskConfigError
from models.survival import SurvivalDataError
from models.release import ReleaseError, generate_signing_key
from models.store_data import StoreDataError
from transport.mqtt import BrokerConfig, BrokerError

from .aggregator import AggregatorError, AggregatorSettings, run_aggregator
from .central import (
    CentralDbError, list_alerts, list_dead_letters, open_central_db, read_summary_file, record_federation,
)
from .central.rounds import round_cost
from .errors import BacktestError, ConsoleError, FederationError, FederationRunError, SummaryError, TrainingError
from .federation import FederationSettings, FederationSettingsError
from .federation.runner import SuperLinkConnection, federate
from .pki_cli import pki_app
from .release import release_model
from .simulate import ChainSpec, SimulationError, StoreSummary, simulate_chain

app = typer.Typer(
    name="churn-server",
    help="The central side: simulate a chain, train and release models, aggregate alerts, serve the console.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True)


@app.callback()
def _group() -> None:
    """Keep sub-command mode even while a command group has a single command."""


app.add_typer(pki_app, name="pki")

DOMAIN_ERRORS: tuple[type[Exception], ...] = (
    SimulationError, TrainingError, BacktestError, StoreDataError, LabelError, SurvivalDataError,
    FederationError, FederationSettingsError, FederationRunError, ReleaseError, BrokerError, ContractError,
    CentralDbError, AggregatorError, ConsoleError, SummaryError,
)
DbsOption = Annotated[list[Path], typer.Option("--db", help="A store database; repeat for each store.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
CentralDbOption = Annotated[
    str, typer.Option("--db", help="Central database: a SQLite file (created if missing) or postgresql://...")
]
LimitOption = Annotated[int, typer.Option("--limit", min=0, help="At most this many, newest first (0: all).")]
HorizonOption = Annotated[
    int, typer.Option("--horizon-days", min=7, help="Churn = no purchase in this many days.")
]


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn a domain error into `churn-server: error: ...` on stderr and exit status 1."""
    try:
        yield
    except DOMAIN_ERRORS as exc:
        typer.echo(f"churn-server: error: {exc}", err=True)
        raise typer.Exit(1) from None


def print_json(payload: object) -> None:
    typer.echo(json.dumps(payload, indent=2))


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Folder for the chain's files.")],
    stores: Annotated[int, typer.Option("--stores", min=1, help="Number of stores.")] = 6,
    customers_per_store: Annotated[
        int, typer.Option("--customers-per-store", min=10, help="Typical loyalty customers per store.")
    ] = 3000,
    days: Annotated[int, typer.Option("--days", min=28, help="Days of history written.")] = 365,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same chain.")] = 7,
    end: Annotated[str, typer.Option("--end", help="Last day of the history (YYYY-MM-DD).")] = "2025-12-31",
    gzip: Annotated[bool, typer.Option("--gzip", help="Write pos.csv.gz instead of pos.csv.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """Simulate a retail chain: per store a POS CSV, an hourly footfall CSV and the true churn dates.

    Example: churn-server simulate --stores 6 --customers-per-store 3000 --days 365 --seed 7 --out chain/
    """
    spec = ChainSpec(stores, customers_per_store, days, seed, _parse_date(end), gzip=gzip)
    with one_line_errors(), Progress(console=stderr, disable=as_json, transient=True) as progress:
        task = progress.add_task("simulating stores", total=stores)
        summaries = simulate_chain(spec, out, on_store=lambda _: progress.advance(task))
    if as_json:
        print_json([s.__dict__ for s in summaries])
        return
    _print_chain(summaries, out)


def _print_chain(summaries: list[StoreSummary], out: Path) -> None:
    table = Table(title=f"Simulated chain in {out}")
    for column in ("store", "type", "customers", "transactions", "churners", "competitor", "growth"):
        table.add_column(column)
    for s in summaries:
        table.add_row(
            s.store_id, s.archetype, str(s.customers), str(s.transactions), str(s.churners),
            s.competitor_opening or "-", f"{s.traffic_growth:+.0%}",
        )
    Console().print(table)


@app.command()
def train(
    db: DbsOption,
    as_of: Annotated[str, typer.Option("--as-of", help="Train on what was known at the end of this day.")],
    out: Annotated[Path, typer.Option("--out", help="Model directory to write (model.onnx + manifest.json).")],
    horizon_days: HorizonOption = 90,
    version: Annotated[Optional[str], typer.Option("--version", help="Model version (default central-AS_OF).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Train one model on the pooled stores (centralised: pilots and the upper bound).

    Example: churn-server train --db store-01.db --db store-02.db --as-of 2025-09-30 --out models/central
    """
    from .train import parse_date, train_command  # torch: only for the commands that train

    with one_line_errors(), Progress(console=stderr, disable=as_json, transient=True) as progress:
        task = progress.add_task("building training sets", total=len(db))
        manifest = train_command(
            db, parse_date(as_of), out, horizon_days, version, on_store=lambda _: progress.advance(task)
        )
    if as_json:
        print_json(manifest)
        return
    metrics = manifest["metrics"]
    measured = ", ".join(f"{name} {metrics[key]:.3f}" for key, name in (
        ("auc", "AUC"), ("pr_auc", "PR-AUC"), ("brier", "Brier"), ("loss", "log-likelihood loss")) if key in metrics)
    typer.echo(f"Wrote {out}/model.onnx ({manifest['version']}), horizon {manifest['horizon_days']} days; "
               f"held-out customers: {measured}.")
    if "auc" not in metrics:
        typer.echo(f"Note: no customer's whole {manifest['horizon_days']}-day horizon was seen before as-of; "
                   "the probabilities are the likelihood's own, not calibrated on a seen horizon.")
    for note in manifest["training"]["notes"]:
        typer.echo(f"Note: {note}")


@app.command()
def backtest(
    db: DbsOption,
    as_of: Annotated[str, typer.Option("--as-of", help="Train on data up to this day; measure after it.")],
    horizon_days: HorizonOption = 90,
    mode: Annotated[str, typer.Option("--mode", help="local (each store alone), centralized or federated.")] = "centralized",
    lookback_days: Annotated[
        int, typer.Option("--lookback-days", min=1, help="Customers active = a purchase in this window.")
    ] = 365,
    truth: Annotated[
        Optional[Path], typer.Option("--truth", help="Simulated chain folder: adds the early warning measured "
                                                     "against truth.csv (weekly scoring after as-of).")
    ] = None,
    warning_weeks: Annotated[int, typer.Option(
        "--warning-weeks", min=9, help="--truth: weeks of weekly scoring after as-of.")] = 26,
    policy: Annotated[Optional[Path], typer.Option(
        "--policy", help="TOML with [risk] and [alerts] tables (levels, lapsed rule, budgets), as on a store box.")
    ] = None,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Federation rounds (--mode federated).")] = 5,
    engine: Annotated[str, typer.Option(
        "--engine", help="--mode federated: deployment (a SuperLink and a SuperNode per database, real processes "
                         "on loopback) or in-process (same app code, no processes, faster).")] = "deployment",
    as_json: JsonOption = False,
) -> None:
    """Backtest the model against recency, RFM logistic regression, BG/NBD and Pareto/NBD on the same split.

    Example: churn-server backtest --db store-01.db --db store-02.db --as-of 2025-09-30 --horizon-days 90 --mode local
    """
    from models.days import day_after

    from .backtest import MODES, BacktestSpec, run_backtest
    from .federation.local import ENGINES, federated_predictor
    from .train import load_stores, parse_date

    with one_line_errors():
        if mode not in MODES:
            raise BacktestError(f"--mode must be one of {', '.join(MODES)}")
        if engine not in ENGINES:
            raise BacktestError(f"--engine must be one of {', '.join(ENGINES)}")
        spec = BacktestSpec(day_after(parse_date(as_of)), horizon_days, mode, lookback_days, truth,
                            warning_weeks=warning_weeks)
        risk, alerts = load_policy(policy)
        with Progress(console=stderr, disable=as_json, transient=True) as progress:
            task = progress.add_task("loading stores", total=None)
            stores = load_stores(db)
            report = run_backtest(
                stores, spec, risk=risk, policy=alerts, on_step=lambda text: progress.update(task, description=text),
                federated=lambda _stores, day, horizon: federated_predictor(db, day, horizon, rounds, engine),
            )
        if mode == "federated":
            report["engine"] = engine
    if as_json:
        print_json(report)
        return
    _print_backtest(report)


def _print_backtest(report: dict) -> None:  # type: ignore[type-arg]
    console = Console()
    table = Table(title=f"Backtest ({report['mode']}) as of {report['as_of']}, horizon {report['horizon_days']} days, "
                        f"{report['n_customers']} customers, churn rate {report['churn_rate']:.1%}")
    for column in ("scorer", "AUC", "PR-AUC", "precision@10%", "lift@10%", "Brier"):
        table.add_column(column, justify="right" if column != "scorer" else "left")
    rows = [("model", report), *report["baselines"].items()]
    for name, m in rows:
        brier = f"{m['brier']:.3f}" if "brier" in m else "-"
        table.add_row(name, f"{m['auc']:.3f}", f"{m['pr_auc']:.3f}", f"{m['precision_at_10pct']:.3f}",
                      f"{m['lift_at_10pct']:.2f}", brier)
    console.print(table)
    levels = Table(title="Churn rate per level")
    levels.add_column("level")
    levels.add_column("customers", justify="right")
    levels.add_column("churn rate", justify="right")
    for row in report["levels"]:
        rate = "-" if row["churn_rate"] is None else f"{row['churn_rate']:.1%}"
        levels.add_row(row["level"], str(row["customers"]), rate)
    console.print(levels)
    stores = Table(title="Per store (AUC)")
    names = list(report["baselines"])
    for column in ("store", "customers", "model", *names):
        stores.add_column(column, justify="right" if column != "store" else "left")
    for s in report["per_store"]:
        stores.add_row(s["store_id"], str(s["n_customers"]), f"{s['auc']:.3f}",
                       *(f"{s['baselines'][b]['auc']:.3f}" for b in names))
    console.print(stores)
    if "early_warning" in report:
        warnings = Table(title=f"Early warning, weekly scoring for {report['early_warning']['weeks']} weeks after as-of")
        for column in ("rule", "churners", "caught before churn", "median lead (days)", "alert precision",
                       "false alarms /1000 loyal /month"):
            warnings.add_column(column, justify="left" if column == "rule" else "right")
        for row in (report["early_warning"], report["early_warning_baseline"]):
            warnings.add_row(row["rule"], str(row["churners"]), _share(row["caught_before_churn_share"]),
                             _number(row["median_lead_days"]), _share(row["alert_precision"]),
                             _number(row["false_alarms_per_1000_loyal_per_month"]))
        console.print(warnings)
    for note in report["notes"]:
        console.print(f"Note: {note}")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def load_policy(path: Path | None) -> tuple[RiskConfig, AlertPolicy]:
    """The [risk] and [alerts] tables of a TOML file (the store box's own), or the defaults."""
    if path is None:
        return RiskConfig(), AlertPolicy()
    try:
        raw = tomllib.loads(path.read_text())
        alerts = {k: v for k, v in raw.get("alerts", {}).items() if k != "pseudonymise_key_file"}
        return RiskConfig.from_mapping(raw.get("risk", {})), AlertPolicy.from_mapping(alerts)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BacktestError(f"--policy {path}: {exc}") from None
    except (RiskConfigError, AlertPolicyError) as exc:
        raise BacktestError(f"--policy {path}: {exc}") from None


def _overrides(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise FederationSettingsError(f"--set {pair!r} is not key=value")
        values[key.strip()] = value.strip()
    return values


@app.command("federate")
def federate_command(
    superlink: Annotated[str, typer.Option("--superlink", help="SuperLink address HOST:PORT.")],
    as_of: Annotated[str, typer.Option("--as-of", help="Train on what the stores knew at the end of this day.")],
    state_dir: Annotated[Path, typer.Option("--state-dir", help="Checkpoints, release and summary (on this host).")],
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Federation rounds.")] = 5,
    chain: Annotated[str, typer.Option("--chain", help="The chain (tenant) being trained.")] = "default",
    set_values: Annotated[list[str], typer.Option("--set", help="Run config override key=value (repeatable).")] = [],  # noqa: B006
    insecure: Annotated[bool, typer.Option("--insecure", help="Plain HTTP to the SuperLink (tests only).")] = False,
    root_certificates: Annotated[
        Optional[Path], typer.Option("--root-certificates", help="CA certificate of the SuperLink's TLS.")
    ] = None,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Resubmissions after a failed run (resuming).")] = 2,
    central_db: Annotated[
        Optional[str], typer.Option("--central-db", help="Also record the release and its rounds in this central database.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run the federation on the SuperLink: rounds, checkpoints, calibration and the exported release.

    Example: churn-server federate --superlink 127.0.0.1:9093 --root-certificates ca.crt --as-of 2026-11-22 --state-dir /var/lib/churn/federation
    """
    with one_line_errors():
        raw = {"as-of": as_of, "state-dir": str(state_dir.resolve()), "num-server-rounds": rounds, "chain": chain,
               **_overrides(set_values)}
        settings = FederationSettings.from_run_config(raw)
        connection = SuperLinkConnection(superlink, insecure, root_certificates)
        if central_db:
            open_central_db(central_db).close()  # unreachable or too new: say so before hours of training
        with Progress(console=stderr, disable=as_json, transient=True) as progress:
            task = progress.add_task("federating", total=rounds)
            summary = federate(settings, connection, retries=retries,
                               on_round=lambda done, total: progress.update(task, completed=done - 1))
        if central_db:
            summary["recorded"] = _record_rounds(central_db, summary, state_dir)
    if as_json:
        print_json(summary)
        return
    for entry in summary["rounds"]:
        auc = entry.get("metrics", {}).get("auc")
        wall, slowest, overhead = round_cost(entry)
        cost = (f", {wall:.1f} s: slowest store trained {slowest:.1f} s, overhead {overhead:.1f} s"
                if wall is not None and slowest is not None and overhead is not None else "")
        typer.echo(f"round {entry['round']}: {len(entry['trained'])} stores trained"
                   + (f", held-out AUC {auc:.3f}" if auc is not None else "") + cost
                   + (f" ({entry['skipped']})" if entry["skipped"] else ""))
    typer.echo(f"Release: {summary['release_dir']} (pooled held-out AUC {summary['manifest']['metrics']['auc']:.3f})")
    if "recorded" in summary:
        typer.echo(f"Recorded in {central_db}: {summary['recorded']['rounds_new']} new round(s).")


def _record_rounds(target: str, summary: dict, state_dir: Path) -> dict:  # type: ignore[type-arg]
    try:
        with open_central_db(target) as central:
            return record_federation(central, summary).as_dict()
    except (CentralDbError, SummaryError) as exc:
        raise SummaryError(f"the federation finished but its rounds were not recorded ({exc}); record them with "
                           f"churn-server record-rounds --db {target} --summary {state_dir}/federation.json") from None


@app.command("record-rounds")
def record_rounds(
    db: CentralDbOption,
    summary: Annotated[Path, typer.Option("--summary", help="The federation's summary (STATE_DIR/federation.json).")],
    as_json: JsonOption = False,
) -> None:
    """Record a federation's release and rounds in the central database, for the console; again changes nothing.

    Example: churn-server record-rounds --db /var/lib/churn/central.db --summary /var/lib/churn/federation/federation.json
    """
    with one_line_errors():
        document = read_summary_file(summary)
        with open_central_db(db) as central:
            result = record_federation(central, document)
    if as_json:
        print_json(result.as_dict())
        return
    typer.echo(f"{result.version} ({result.chain}): {result.rounds_new} of {result.rounds_total} round(s) new"
               + ("" if result.release_new else ", release already recorded") + ".")


@app.command()
def keys(
    out: Annotated[Path, typer.Option("--out", help="Private key file to create (the public key goes to OUT.pub).")],
) -> None:
    """Create the Ed25519 key that signs model releases; give OUT.pub to every store box.

    Example: churn-server keys --out /etc/churn/release-signing.key
    """
    with one_line_errors():
        public = generate_signing_key(out)
    typer.echo(f"Private key: {out} (keep it on this server). Public key for the stores: {public}")


CertFileOption = Annotated[Optional[Path], typer.Option(
    "--cert-file", help="TLS client certificate (churn-server pki client): the broker's TLS listener requires one.")]
KeyFileOption = Annotated[Optional[Path], typer.Option("--key-file", help="Its private key.")]


@app.command()
def release(
    model: Annotated[Path, typer.Option("--model", help="Model directory (model.onnx + manifest.json).")],
    chain: Annotated[str, typer.Option("--chain", help="The chain (tenant) the release is for.")],
    signing_key: Annotated[Path, typer.Option("--signing-key", help="Ed25519 private key (churn-server keys).")],
    mqtt_url: Annotated[Optional[str], typer.Option("--mqtt", help="Publish retained to this broker.")] = None,
    ca_file: Annotated[Optional[Path], typer.Option("--ca-file", help="CA of the broker's TLS certificate.")] = None,
    cert_file: CertFileOption = None,
    key_file: KeyFileOption = None,
    password_file: Annotated[Optional[Path], typer.Option("--password-file", help="The broker password of the URL's user (e.g. mqtts://release@broker).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Also write the signed release document here.")] = None,
    rollback: Annotated[bool, typer.Option("--rollback", help="Let boxes take it although it is older than the model they run (a deliberate return).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Sign a model and publish it retained on retail/v1/{chain}/model/current (boxes take only newer models).

    Example: churn-server release --model state/release/fed-2026-11-22-r5-1a2b --chain acme --signing-key release.key --mqtt mqtts://release@broker:8883 --ca-file ca.crt --password-file release.mqtt-password
    """
    with one_line_errors():
        broker = BrokerConfig(mqtt_url, ca_file, cert_file, key_file, password_file) if mqtt_url else None
        result = release_model(model, chain, signing_key, broker=broker, out=out, rollback=rollback)
    if as_json:
        print_json(result)
        return
    where = [w for w in (result["topic"], result["file"]) if w]
    typer.echo(f"Released {result['version']} for {chain} ({result['bytes']} bytes) to {', '.join(where) or 'nowhere'}.")


@app.command("aggregator")
def aggregator_command(
    mqtt_url: Annotated[str, typer.Option("--mqtt", help="Broker URL, mqtt://HOST:PORT or mqtts://HOST:PORT.")],
    db: CentralDbOption,
    ca_file: Annotated[Optional[Path], typer.Option("--ca-file", help="CA of the broker's TLS certificate.")] = None,
    cert_file: CertFileOption = None,
    key_file: KeyFileOption = None,
    password_file: Annotated[Optional[Path], typer.Option("--password-file", help="The broker password of the URL's user (e.g. mqtt://aggregator@host).")] = None,
    group: Annotated[str, typer.Option("--group", help="Shared-subscription group: aggregators in one group split the alerts.")] = "churn-aggregators",
    client_id: Annotated[Optional[str], typer.Option("--client-id", help="Stable MQTT client id, distinct per aggregator (default churn-aggregator-GROUP-HOSTNAME).")] = None,
    session_expiry: Annotated[int, typer.Option("--session-expiry", min=0, help="Seconds the broker keeps queueing for this aggregator while it is down.")] = 86_400,
    busy_timeout: Annotated[float, typer.Option("--busy-timeout", min=0.1, help="SQLite central database: seconds to wait for another writer before the batch is retried and the log says the database is unavailable.")] = 30.0,
) -> None:
    """Store the stores' alerts, status and metrics in the central database and ack them; runs until SIGTERM.

    Example: churn-server aggregator --mqtt mqtts://broker.example:8883 --ca-file ca.crt --db /var/lib/churn/central.db
    """
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("churn.aggregator.mqtt").setLevel(logging.WARNING)
    with one_line_errors():
        broker = BrokerConfig(mqtt_url, ca_file, cert_file, key_file, password_file)
        settings = AggregatorSettings(broker, group, client_id, session_expiry, busy_timeout_seconds=busy_timeout)
        run_aggregator(db, settings)


@app.command()
def alerts(
    db: CentralDbOption,
    store_id: Annotated[Optional[str], typer.Option("--store-id", help="Only this store's alerts.")] = None,
    level: Annotated[Optional[str], typer.Option("--level", help="Only this level (green ... purple).")] = None,
    chain: Annotated[Optional[str], typer.Option("--chain", help="Only this chain's alerts.")] = None,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
) -> None:
    """List the alerts stored in the central database, newest first.

    Example: churn-server alerts --db /var/lib/churn/central.db --store-id paris-01 --level red --json
    """
    with one_line_errors(), open_central_db(db, create=False) as central:
        rows = list_alerts(central, chain=chain, store_id=store_id, level=level, limit=limit)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} alerts")
    for column in ("received", "chain", "store", "seq", "customer", "level", "score", "action"):
        table.add_column(column, justify="right" if column in ("seq", "score") else "left")
    for r in rows:
        table.add_row(r["received_at"][:19], r["chain"], r["store_id"], str(r["seq"]), r["customer_ref"],
                      r["level"], str(r["risk_score"]), r["action_label"] or r["action"] or "-")
    Console().print(table)


@app.command("dead-letters")
def dead_letters_command(db: CentralDbOption, limit: LimitOption = 100, as_json: JsonOption = False) -> None:
    """List the messages the aggregator could not use, with the reason, newest first.

    Example: churn-server dead-letters --db /var/lib/churn/central.db --json
    """
    with one_line_errors(), open_central_db(db, create=False) as central:
        rows = list_dead_letters(central, limit=limit)
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} dead letters")
    for column in ("last received", "topic", "times", "reason"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["last_received_at"][:19], r["topic"], str(r["count"]), r["reason"])
    Console().print(table)


@app.command("console")
def console_command(
    db: CentralDbOption,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (keep loopback behind a reverse proxy).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8080,
    retrain_below: Annotated[float, typer.Option("--retrain-below", help="Signal a retrain when the live precision of alerts falls below this share.")] = 0.4,
    decay_min_outcomes: Annotated[int, typer.Option("--decay-min-outcomes", min=1, help="Control outcomes needed before the live precision is judged.")] = 30,
    session_hours: Annotated[float, typer.Option("--session-hours", help="A login lasts this long.")] = 12.0,
    stale_after: Annotated[float, typer.Option("--stale-after", help="Seconds without a status before an online store is shown silent.")] = 300.0,
    export_late_hours: Annotated[float, typer.Option("--export-late-hours", help="Alarm when an input a store normally sends has had no export for longer than this.")] = 26.0,
    quarantine_jump_ratio: Annotated[float, typer.Option("--quarantine-jump-ratio", help="Alarm when today's share of quarantined rows of an input is this many times the store's usual (and 2 points above it).")] = 3.0,
    quarantine_min_rows: Annotated[int, typer.Option("--quarantine-min-rows", min=1, help="Rows an input needs today before its quarantine rate can raise the alarm.")] = 50,
    public_origin: Annotated[list[str], typer.Option("--public-origin", help="The console's address as browsers see it behind a proxy, e.g. https://console.acme.example (repeatable).")] = [],  # noqa: B006
    forwarded_allow_ips: Annotated[str, typer.Option("--forwarded-allow-ips", help="Addresses of the reverse proxies whose X-Forwarded-For/-Proto are trusted (comma-separated; default: none, every client is who it connects as).")] = "",
) -> None:
    """Serve the console: the REST API under /api/, its OpenAPI at /openapi.json and the web page at /.

    Example: churn-server console --db /var/lib/churn/central.db --host 127.0.0.1 --port 8080
    """
    from .console.data_quality import DataQualityRules
    from .console.serve import serve_console  # FastAPI and uvicorn: only for this command
    from .console.settings import ConsoleSettings

    with one_line_errors():
        rules = DataQualityRules(export_late_hours=export_late_hours, jump_ratio=quarantine_jump_ratio,
                                 min_rows=quarantine_min_rows)
        settings = ConsoleSettings(retrain_below=retrain_below, decay_min_outcomes=decay_min_outcomes,
                                   session_hours=session_hours, stale_after_seconds=stale_after,
                                   public_origins=tuple(public_origin), data_quality=rules)
        serve_console(db, host, port, settings, forwarded_allow_ips)


def _new_password(password_file: Optional[Path]) -> str:
    from .console.passwords import password_from_file

    if password_file is not None:
        return password_from_file(password_file)
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True))


PasswordFileOption = Annotated[
    Optional[Path], typer.Option("--password-file", help="Read the password from this file's first line (else a prompt).")
]
UsernameOption = Annotated[str, typer.Option("--username", help="The account's login name.")]
ReplaceOption = Annotated[
    bool, typer.Option("--replace", help="Reset an existing account (password, role, stores) and end its sessions.")
]


@app.command("fleet-gateway")
def fleet_gateway_command(
    superlink: Annotated[str, typer.Option("--superlink", help="The SuperLink's loopback address HOST:PORT (its --host 127.0.0.1 --port).")],
    certfile: Annotated[Path, typer.Option("--ssl-certfile", help="TLS certificate the stores see (the SuperLink's).")],
    keyfile: Annotated[Path, typer.Option("--ssl-keyfile", help="Its private key.")],
    ca_file: Annotated[Path, typer.Option("--ca-file", help="The chain's CA (checks the SuperLink's certificate).")],
    host: Annotated[str, typer.Option("--host", help="Address the stores reach.")] = "0.0.0.0",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port the stores reach.")] = 9092,
) -> None:
    """Serve the stores' SuperNodes the SuperLink's Fleet API, and nothing else of it; runs until SIGTERM.

    Example: churn-server fleet-gateway --superlink 127.0.0.1:9093 --ssl-certfile superlink.crt --ssl-keyfile superlink.key --ca-file ca.crt --port 9092
    """
    from .fleet_gateway import GatewaySettings, serve_gateway  # uvicorn: only for this command

    with one_line_errors():
        serve_gateway(GatewaySettings(host, port, superlink, certfile, keyfile, ca_file))


@app.command("create-admin")
def create_admin(db: CentralDbOption, username: UsernameOption, password_file: PasswordFileOption = None,
                 replace: ReplaceOption = False) -> None:
    """Create a console admin account (the first one, or a way back in with --replace).

    Example: churn-server create-admin --db /var/lib/churn/central.db --username alice --password-file /root/alice.password
    """
    from .console.accounts import create_account

    with one_line_errors():
        password = _new_password(password_file)
        with open_central_db(db) as central:
            create_account(central, username, password, "admin", replace=replace)
    typer.echo(f"Admin {username} {'reset' if replace else 'created'}.")


@app.command("create-user")
def create_user(
    db: CentralDbOption,
    username: UsernameOption,
    role: Annotated[str, typer.Option("--role", help="viewer (reads everything), staff (acts on its stores) or admin.")],
    store: Annotated[list[str], typer.Option("--store", help="CHAIN/STORE_ID a staff account works for (repeatable).")] = [],  # noqa: B006
    password_file: PasswordFileOption = None,
    replace: ReplaceOption = False,
) -> None:
    """Create a console account: a viewer, store staff limited to their stores, or an admin.

    Example: churn-server create-user --db /var/lib/churn/central.db --username paris-team --role staff --store acme/paris-01 --password-file pw.txt
    """
    from .console.accounts import create_account, parse_store_key

    with one_line_errors():
        stores = [parse_store_key(s) for s in store]
        password = _new_password(password_file)
        with open_central_db(db) as central:
            create_account(central, username, password, role, stores, replace=replace)
    typer.echo(f"User {username} ({role}{': ' + ', '.join(store) if store else ''}) {'reset' if replace else 'created'}.")


def main() -> None:
    stop_on_interrupt_and_term()
    app(prog_name="churn-server")


if __name__ == "__main__":
    sys.exit(main())
