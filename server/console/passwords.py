"""Password hashes: scrypt with a per-user salt, compared in constant time.

The stored form is `scrypt$N$r$p$salt$hash` (salt and hash base64), so the
cost can be raised later without invalidating existing accounts: a hash made
with older parameters still verifies, and `needs_rehash` says when to replace
it at the next successful login. The default cost (N=2^14, r=8, p=5: 16 MiB,
about 0.3 s on a small server) is one of OWASP's recommended scrypt settings.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConsoleError

MIN_LENGTH = 12
MAX_LENGTH = 1024  # scrypt takes any length; a megabyte "password" is a way to burn CPU


@dataclass(frozen=True)
class ScryptCost:
    n: int = 2**14
    r: int = 8
    p: int = 5

    @property
    def maxmem(self) -> int:
        return 128 * self.r * self.n * 2 + 1024 * 1024


DEFAULT_COST = ScryptCost()


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password has at most {MAX_LENGTH} characters"
    return None


def password_from_file(path: Path) -> str:
    """The first line of a file (its line ending removed): the way to give a password without a command line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConsoleError(f"cannot read password file {path}: {exc.strerror or exc}") from None
    if not lines or not lines[0]:
        raise ConsoleError(f"password file {path} is empty")
    return lines[0]


def _derive(password: str, salt: bytes, cost: ScryptCost) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=cost.n, r=cost.r, p=cost.p, dklen=32,
                          maxmem=cost.maxmem)


def hash_password(password: str, cost: ScryptCost | None = None) -> str:
    cost = cost or DEFAULT_COST
    salt = os.urandom(16)
    digest = _derive(password, salt, cost)
    encode = base64.b64encode
    return f"scrypt${cost.n}${cost.r}${cost.p}${encode(salt).decode()}${encode(digest).decode()}"


def _parse(encoded: str) -> tuple[ScryptCost, bytes, bytes] | None:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        cost = ScryptCost(int(parts[1]), int(parts[2]), int(parts[3]))
        return cost, base64.b64decode(parts[4]), base64.b64decode(parts[5])
    except ValueError:
        return None


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches; a malformed hash never matches."""
    parsed = _parse(encoded)
    if parsed is None or len(password) > MAX_LENGTH:
        return False
    cost, salt, expected = parsed
    return hmac.compare_digest(_derive(password, salt, cost), expected)


def needs_rehash(encoded: str, cost: ScryptCost | None = None) -> bool:
    parsed = _parse(encoded)
    return parsed is None or parsed[0] != (cost or DEFAULT_COST)


@functools.cache
def _dummy_hash(cost: ScryptCost) -> str:
    return hash_password("no such user, no such password", cost)


def dummy_hash() -> str:
    """Checked against when the username is unknown, so that a failed login takes as long either way."""
    return _dummy_hash(DEFAULT_COST)
