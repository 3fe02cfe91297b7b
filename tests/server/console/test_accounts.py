"""Operator accounts: scrypt hashes, the create-admin and create-user commands, and what each role may do."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from server.central import open_central_db
from server.console import passwords
from server.console.accounts import create_account, list_accounts, parse_store_key
from server.console.sessions import LoginLimits, LoginThrottled, authenticate, open_session, resolve_session
from server.errors import ConsoleError
from tests.conftest import VENV_BIN, run_cli

from .chain import PASSWORD


def test_a_hash_names_its_scrypt_cost_and_a_fresh_salt_and_verifies_only_the_right_password() -> None:
    first, second = passwords.hash_password(PASSWORD), passwords.hash_password(PASSWORD)
    scheme, n, r, p, salt, digest = first.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**14, 8, 5)  # OWASP's N=2^14, r=8, p=5: 16 MiB
    assert first != second and salt != second.split("$")[4]
    assert passwords.verify_password(PASSWORD, first)
    assert not passwords.verify_password(PASSWORD + " ", first)
    assert not passwords.verify_password(PASSWORD, "md5$abc") and not passwords.verify_password(PASSWORD, "")


def test_an_unknown_user_costs_a_login_as_much_as_a_wrong_password(tmp_path: Path) -> None:
    target = str(tmp_path / "central.db")
    with open_central_db(target) as db:
        create_account(db, "ada", PASSWORD, "admin")
        timings = {}
        for username in ("ada", "nobody"):
            started = time.perf_counter()
            assert authenticate(db, username, "wrong password!!", "10.0.0.1") is None
            timings[username] = time.perf_counter() - started
    assert timings["nobody"] > 0.5 * timings["ada"] > 0.05  # both run the full scrypt


def test_failures_from_one_address_make_that_address_wait_longer_and_longer_not_the_account_elsewhere(
        central: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from server.console import sessions

    clock = [datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)]
    monkeypatch.setattr(sessions, "now_utc", lambda: clock[0])
    limits = LoginLimits(free_failures=3, first_wait_seconds=1.0, max_wait_seconds=60, per_client=100)
    with open_central_db(central) as db:
        for _ in range(3):
            assert authenticate(db, "sam", "not the password", "10.0.0.1", limits) is None
        for wait in (1, 2, 4):  # each further failure doubles the wait
            with pytest.raises(LoginThrottled) as refused:
                authenticate(db, "sam", "not the password", "10.0.0.1", limits)
            assert refused.value.retry_after == wait
            clock[0] += timedelta(seconds=wait)  # the guesser waits, then tries again, and fails again
            assert authenticate(db, "sam", "not the password", "10.0.0.1", limits) is None
        assert authenticate(db, "sam", PASSWORD, "10.0.0.2", limits) is not None, "sam's own address: no wait"
        with pytest.raises(LoginThrottled):
            authenticate(db, "sam", PASSWORD, "10.0.0.1", limits)  # the guesser's address still waits
        assert authenticate(db, "vera", PASSWORD, "10.0.0.1", limits) is not None  # other accounts are not affected


def test_account_fields_are_checked(central: str) -> None:
    with open_central_db(central) as db:
        for args, message in [
            (("bad name", PASSWORD, "viewer"), "username 'bad name'"),
            (("x1", PASSWORD, "owner"), "role 'owner' must be one of viewer, staff, admin"),
            (("x2", PASSWORD, "staff"), "a staff account needs at least one store"),
            (("x3", "short", "viewer"), "at least 12 characters"),
            (("ada", PASSWORD, "admin"), "user 'ada' exists already"),
        ]:
            with pytest.raises(ConsoleError, match=message):
                create_account(db, *args)
        with pytest.raises(ConsoleError, match="only staff accounts are limited"):
            create_account(db, "x4", PASSWORD, "viewer", [("acme", "s1")])
    with pytest.raises(ConsoleError, match="CHAIN/STORE_ID"):
        parse_store_key("s1")


def test_create_admin_reads_the_password_from_a_file_and_the_account_can_log_in(tmp_path: Path) -> None:
    target, secret = str(tmp_path / "central.db"), tmp_path / "ada.password"
    secret.write_text(PASSWORD + "\n")
    result = run_cli("churn-server", "create-admin", "--db", target, "--username", "ada",
                     "--password-file", str(secret), check=True)
    assert result.stdout.strip() == "Admin ada created."
    with open_central_db(target) as db:
        (ada,) = list_accounts(db)
        assert (ada.username, ada.role, ada.stores) == ("ada", "admin", frozenset())
        assert authenticate(db, "ada", PASSWORD, "127.0.0.1") is not None


def test_create_admin_prompts_twice_when_no_file_is_given_and_takes_no_password_argument(tmp_path: Path) -> None:
    target = str(tmp_path / "central.db")
    prompted = subprocess.run([str(VENV_BIN / "churn-server"), "create-admin", "--db", target, "--username", "ada"],
                              input=f"{PASSWORD}\n{PASSWORD}\n", capture_output=True, text=True, timeout=60)
    assert prompted.returncode == 0, prompted.stderr
    assert "Password" in prompted.stderr and "Repeat" in prompted.stderr and PASSWORD not in prompted.stderr
    refused = run_cli("churn-server", "create-admin", "--db", target, "--username", "bob", "--password", PASSWORD,
                      env={"COLUMNS": "200"})
    assert refused.returncode == 2 and "No such option '--password'" in refused.stderr


def test_create_user_gives_staff_their_stores_and_replace_resets_an_account(central: str, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("another long password\n")
    made = run_cli("churn-server", "create-user", "--db", central, "--username", "paris", "--role", "staff",
                   "--store", "acme/s1", "--store", "acme/s2", "--password-file", str(secret), check=True)
    assert made.stdout.strip() == "User paris (staff: acme/s1, acme/s2) created."
    with open_central_db(central) as db:
        sam_before = authenticate(db, "sam", PASSWORD, "x")
        assert sam_before is not None
        session = open_session(db, sam_before, "x", timedelta(hours=1))
        accounts = {a.username: a for a in list_accounts(db)}
    assert accounts["paris"].stores == {("acme", "s1"), ("acme", "s2")}
    again = run_cli("churn-server", "create-user", "--db", central, "--username", "sam", "--role", "viewer",
                    "--password-file", str(secret))
    assert again.returncode == 1 and again.stderr.strip() == "churn-server: error: user 'sam' exists already"
    run_cli("churn-server", "create-user", "--db", central, "--username", "sam", "--role", "viewer",
            "--password-file", str(secret), "--replace", check=True)
    with open_central_db(central) as db:
        assert resolve_session(db, session.token) is None  # a reset ends the account's sessions
        sam = authenticate(db, "sam", "another long password", "x")
    assert sam is not None and (sam.role, sam.stores) == ("viewer", frozenset())


@pytest.mark.parametrize(("args", "message"), [
    (["--role", "staff", "--store", "paris-01"], "store 'paris-01' must be written CHAIN/STORE_ID, e.g. acme/paris-01"),
    (["--role", "viewer", "--password-file", "{tmp}/missing"], "cannot read password file {tmp}/missing"),
])
def test_create_user_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = run_cli("churn-server", "create-user", "--db", str(tmp_path / "c.db"), "--username", "u", *args)
    assert result.returncode == 1
    assert result.stderr.strip() == "churn-server: error: " + message.replace("{tmp}", str(tmp_path)) + \
        (": No such file or directory" if "missing" in message else "")
