"""`edge-agent`: the store box's command line. Each command is a thin wrapper over one library call."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from models.contracts import ContractError
from models.export import ModelFileError
from models.interrupts import stop_on_interrupt_and_term
from models.store_data import StoreDataError
from transport.mqtt import BrokerConfig, BrokerError
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from .footfall import FootfallError
from .footfall.command import count_footfall
from .footfall.counter_import import DEFAULT_SOURCE as COUNTER_SOURCE
from .footfall.counter_import import import_counter_exports
from .ingest import (
    DEFAULT_BATCH_SIZE, EVENTS, IDENTITIES, POS, Contract, IdentityKeyError, IngestError, SourceFile, ingest_files,
    inspect_source,
)
from .quarantine import QuarantineError, export_quarantine, list_quarantine
from .model_cli import model_app
from .config import ConfigError, load_config
from .store_link import LinkSettings, publish_once
from .score import ScoringError, load_scoring_policy, parse_as_of, score_store
from .store_db import StoreDbError, open_store_db

app = typer.Typer(
    name="edge-agent",
    help="The store box agent: ingest POS, customer-event and identity exports, count footfall, score customers, "
         "publish alerts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True)


@app.callback()
def _group() -> None:
    """Keep sub-command mode even while a command group has a single command."""


app.add_typer(model_app, name="model")
PROGRESS_MIN_BYTES = 1 << 20

DbOption = Annotated[Path, typer.Option("--db", help="The store database (created if missing).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
ChainOption = Annotated[
    Optional[str], typer.Option("--chain", help="Chain id, recorded when the database is created.")
]
StoreIdOption = Annotated[
    Optional[str],
    typer.Option("--store-id", help="Store id, recorded when the database is created (default: file stem)."),
]
TimezoneOption = Annotated[
    Optional[str],
    typer.Option("--timezone", help="Store's IANA time zone, recorded at creation (default: UTC)."),
]

DOMAIN_ERRORS = (
    IngestError, IdentityKeyError, StoreDbError, QuarantineError, ScoringError, ModelFileError, StoreDataError, FootfallError,
    BrokerError, ContractError, ConfigError,
)


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn a domain error into `edge-agent: error: ...` on stderr and exit status 1."""
    try:
        yield
    except DOMAIN_ERRORS as exc:
        typer.echo(f"edge-agent: error: {exc}", err=True)
        raise typer.Exit(1) from None


def print_json(payload: object) -> None:
    typer.echo(json.dumps(payload, indent=2, sort_keys=False))


def _progress_bar(enabled: bool) -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=stderr,
        disable=not enabled,
        transient=False,
    )


BatchSizeOption = Annotated[
    int, typer.Option("--batch-size", min=1, help="Rows per all-or-nothing database transaction.")
]
KeyFileOption = Annotated[
    Optional[Path],
    typer.Option("--key-file", help="The box's identity key for hashing phones and e-mails "
                                    "(default: DB.identity-key beside the database, created on first use)."),
]


def _ingest(files: list[Path], db: Path, contract: Contract, as_json: bool, *, chain: str | None,
            store_id: str | None, timezone: str | None, batch_size: int, key_file: Path | None = None) -> None:
    """What `ingest`, `ingest-events` and `ingest-identities` share: check, ingest with a progress bar, report."""
    with one_line_errors():
        sources = [inspect_source(f, contract) for f in files]  # before the database is even created
        with open_store_db(db, chain=chain, store_id=store_id, timezone=timezone) as store:
            show = not as_json and any(s.size >= PROGRESS_MIN_BYTES for s in sources)
            with _progress_bar(show) as progress:
                tasks: dict[Path, object] = {}

                def advance(source: SourceFile, done: int) -> None:
                    if source.path not in tasks:
                        tasks[source.path] = progress.add_task(source.name, total=source.size)
                    progress.update(tasks[source.path], completed=done)  # type: ignore[arg-type]

                report = ingest_files(store, sources, key_file=key_file, batch_size=batch_size, on_progress=advance)
    if as_json:
        print_json(report.as_dict())
        return
    totals = report.totals
    table = Table(title=f"Ingested {len(report.files)} {contract.name} file(s) into {db}")
    for column in ("rows", "accepted", "duplicates", "quarantined"):
        table.add_column(column, justify="right")
    table.add_row(*(str(getattr(totals, c)) for c in ("rows", "accepted", "duplicates", "quarantined")))
    Console().print(table)
    for reason, count in sorted(totals.reasons.items()):
        typer.echo(f"  quarantined {count:>8}  {reason}")
    if totals.quarantined:
        typer.echo(f"See them with: edge-agent quarantine --db {db}")


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="POS exports: CSV or JSON Lines, plain or .gz.")],
    db: DbOption,
    as_json: JsonOption = False,
    chain: ChainOption = None,
    store_id: StoreIdOption = None,
    timezone: TimezoneOption = None,
    batch_size: BatchSizeOption = DEFAULT_BATCH_SIZE,
) -> None:
    """Ingest POS transaction files; bad rows are quarantined, never fatal.

    Example: edge-agent ingest --db store.db exports/2026-11-*.csv.gz
    """
    _ingest(files, db, POS, as_json, chain=chain, store_id=store_id, timezone=timezone, batch_size=batch_size)


