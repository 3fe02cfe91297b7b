"""Signed model releases: what the central side publishes and a store box verifies.

A release is one JSON document (published retained on
`retail/v1/{chain}/model/current`):

    {"schema": "retail.model-release/1", "chain": ..., "version": ..., "sha256": ...,
     "manifest": {...}, "signature": base64(Ed25519(canonical signed part)),
     "onnx_b64": base64(model.onnx)}

The signature covers the schema, chain, version, manifest and the graph's
sha256 (so the graph too); the store checks it against the public key in its
own configuration, then checks the graph's bytes against the hash.
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

from .export import MANIFEST_FILE, MODEL_FILE
from .schema import SCHEMA_VERSION

RELEASE_SCHEMA = "retail.model-release/1"


class ReleaseError(Exception):
    """A release that must not be used: unsigned, tampered, for another chain or schema."""


@dataclass(frozen=True)
class VerifiedRelease:
    chain: str
    version: str
    manifest: dict[str, Any]
    onnx: bytes
    document: dict[str, Any]  # as received, kept beside the model for audit


def _signed_part(document: dict[str, Any]) -> bytes:
    part = {k: document[k] for k in ("schema", "chain", "version", "sha256", "manifest")}
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


def build_release(model_dir: Path, chain: str, key: Ed25519PrivateKey) -> dict[str, Any]:
    """Sign a model directory (model.onnx + manifest.json) into a release document."""
    manifest = json.loads((model_dir / MANIFEST_FILE).read_text())
    onnx = (model_dir / manifest.get("model_file", MODEL_FILE)).read_bytes()
    digest = hashlib.sha256(onnx).hexdigest()
    if digest != manifest.get("sha256"):
        raise ReleaseError(f"{model_dir}: model.onnx does not match its manifest")
    document = {"schema": RELEASE_SCHEMA, "chain": chain, "version": manifest["version"], "sha256": digest,
                "manifest": manifest}
    document["signature"] = base64.b64encode(key.sign(_signed_part(document))).decode()
    document["onnx_b64"] = base64.b64encode(onnx).decode()
    return document


def verify_release(raw: bytes | dict[str, Any], key: Ed25519PublicKey, chain: str | None = None) -> VerifiedRelease:
    """Check schema, signature, hash, chain and feature schema; return what to install."""
    try:
        document = json.loads(raw) if isinstance(raw, (bytes, str)) else dict(raw)
    except ValueError as exc:
        raise ReleaseError(f"release is not JSON ({exc})") from exc
    if not isinstance(document, dict) or document.get("schema") != RELEASE_SCHEMA:
        raise ReleaseError("not a model release document")
    missing = [k for k in ("chain", "version", "sha256", "manifest", "signature", "onnx_b64") if k not in document]
    if missing:
        raise ReleaseError(f"release lacks {', '.join(missing)}")
    try:
        key.verify(base64.b64decode(document["signature"]), _signed_part(document))
    except (InvalidSignature, ValueError, TypeError):
        raise ReleaseError(f"release {document.get('version')!r}: bad signature (unsigned or not from our server)") from None
    onnx = base64.b64decode(document["onnx_b64"])
    if hashlib.sha256(onnx).hexdigest() != document["sha256"] or document["manifest"].get("sha256") != document["sha256"]:
        raise ReleaseError(f"release {document['version']!r}: model bytes do not match the signed hash")
    if chain is not None and document["chain"] != chain:
        raise ReleaseError(f"release {document['version']!r} is for chain {document['chain']!r}, not {chain!r}")
    if document["manifest"].get("feature_schema_version") != SCHEMA_VERSION:
        raise ReleaseError(f"release {document['version']!r} needs features {document['manifest'].get('feature_schema_version')!r}")
    return VerifiedRelease(document["chain"], document["version"], document["manifest"], onnx, document)
