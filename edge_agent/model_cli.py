"""`edge-agent model fetch|activate|rollback|status`: the store box's model registry from the shell."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from models.contracts import ContractError, model_topic
from models.release import ReleaseError, load_public_key, verify_release
from transport.mqtt import BrokerConfig, BrokerError, read_retained

from .model_registry import ModelRegistry, ModelRegistryError, install_and_activate

model_app = typer.Typer(help="Install, check, activate and roll back released churn models.", no_args_is_help=True)

ModelsDirOption = Annotated[Path, typer.Option("--models-dir", help="The box's models folder.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
MODEL_ERRORS = (ModelRegistryError, ReleaseError, BrokerError, ContractError)


def _fail(exc: Exception) -> None:
    typer.echo(f"edge-agent: error: {exc}", err=True)
    raise typer.Exit(1)


def _print(payload: object, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(payload, indent=2, default=str) if as_json else text)


@model_app.command("fetch")
def fetch(
    models_dir: ModelsDirOption,
    db: Annotated[Path, typer.Option("--db", help="The store database (for the canary check).")],
    public_key: Annotated[Path, typer.Option("--public-key", help="The central server's release signing key (PEM).")],
    chain: Annotated[str, typer.Option("--chain", help="Only accept releases for this chain.")],
    mqtt_url: Annotated[Optional[str], typer.Option("--mqtt", help="Broker URL: read the retained release.")] = None,
    from_file: Annotated[Optional[Path], typer.Option("--from-file", help="A release document on disk instead.")] = None,
    ca_file: Annotated[Optional[Path], typer.Option("--ca-file", help="CA of the broker's TLS certificate.")] = None,
    cert_file: Annotated[Optional[Path], typer.Option("--cert-file", help="This box's TLS client certificate.")] = None,
    key_file: Annotated[Optional[Path], typer.Option("--key-file", help="Its private key.")] = None,
    password_file: Annotated[Optional[Path], typer.Option("--password-file", help="This box's broker password.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Fetch the current release, verify signature and hash, canary it on this store's data, activate if not worse.

    Example: edge-agent model fetch --mqtt mqtts://broker:8883 --ca-file ca.crt --chain acme --public-key release.pub --models-dir /var/lib/churn/models --db store.db
    """
    try:
        if (mqtt_url is None) == (from_file is None):
            raise ModelRegistryError("give exactly one of --mqtt or --from-file")
        if from_file is not None:
            raw = from_file.read_bytes()
        else:
            broker = BrokerConfig(mqtt_url, ca_file, cert_file, key_file, password_file)  # type: ignore[arg-type]
            raw = read_retained(broker, model_topic(chain), client_id=f"model-fetch-{chain}")
            if raw is None:
                raise ModelRegistryError(f"no release is published on {model_topic(chain)}")
        release = verify_release(raw, load_public_key(public_key), chain)
        verdict = install_and_activate(ModelRegistry(models_dir), release, db)
    except MODEL_ERRORS as exc:
        _fail(exc)
        return
    result = {"version": release.version, **asdict(verdict)}
    _print(result, as_json, f"{release.version}: {'activated' if verdict.accepted else 'kept the active model'} ({verdict.reason})")
    if not verdict.accepted:
        raise typer.Exit(2)


@model_app.command("activate")
def activate(version: Annotated[str, typer.Argument(help="An installed version.")], models_dir: ModelsDirOption,
             as_json: JsonOption = False) -> None:
    """Make an installed version the active one (the active one becomes the previous).

    Example: edge-agent model activate fed-2026-11-22-r5-1a2b3c4d --models-dir /var/lib/churn/models
    """
    try:
        registry = ModelRegistry(models_dir)
        registry.activate(version)
    except MODEL_ERRORS as exc:
        _fail(exc)
        return
    _print(registry.status(), as_json, f"active: {registry.current} (previous: {registry.previous})")


@model_app.command("rollback")
def rollback(models_dir: ModelsDirOption, as_json: JsonOption = False) -> None:
    """Go back to the previous model.

    Example: edge-agent model rollback --models-dir /var/lib/churn/models
    """
    try:
        registry = ModelRegistry(models_dir)
        registry.rollback()
    except MODEL_ERRORS as exc:
        _fail(exc)
        return
    _print(registry.status(), as_json, f"active: {registry.current} (previous: {registry.previous})")


@model_app.command("status")
def status(models_dir: ModelsDirOption, as_json: JsonOption = False) -> None:
    """Show the active, previous and installed versions and the latest events.

    Example: edge-agent model status --models-dir /var/lib/churn/models --json
    """
    registry = ModelRegistry(models_dir)
    info = registry.status()
    lines = [f"active: {info['current']}", f"previous: {info['previous']}", f"installed: {', '.join(info['installed']) or '-'}"]
    lines += [f"  {e['at']} {e['event']} {e.get('version', '')} {e.get('reason', '')}".rstrip() for e in info["history"]]
    _print(info, as_json, "\n".join(lines))
