"""`churn-server pki ca|server|store`: the chain's CA, server certificates and store credentials."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from models.contracts import ContractError, check_id

from .broker_accounts import (
    BrokerAccountError, add_aggregator, add_bridge, add_store, aggregator_username, bridge_username, init_services,
    store_username,
)
from .pki import PkiError, client_certificate, create_ca, server_certificate, service_certificate, supernode_key

pki_app = typer.Typer(help="Create the chain's CA, TLS certificates and store box credentials.", no_args_is_help=True)
DirOption = Annotated[Path, typer.Option("--dir", help="The PKI folder (holds ca.key and ca.crt).")]


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """A refused key, certificate, account or id: one line on stderr, exit status 1."""
    try:
        yield
    except (PkiError, BrokerAccountError, ContractError) as exc:
        typer.echo(f"churn-server: error: {exc}", err=True)
        raise typer.Exit(1) from None


@pki_app.command("ca")
def ca(folder: DirOption, organisation: Annotated[str, typer.Option("--organisation", help="Name in the CA.")] = "Retail chain") -> None:
    """Create the chain's certificate authority (keep ca.key offline or on the central server only).

    Example: churn-server pki ca --dir /etc/churn/pki --organisation "Acme Retail"
    """
    with _one_line_errors():
        issued = create_ca(folder, organisation)
    typer.echo(f"CA certificate for every box: {issued.certificate}")


@pki_app.command("server")
def server(folder: DirOption, name: Annotated[str, typer.Option("--name", help="File stem: superlink, broker...")],
           host: Annotated[list[str], typer.Option("--host", help="Name or IP the boxes connect to (repeatable).")]) -> None:
    """Issue a TLS server certificate (for the SuperLink or the MQTT broker).

    Example: churn-server pki server --dir /etc/churn/pki --name superlink --host fl.acme.example --host 10.0.0.5
    """
    with _one_line_errors():
        issued = server_certificate(folder, name, host)
    typer.echo(f"{issued.certificate} and {issued.key}")


@pki_app.command("store")
def store(
    folder: DirOption,
    store_id: Annotated[str, typer.Option("--store-id", help="The store box's id.")],
    chain: Annotated[Optional[str], typer.Option("--chain", help="The store's chain (with --broker-dir).")] = None,
    broker_dir: Annotated[
        Optional[Path], typer.Option("--broker-dir", help="The broker's passwd/acl folder: add the store's account.")
    ] = None,
) -> None:
    """Issue a store box's credentials: SuperNode key pair, MQTT client certificate and broker account.

    Example: churn-server pki store --dir /etc/churn/pki --store-id paris-01 --chain acme --broker-dir /etc/mosquitto/churn
    """
    with _one_line_errors():
        if broker_dir is not None and chain is None:
            raise PkiError("--broker-dir needs --chain")
        check_id(store_id, "store id")  # both ids before anything is written
        if chain is not None:
            check_id(chain, "chain")
        private, public = supernode_key(folder, store_id)
        issued = client_certificate(folder, store_id)
        secret = add_store(broker_dir, chain, store_id) if broker_dir is not None and chain else None
    typer.echo(f"SuperNode key: {private} (register {public} with: flwr supernode register {public})")
    typer.echo(f"MQTT client certificate: {issued.certificate} and {issued.key}")
    if secret is not None:
        typer.echo(f"MQTT user {store_username(chain, store_id)}; password in {secret} (reload the broker: kill -HUP)")  # type: ignore[arg-type]


@pki_app.command("broker")
def broker(broker_dir: Annotated[Path, typer.Option("--broker-dir", help="The broker's passwd/acl folder.")]) -> None:
    """Create the broker's service accounts (aggregator, release) and their ACL.

    Example: churn-server pki broker --broker-dir /etc/mosquitto/churn
    """
    with _one_line_errors():
        aggregator, release = init_services(broker_dir)
    typer.echo(f"Accounts aggregator ({aggregator}) and release ({release}) added to {broker_dir}.")


@pki_app.command("client")
def client(folder: DirOption, name: Annotated[str, typer.Option("--name", help="File stem and common name, e.g. release.")]) -> None:
    """Issue a TLS client certificate for a service that reaches the broker's TLS listener (which requires one).

    Example: churn-server pki client --dir /etc/churn/pki --name release
    """
    with _one_line_errors():
        issued = service_certificate(folder, name)
    typer.echo(f"{issued.certificate} and {issued.key}")


@pki_app.command("aggregator")
def aggregator(
    broker_dir: Annotated[Path, typer.Option("--broker-dir", help="The broker's passwd/acl folder.")],
    name: Annotated[str, typer.Option("--name", help="This aggregator's name, e.g. 2 or host-b.")],
) -> None:
    """Create one more aggregator's own broker account (the broker makes the account its client id).

    Example: churn-server pki aggregator --broker-dir /etc/mosquitto/churn --name 2
    """
    with _one_line_errors():
        secret = add_aggregator(broker_dir, name)
    typer.echo(f"MQTT user {aggregator_username(name)}; password in {secret} (reload the broker: kill -HUP)")


@pki_app.command("bridge")
def bridge(
    broker_dir: Annotated[Path, typer.Option("--broker-dir", help="The central broker's passwd/acl folder.")],
    chain: Annotated[str, typer.Option("--chain", help="The chain whose stores the regional broker serves.")],
    name: Annotated[str, typer.Option("--name", help="The regional broker's name, e.g. eu-west.")],
    folder: Annotated[Optional[Path], typer.Option("--dir", help="The PKI folder: also issue the bridge's TLS client certificate.")] = None,
) -> None:
    """Create the central broker's account for a regional broker's bridge (see firmware_configs/mosquitto/bridge.conf).

    Example: churn-server pki bridge --broker-dir /etc/mosquitto/churn --chain acme --name eu-west --dir /etc/churn/pki
    """
    with _one_line_errors():
        secret = add_bridge(broker_dir, chain, name)
        issued = service_certificate(folder, f"bridge-{name}") if folder is not None else None
    typer.echo(f"MQTT user {bridge_username(name)}; password in {secret} (reload the broker: kill -HUP; "
               f"the regional broker's bridge.conf needs it as remote_password)")
    if issued is not None:
        typer.echo(f"Bridge TLS client certificate: {issued.certificate} and {issued.key} "
                   "(bridge_certfile and bridge_keyfile in bridge.conf)")
