"""Phone numbers and e-mail addresses as keyed hashes: the box links them, and never stores them.

A plain hash of a phone number is no protection: there are few enough phone
numbers to hash them all. So each box has its own secret key (a random 256-bit
key in a 0600 file beside the store database, created on first use) and stores
HMAC-SHA256(key, "phone:" + normalised number), cut to 128 bits, as
`phone:<32 hex digits>` (and `email:...` likewise). The database alone, copied
off the box, says nothing about anyone's number; with the key, the box can
still tell that two files name the same number. Losing the key only means the
identity files have to be ingested again (docs/ingest.md).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
from pathlib import Path

from ..store_db import StoreDatabase

KEY_BYTES = 32
REF_HEX_DIGITS = 32  # 128 bits of the HMAC: collisions are out of reach for any store's customers
KEY_FILE_SUFFIX = ".identity-key"
_SEPARATORS = re.compile(r"[\s().\-/]+")
_HASHED = re.compile(r"(phone|email):[0-9a-f]{%d}" % REF_HEX_DIGITS)


class IdentityKeyError(Exception):
    """The box's identity key cannot be used; the message is the one-line reason."""


def normalise_phone(text: str) -> str | None:
    """'+33 6 12 34 56 78', '0033 612-345-678' → '+33612345678'; None when it is not a phone number.

    National numbers (no + or 00) keep their own digits: exports should use one form, ideally E.164."""
    compact = _SEPARATORS.sub("", text.strip())
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    digits = compact[1:] if compact.startswith("+") else compact
    if not (digits.isascii() and digits.isdigit() and 6 <= len(digits) <= 15):
        return None
    return compact


def normalise_email(text: str) -> str | None:
    """Trimmed and lower-cased; None when it is not an e-mail address."""
    address = text.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain.strip(".") or len(address) > 254:
        return None
    if any(c.isspace() for c in address) or domain.startswith(".") or domain.endswith("."):
        return None
    return address


class IdentityKey:
    """The box's secret for hashing contact details; `ref` is what the database holds in their place."""

    def __init__(self, secret: bytes):
        if len(secret) != KEY_BYTES:
            raise IdentityKeyError(f"an identity key has {KEY_BYTES} bytes, not {len(secret)}")
        self._secret = secret

    def _ref(self, kind: str, normalised: str) -> str:
        mac = hmac.new(self._secret, f"{kind}:{normalised}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}:{mac[:REF_HEX_DIGITS]}"

    def phone_ref(self, text: str) -> str | None:
        """The stored form of a phone number; None when it is not one. A stored form passes unchanged, so a
        quarantined row exported for fixing can be ingested again."""
        if _HASHED.fullmatch(text):
            return text if text.startswith("phone:") else None
        number = normalise_phone(text)
        return None if number is None else self._ref("phone", number)

    def email_ref(self, text: str) -> str | None:
        """The stored form of an e-mail address; None when it is not one."""
        if _HASHED.fullmatch(text):
            return text if text.startswith("email:") else None
        address = normalise_email(text)
        return None if address is None else self._ref("email", address)


def key_path_for(db_path: Path) -> Path:
    """Where a store database's key lives by default: beside it (`store.db` → `store.db.identity-key`)."""
    return db_path.with_name(db_path.name + KEY_FILE_SUFFIX)


def _create(path: Path) -> None:
    """Write a new random key, readable by this user only; a key another process wrote first wins."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(KEY_BYTES) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def load_identity_key(path: Path, *, create: bool = True) -> IdentityKey:
    """Read the key file (creating it when missing and `create`); refuse one other users can read."""
    if not path.exists() and not path.is_symlink():
        if not create:
            raise IdentityKeyError(f"identity key {path} does not exist")
        try:
            _create(path)
        except OSError as exc:
            raise IdentityKeyError(f"cannot create identity key {path}: {exc.strerror}") from None
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise IdentityKeyError(f"identity key {path} is not a regular file")
        if info.st_mode & 0o077:
            raise IdentityKeyError(f"identity key {path} is open to other users (mode {stat.S_IMODE(info.st_mode):04o});"
                                   f" chmod 600 it")
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise IdentityKeyError(f"cannot read identity key {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) != KEY_BYTES:
        raise IdentityKeyError(f"identity key {path} does not hold {KEY_BYTES * 2} hex digits")
    return IdentityKey(secret)


def store_identity_key(store: StoreDatabase, key_file: Path | None = None) -> IdentityKey:
    """The key for a store database: `key_file` if given, else the file beside the database."""
    if key_file is None:
        if store.path is None:
            raise IdentityKeyError("an in-memory store database has no key file beside it; give one")
        key_file = key_path_for(store.path)
    return load_identity_key(key_file)