@app.command("ingest-events")
def ingest_events(
    files: Annotated[list[Path], typer.Argument(help="Customer-events exports (retail.customer-events/1): "
                                                     "CSV or JSON Lines, plain or .gz.")],
    db: DbOption,
    as_json: JsonOption = False,
    key_file: KeyFileOption = None,
    chain: ChainOption = None,
    store_id: StoreIdOption = None,
    timezone: TimezoneOption = None,
    batch_size: BatchSizeOption = DEFAULT_BATCH_SIZE,
) -> None:
    """Ingest customer events (complaints, service contacts, returns, online visits, reviews, surveys...).

    Unknown kinds and bad rows are quarantined; phones and e-mails are kept as keyed hashes, notes as a category.

    Example: edge-agent ingest-events --db store.db exports/events-2026-11.csv.gz
    """
    _ingest(files, db, EVENTS, as_json, chain=chain, store_id=store_id, timezone=timezone, batch_size=batch_size,
            key_file=key_file)


@app.command("ingest-identities")
def ingest_identities(
    files: Annotated[list[Path], typer.Argument(help="Identity exports: customer_id with online_account, "
                                                     "phone and/or email; CSV or JSON Lines, plain or .gz.")],
    db: DbOption,
    as_json: JsonOption = False,
    key_file: KeyFileOption = None,
    chain: ChainOption = None,
    store_id: StoreIdOption = None,
    timezone: TimezoneOption = None,
    batch_size: BatchSizeOption = DEFAULT_BATCH_SIZE,
) -> None:
    """Link each loyalty customer to their online account, phone and e-mail, so every channel counts for them.

    Phones and e-mails are stored only as keyed hashes; an alias another customer holds is quarantined.

    Example: edge-agent ingest-identities --db store.db exports/crm-identities.csv
    """
    _ingest(files, db, IDENTITIES, as_json, chain=chain, store_id=store_id, timezone=timezone,
            batch_size=batch_size, key_file=key_file)


@app.command()
def quarantine(
    db: DbOption,
    as_json: JsonOption = False,
    source: Annotated[
        Optional[str], typer.Option("--source", help="Only rows from this file name.")
    ] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="At most this many rows.")] = None,
    export: Annotated[
        Optional[Path],
        typer.Option("--export", help="Write --source's rejected rows under its header to this file."),
    ] = None,
) -> None:
    """List rows that ingest rejected, with file, line, reason and the raw text.

    Example: edge-agent quarantine --db store.db --source pos-2026-11-20.csv --export fix.csv
    """
    with one_line_errors():
        if not db.exists():
            raise StoreDbError(f"store database {db} does not exist")
        with open_store_db(db, create=False) as store:
            if export is not None:
                if source is None:
                    raise QuarantineError("--export needs --source FILE")
                written = export_quarantine(store, source, export)
                if as_json:
                    print_json({"exported": written, "file": str(export)})
                else:
                    typer.echo(f"Wrote {written} row(s) to {export}; fix them and ingest that file.")
                return
            rows = list_quarantine(store, source=source, limit=limit)
    if as_json:
        print_json([row.as_dict() for row in rows])
        return
    if not rows:
        typer.echo("Nothing is quarantined.")
        return
    table = Table("file", "line", "reason", "detail", "raw")
    for row in rows:
        table.add_row(row.source, str(row.line), row.reason, row.detail, row.raw[:80])
    Console().print(table)


