"""Ids that become file names or broker accounts: a store id like `x/../../escaped` is refused, never followed."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.contracts import ContractError, check_id
from server.broker_accounts import BrokerAccountError, add_aggregator, add_bridge, add_store
from server.pki import PkiError, client_certificate, server_certificate, service_certificate, supernode_key
from tests.conftest import run_cli

HOSTILE = ["x/../../escaped", "../escaped", "..", ".hidden", "a b", "acme/+", "#", "", "a" * 201, "é"]


def files_under(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


def refused(*command: str) -> None:
    result = run_cli("churn-server", *command)
    assert result.returncode == 1, (command, result.stdout, result.stderr)
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("churn-server: error: ") and "letters, digits" in line, line


def test_pki_commands_refuse_ids_that_would_leave_their_folder(tmp_path: Path) -> None:
    pki, broker = tmp_path / "deep" / "er" / "pki", tmp_path / "deep" / "er" / "broker"
    run_cli("churn-server", "pki", "ca", "--dir", str(pki), check=True)
    before = files_under(tmp_path)
    escape = HOSTILE[0]
    refused("pki", "store", "--dir", str(pki), "--store-id", escape, "--chain", "acme", "--broker-dir", str(broker))
    refused("pki", "store", "--dir", str(pki), "--store-id", "s1", "--chain", escape, "--broker-dir", str(broker))
    refused("pki", "server", "--dir", str(pki), "--name", escape, "--host", "localhost")
    refused("pki", "client", "--dir", str(pki), "--name", escape)
    refused("pki", "aggregator", "--broker-dir", str(broker), "--name", escape)
    refused("pki", "bridge", "--broker-dir", str(broker), "--chain", "acme", "--name", escape, "--dir", str(pki))
    for hostile in HOSTILE:  # what the commands call, with every kind of bad id
        for make in (lambda: supernode_key(pki, hostile), lambda: client_certificate(pki, hostile),
                     lambda: server_certificate(pki, hostile, ["localhost"]), lambda: service_certificate(pki, hostile),
                     lambda: add_store(broker, "acme", hostile), lambda: add_store(broker, hostile, "s1"),
                     lambda: add_aggregator(broker, hostile), lambda: add_bridge(broker, "acme", hostile)):
            with pytest.raises((PkiError, BrokerAccountError, ContractError)):
                make()
    assert files_under(tmp_path) == before, "nothing was written, inside the folder or out of it"
    assert check_id("paris-01.b_2", "store id") == "paris-01.b_2"
