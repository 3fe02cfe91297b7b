"""Signed model releases: what the central side publishes and a store box verifies.

A release is one JSON document (published retained on
`retail/v1/{chain}/model/current`):

    {"schema": "retail.model-release/1", "chain": ..., "version": ..., "sha256": ...,
     "manifest": {...}, "signature": base64(Ed25519(canonical signed part)),
     "onnx_b64": base64(model.onnx)}

The signature covers the schema, chain, version, manifest and the graph's
sha256 (so the graph too), and `rollback` when an operator deliberately
publishes an older model; the store checks it against the public key in its
own configuration, then checks the graph's bytes against the hash. Whatever
the bytes, verification ends in a VerifiedRelease or a ReleaseError with a
reason: never in an exception the release worker did not expect.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .contracts import ContractError, check_id
from .export import MANIFEST_FILE, MODEL_FILE
from .safe_json import JsonRefused, loads_bounded
from .schema import SCHEMA_VERSION

RELEASE_SCHEMA = "retail.model-release/1"
MAX_RELEASE_BYTES = 16 * 1024 * 1024
SIGNED = ("schema", "chain", "version", "sha256", "manifest")


class ReleaseError(Exception):
    """A release that must not be used: unsigned, tampered, for another chain or schema."""


@dataclass(frozen=True)
class VerifiedRelease:
    chain: str
    version: str
    manifest: dict[str, Any]
    onnx: bytes
    document: dict[str, Any]  # as received, kept beside the model for audit

    @property
    def rollback(self) -> bool:
        """Signed by an operator as a deliberate return to an older model."""
        return self.document.get("rollback") is True


def _signed_part(document: dict[str, Any]) -> bytes:
    part = {k: document[k] for k in SIGNED}
    if "rollback" in document:  # signed only when present, so releases made before it verify as they did
        part["rollback"] = document["rollback"]
    return json.dumps(part, sort_keys=True, separators=(",", ":")).encode()


def generate_signing_key(private_path: Path) -> Path:
    """Write a new Ed25519 private key (mode 0600) and its public key beside it (.pub)."""
    if private_path.exists():
        raise ReleaseError(f"{private_path} exists; refusing to overwrite a signing key")
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    public_path = private_path.with_name(private_path.name + ".pub")
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    return public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"{path}: not a readable private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ReleaseError(f"{path}: not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"{path}: not a readable public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ReleaseError(f"{path}: not an Ed25519 public key")
    return key


def build_release(model_dir: Path, chain: str, key: Ed25519PrivateKey, *, rollback: bool = False) -> dict[str, Any]:
    """Sign a model directory (model.onnx + manifest.json) into a release document; `rollback` lets boxes
    activate it although it is older than the model they run."""
    manifest = json.loads((model_dir / MANIFEST_FILE).read_text())
    onnx = (model_dir / manifest.get("model_file", MODEL_FILE)).read_bytes()
    digest = hashlib.sha256(onnx).hexdigest()
    if digest != manifest.get("sha256"):
        raise ReleaseError(f"{model_dir}: model.onnx does not match its manifest")
    document: dict[str, Any] = {"schema": RELEASE_SCHEMA, "chain": chain, "version": manifest["version"],
                                "sha256": digest, "manifest": manifest}
    if rollback:
        document["rollback"] = True
    document["signature"] = base64.b64encode(key.sign(_signed_part(document))).decode()
    document["onnx_b64"] = base64.b64encode(onnx).decode()
    return document


def _document(raw: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """The release's fields, each of the type it must have, or ReleaseError."""
    try:
        document = loads_bounded(raw, MAX_RELEASE_BYTES) if isinstance(raw, (bytes, str)) else dict(raw)
    except JsonRefused as exc:
        raise ReleaseError(f"release is not acceptable JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("schema") != RELEASE_SCHEMA:
        raise ReleaseError("not a model release document")
    missing = [k for k in ("chain", "version", "sha256", "manifest", "signature", "onnx_b64") if k not in document]
    if missing:
        raise ReleaseError(f"release lacks {', '.join(missing)}")
    kinds = {"chain": str, "version": str, "sha256": str, "manifest": dict, "signature": str, "onnx_b64": str}
    wrong = [k for k, kind in kinds.items() if not isinstance(document[k], kind)]
    if wrong or ("rollback" in document and not isinstance(document["rollback"], bool)):
        raise ReleaseError(f"release field {(wrong or ['rollback'])[0]} has the wrong type")
    try:
        check_id(document["version"], "release version")  # it becomes a folder name on the box
    except ContractError as exc:
        raise ReleaseError(str(exc)) from None
    return document


def verify_release(raw: bytes | dict[str, Any], key: Ed25519PublicKey, chain: str | None = None) -> VerifiedRelease:
    """Check schema, signature, hash, chain and feature schema; return what to install."""
    document = _document(raw)
    try:
        key.verify(base64.b64decode(document["signature"], validate=True), _signed_part(document))
    except (InvalidSignature, ValueError, TypeError):
        raise ReleaseError(f"release {document['version']!r}: bad signature (unsigned or not from our server)") from None
    try:
        onnx = base64.b64decode(document["onnx_b64"], validate=True)
    except ValueError:
        raise ReleaseError(f"release {document['version']!r}: the graph is not valid base64") from None
    if hashlib.sha256(onnx).hexdigest() != document["sha256"] or document["manifest"].get("sha256") != document["sha256"]:
        raise ReleaseError(f"release {document['version']!r}: model bytes do not match the signed hash")
    if document["manifest"].get("version") != document["version"]:
        raise ReleaseError(f"release {document['version']!r}: its manifest names another version")
    if chain is not None and document["chain"] != chain:
        raise ReleaseError(f"release {document['version']!r} is for chain {document['chain']!r}, not {chain!r}")
    if document["manifest"].get("feature_schema_version") != SCHEMA_VERSION:
        raise ReleaseError(f"release {document['version']!r} needs features {document['manifest'].get('feature_schema_version')!r}")
    return VerifiedRelease(document["chain"], document["version"], document["manifest"], onnx, document)