@app.command()
def score(
    db: DbOption,
    model: Annotated[Path, typer.Option("--model", help="A model directory: model.onnx + manifest.json.")],
    as_json: JsonOption = False,
    as_of: Annotated[
        Optional[str], typer.Option("--as-of", help="Score as at the end of this day (default: today).")
    ] = None,
    policy: Annotated[
        Optional[Path],
        typer.Option("--policy", help="TOML file with [risk] (levels, actions) and [alerts] (cooldown, cap, control group)."),
    ] = None,
) -> None:
    """Score the store's active customers and record alerts for those at or above the alert level.

    Example: edge-agent score --db store.db --model models/current --as-of 2026-11-22 --json
    """
    from .onnx_model import OnnxChurnModel  # onnxruntime only for the commands that score

    with one_line_errors():
        if not db.exists():
            raise StoreDbError(f"store database {db} does not exist")
        scoring_policy = load_scoring_policy(policy)
        churn_model = OnnxChurnModel(model)
        with open_store_db(db, create=False) as store:
            result = score_store(store, churn_model, as_of=parse_as_of(as_of), policy=scoring_policy)
    if as_json:
        print_json(result.as_dict())
        return
    levels = ", ".join(f"{level} {count}" for level, count in result.levels.items())
    typer.echo(f"Scored {result.scored} customers as of {result.as_of} with model {result.model_version}.")
    typer.echo(f"Early-warning levels of the customers still buying: {levels}; lapsed (win-back list): "
               f"{result.lapsed}.")
    typer.echo(f"New alerts: {result.alerts - result.winbacks} early warnings, {result.winbacks} win-backs; "
               f"{result.cooled} in cooldown; {result.overflow} over the budget or today's cap (summarised).")
    if result.quota_alarm:
        typer.echo(f"edge-agent: warning: the outbox is over its disk quota; {result.deferred} alerts wait "
                   "until the central side acknowledges what is queued", err=True)


@app.command()
def publish(
    db: DbOption,
    mqtt_url: Annotated[str, typer.Option("--mqtt", help="Broker URL: mqtt://host:port or mqtts://host:port.")],
    as_json: JsonOption = False,
    ca_file: Annotated[Optional[Path], typer.Option("--ca-file", help="CA of the broker's TLS certificate.")] = None,
    cert_file: Annotated[Optional[Path], typer.Option("--cert-file", help="This box's TLS client certificate.")] = None,
    key_file: Annotated[Optional[Path], typer.Option("--key-file", help="Its private key.")] = None,
    password_file: Annotated[Optional[Path], typer.Option("--password-file", help="The box's broker password.")] = None,
    client_id: Annotated[Optional[str], typer.Option("--client-id", help="Default: CHAIN.STORE.publisher.")] = None,
    wait: Annotated[float, typer.Option("--wait", min=0, help="Seconds to wait for the aggregator's acks.")] = 5.0,
    resend_after: Annotated[
        float, typer.Option("--resend-after", min=0, help="Resend what stays unacknowledged this many seconds.")
    ] = 120.0,
) -> None:
    """Send the outbox to the broker once, keep what the aggregator has not acknowledged, and exit.

    Example: edge-agent publish --db store.db --mqtt mqtts://broker.acme.example:8883 --ca-file ca.crt --json
    """
    with one_line_errors():
        with open_store_db(db, create=False) as store:
            broker = BrokerConfig(mqtt_url, ca_file, cert_file, key_file, password_file)
            settings = LinkSettings(broker, client_id or f"{store.chain}.{store.store_id}.publisher",
                                         resend_after=resend_after)
            result = publish_once(store, settings, wait_for_acks=wait)
    if as_json:
        print_json(result.as_dict())
    else:
        typer.echo(f"Published {result.published}, acknowledged {result.acked}, waiting for the aggregator: {result.remaining}.")
    if result.refused:
        typer.echo(f"edge-agent: error: the broker refused {len(result.refused)} message(s): {result.refused[0]}", err=True)
        raise typer.Exit(1)


