"""Ids that become file names or broker accounts: a store id like `x/../../escaped` is refused, never followed."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli

HOSTILE = ["x/../../escaped", "../escaped", "..", ".hidden", "a b", "acme/+", "#", ""]


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
    for hostile in HOSTILE:
        refused("pki", "store", "--dir", str(pki), "--store-id", hostile, "--chain", "acme", "--broker-dir", str(broker))
    escape = HOSTILE[0]
    refused("pki", "store", "--dir", str(pki), "--store-id", "s1", "--chain", escape, "--broker-dir", str(broker))
    refused("pki", "server", "--dir", str(pki), "--name", escape, "--host", "localhost")
    refused("pki", "client", "--dir", str(pki), "--name", escape)
    refused("pki", "aggregator", "--broker-dir", str(broker), "--name", escape)
    refused("pki", "bridge", "--broker-dir", str(broker), "--chain", "acme", "--name", escape, "--dir", str(pki))
    assert files_under(tmp_path) == before, "nothing was written, inside the folder or out of it"
