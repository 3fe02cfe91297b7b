"""Keys and certificates for a chain: a private CA, TLS certificates, and SuperNode keys.

- `ca`: the chain's own certificate authority (kept on the central server);
- `server_certificate`: TLS for the SuperLink and the MQTT broker, with the
  host names and addresses the store boxes use to reach them;
- `client_certificate`: a store box's TLS client certificate for the broker;
- `supernode_key`: the EC key pair a store's SuperNode authenticates with
  (OpenSSH format, as Flower expects); its public half is registered on the
  SuperLink with `flwr supernode register`.

Private keys are written with mode 0600 and never overwritten. Every name
that becomes a file name (a store id, a server or client name) must be a safe
id (models.contracts.check_id): `x/../../escaped` is refused, not written
outside the folder.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from models.contracts import ContractError, check_id

VALID_DAYS = 825


class PkiError(Exception):
    """A key or certificate that cannot be created as asked."""


@dataclass(frozen=True)
class Issued:
    key: Path
    certificate: Path


def _safe(name: str, what: str) -> str:
    try:
        return check_id(name, what)
    except ContractError as exc:
        raise PkiError(str(exc)) from None


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey, encoding: serialization.Encoding,
                   form: serialization.PrivateFormat) -> None:
    if path.exists():
        raise PkiError(f"{path} exists; refusing to overwrite a private key")
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key.private_bytes(encoding, form, serialization.NoEncryption()))


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _load_ca(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    try:
        key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), password=None)
        certificate = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
    except OSError as exc:
        raise PkiError(f"no CA in {folder} (create it with: churn-server pki ca --dir {folder})") from exc
    return key, certificate  # type: ignore[return-value]


def create_ca(folder: Path, organisation: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    name = _name(f"{organisation} churn CA", organisation)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS * 4))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_private(folder / "ca.key", key, serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8)
    (folder / "ca.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return Issued(folder / "ca.key", folder / "ca.crt")


def _issue(folder: Path, stem: str, common_name: str, usage: ExtendedKeyUsageOID,
           hosts: list[str] | None = None) -> Issued:
    ca_key, ca_certificate = _load_ca(folder)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    organisation = ca_certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    builder = (
        x509.CertificateBuilder().subject_name(_name(common_name, str(organisation)))
        .issuer_name(ca_certificate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    certificate = builder.sign(ca_key, hashes.SHA256())
    _write_private(folder / f"{stem}.key", key, serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8)
    (folder / f"{stem}.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return Issued(folder / f"{stem}.key", folder / f"{stem}.crt")


def server_certificate(folder: Path, name: str, hosts: list[str]) -> Issued:
    """A TLS server certificate valid for `hosts` (names or IP addresses)."""
    _safe(name, "server name")
    if not hosts:
        raise PkiError("give at least one --host the stores will use to reach the server")
    return _issue(folder, name, hosts[0], ExtendedKeyUsageOID.SERVER_AUTH, hosts)


def client_certificate(folder: Path, store_id: str) -> Issued:
    """A store box's TLS client certificate; its common name is the store id."""
    _safe(store_id, "store id")
    return _issue(folder, f"store-{store_id}", store_id, ExtendedKeyUsageOID.CLIENT_AUTH)


def service_certificate(folder: Path, name: str) -> Issued:
    """A TLS client certificate for a service reaching the broker's TLS listener (release, a remote
    aggregator, a regional broker's bridge): `name.crt` and `name.key`."""
    _safe(name, "client name")
    return _issue(folder, name, name, ExtendedKeyUsageOID.CLIENT_AUTH)


def supernode_key(folder: Path, store_id: str) -> tuple[Path, Path]:
    """(private, public) SuperNode authentication keys in OpenSSH format (NIST P-384)."""
    _safe(store_id, "store id")
    key = ec.generate_private_key(ec.SECP384R1())
    private = folder / f"supernode-{store_id}"
    _write_private(private, key, serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH)
    public = folder / f"supernode-{store_id}.pub"
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                     serialization.PublicFormat.OpenSSH) + f" {store_id}\n".encode())
    return private, public