@app.command()
def footfall(
    source: Annotated[str, typer.Option("--source", help="A video file, an RTSP/HTTP URL or a camera index.")],
    line: Annotated[Optional[str], typer.Option("--line", help="X1,Y1,X2,Y2 in source pixels; crossing to its right is an entry.")] = None,
    db: Annotated[Optional[Path], typer.Option("--db", help="Store database for the buckets (created if missing).")] = None,
    as_json: JsonOption = False,
    config: Annotated[Optional[Path], typer.Option("--config", help="Device profile TOML; its camera table is used.")] = None,
    overrides: Annotated[list[str], typer.Option("--set", help="Override one camera setting: KEY=VALUE (repeatable).")] = [],  # noqa: B006
    start: Annotated[Optional[str], typer.Option("--start", help="Store-local time of a video file's first frame (default: now).")] = None,
    duration: Annotated[Optional[float], typer.Option("--duration", min=0, help="Stop after this many seconds (live cameras).")] = None,
    events: Annotated[bool, typer.Option("--events", help="Also list every counted crossing: frame, t, direction, track.")] = False,
) -> None:
    """Count people crossing a line on a camera or video; only counts are kept, never frames.

    Example: edge-agent footfall --source rtsp://10.0.0.5/stream1 --line 0,240,640,240 --db store.db
    """
    with one_line_errors():
        result = count_footfall(source, line=line, config=config, overrides=overrides, db=db, start=start, duration=duration)
    if as_json:
        print_json(result.as_dict(events=events))
        return
    table = Table("bucket", "entries", "exits", "occupancy", "frames", title=f"Footfall from {source}")
    for bucket in result.as_dict()["buckets"]:  # type: ignore[union-attr]
        table.add_row(*(str(bucket[k]) for k in ("bucket_start", "entries", "exits", "occupancy", "frames")))
    Console().print(table)
    if events:
        for crossing in result.as_dict(events=True)["crossings"]:  # type: ignore[union-attr]
            typer.echo(f"frame {crossing['frame']} ({crossing['t']:.1f} s): {crossing['direction']}, track {crossing['track']}")
    typer.echo(f"Entries {result.entries}, exits {result.exits}, {result.frames} frames at {result.fps:.1f} fps.")


@app.command("ingest-footfall")
def ingest_footfall(
    files: Annotated[list[Path], typer.Argument(help="People-counter CSV exports: timestamp, entries, exits.")],
    db: DbOption,
    as_json: JsonOption = False,
    source: Annotated[str, typer.Option("--source", help="Name the counts are stored under (one per counter).")] = COUNTER_SOURCE,
    chain: ChainOption = None,
    store_id: StoreIdOption = None,
    timezone: TimezoneOption = None,
) -> None:
    """Import a door counter's export into the footfall buckets; re-importing adds nothing.

    Example: edge-agent ingest-footfall --db store.db exports/footfall-2026-11.csv
    """
    with one_line_errors():
        report = import_counter_exports(db, files, source=source, chain=chain, store_id=store_id, timezone=timezone)
    if as_json:
        print_json(report.as_dict())
        return
    totals = report.totals
    typer.echo(f"Read {totals.rows} rows: {totals.accepted} buckets stored, {totals.duplicates} unchanged, "
               f"{totals.quarantined} quarantined.")
    for reason, count in sorted(totals.reasons.items()):
        typer.echo(f"  quarantined {count:>8}  {reason}")


@app.command("check-config")
def check_config(config: Annotated[Path, typer.Argument(help="The store box's configuration (TOML).")],
                 as_json: JsonOption = False) -> None:
    """Validate a store box configuration; a bad key is named with the fix.

    Example: edge-agent check-config /etc/churn/edge-agent.toml
    """
    with one_line_errors():
        loaded = load_config(config)
    summary = {"store_id": loaded.store.store_id, "chain": loaded.store.chain, "db": str(loaded.store.db_path),
               "cameras": [c.name for c in loaded.cameras], "mqtt": str(BrokerConfig(loaded.mqtt.url).address) if loaded.mqtt else None,
               "federation": loaded.federation.enabled, "profile": str(loaded.profile) if loaded.profile else None}
    if as_json:
        print_json(summary)
    else:
        typer.echo(f"{config}: OK (store {summary['store_id']} of chain {summary['chain']}, "
                   f"{len(summary['cameras'])} camera(s), MQTT {summary['mqtt'] or 'off'}, federation "
                   f"{'on' if summary['federation'] else 'off'})")


@app.command()
def run(config: Annotated[Path, typer.Option("--config", help="The store box's configuration (TOML).")]) -> None:
    """Run the unattended store-box daemon until SIGTERM.

    Example: edge-agent run --config /etc/churn/edge-agent.toml
    """
    from .daemon.supervisor import DaemonError, run_daemon

    with one_line_errors():
        loaded = load_config(config)
    try:
        status = run_daemon(loaded)
    except DaemonError as exc:
        typer.echo(f"edge-agent: error: {exc}", err=True)
        raise typer.Exit(exc.status) from None
    raise typer.Exit(status)


def main() -> None:
    stop_on_interrupt_and_term()
    app(prog_name="edge-agent")


if __name__ == "__main__":
    sys.exit(main())
