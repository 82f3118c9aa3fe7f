"""`truffle-ashby temporal-certs`: a private CA and the certificates of mutual TLS between
Temporal's frontend and the processes that call it, for docker-compose.yml's one-shot
`temporal-certs` job (and for tests that put TLS in front of a Temporal server).

Three folders, each a volume of its own, so that each container sees only what it needs:
- the CA's (`ca.pem`, `ca-key.pem`): only this job mounts it;
- the server's (`ca.pem`, `server.pem`, `server-key.pem`): Temporal's frontend and its nodes
  (the certificate serves both ends of their own connections: server and client auth);
- the clients' (`ca.pem`, `client.pem`, `client-key.pem`): the API, the worker, the Temporal
  UI and the admin tools.

Every run keeps what is still good and issues only what is missing, does not match (another
CA, other server names) or expires within RENEW_BEFORE, so `docker compose up` can run it each
time. Keys are EC P-256, readable by their owner and by `--group` (the containers that read
them join that group: `group_add` in docker-compose.yml); certificates are world-readable.
"""

import datetime
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_LIFETIME = datetime.timedelta(days=3650)
LEAF_LIFETIME = datetime.timedelta(days=730)
RENEW_BEFORE = datetime.timedelta(days=60)
# Clock skew between this job and the containers that check the certificates.
BACKDATE = datetime.timedelta(minutes=5)
CLIENT_NAME = "truffle"
# The files, as docker-compose.yml names them to Temporal and its clients.
CA_CERT, CA_KEY = "ca.pem", "ca-key.pem"
SERVER_CERT, SERVER_KEY = "server.pem", "server-key.pem"
CLIENT_CERT, CLIENT_KEY = "client.pem", "client-key.pem"


@dataclass(frozen=True)
class Issued:
    """What a run did: each file set `issued`, `renewed` or `kept`."""

    ca: str
    server: str
    client: str


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, data: bytes, mode: int, group: int | None) -> None:
    """Written whole under a temporary name, then renamed: a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    if group is not None:
        os.chown(partial, -1, group)
    partial.chmod(mode)
    partial.replace(path)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, group: int | None) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(path, pem, 0o440 if group is not None else 0o400, group)


def _write_cert(path: Path, cert: x509.Certificate, group: int | None) -> None:
    _write(path, cert.public_bytes(serialization.Encoding.PEM), 0o444, group)


def _load(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path} is not an EC key")
    return cert, key


def _lasts(cert: x509.Certificate, now: datetime.datetime) -> bool:
    return cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now > RENEW_BEFORE


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates; a leaf signs its handshakes and agrees keys (ECDHE)."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not ca,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _new_ca(now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Truffle private CA for Temporal")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _subject_names(names: Sequence[str]) -> list[x509.GeneralName]:
    found: list[x509.GeneralName] = []
    for name in names:
        try:
            found.append(x509.IPAddress(ip_address(name)))
        except ValueError:
            found.append(x509.DNSName(name))
    return found


def _leaf(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    common_name: str,
    names: Sequence[str],
    usages: Sequence[x509.ObjectIdentifier],
    now: datetime.datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = _key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + LEAF_LIFETIME, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(_subject_names(names)), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def _still_good(
    cert_path: Path,
    key_path: Path,
    ca_cert: x509.Certificate,
    names: Sequence[str],
    now: datetime.datetime,
) -> bool:
    """The leaf exists, was signed by this CA, names what it must and lasts a while yet."""
    try:
        cert, key = _load(cert_path, key_path)
        cert.verify_directly_issued_by(ca_cert)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    if cert.public_key() != key.public_key():  # the key is this certificate's
        return False
    if names:
        try:
            present = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        if set(_subject_names(names)) - set(present):
            return False
    return _lasts(cert, now)


def issue(
    ca_dir: Path,
    server_dir: Path,
    client_dir: Path,
    server_names: Sequence[str],
    group: int | None = None,
    now: datetime.datetime | None = None,
) -> Issued:
    """Makes sure the three folders hold a CA and good certificates (see the module's
    docstring); returns what it did."""
    now = now or _now()
    for folder in (ca_dir, server_dir, client_dir):
        folder.mkdir(parents=True, exist_ok=True)
    ca_pem, ca_key_pem = ca_dir / CA_CERT, ca_dir / CA_KEY
    ca_state = "kept"
    try:
        ca = _load(ca_pem, ca_key_pem)
        if not _lasts(ca[0], now):
            raise ValueError("the CA expires soon")
    except (OSError, ValueError):
        ca_state = "renewed" if ca_pem.exists() else "issued"
        ca = _new_ca(now)
        _write_key(ca_key_pem, ca[1], None)
        _write_cert(ca_pem, ca[0], None)

    def leaf(folder: Path, files: tuple[str, str], common_name: str, names: Sequence[str],
             usages: Sequence[x509.ObjectIdentifier]) -> str:  # fmt: skip
        cert_path, key_path = folder / files[0], folder / files[1]
        copy = folder / f".{CA_CERT}.partial"
        shutil.copyfile(ca_pem, copy)
        copy.chmod(0o444)
        copy.replace(folder / CA_CERT)
        if _still_good(cert_path, key_path, ca[0], names, now):
            return "kept"
        state = "renewed" if cert_path.exists() else "issued"
        cert, key = _leaf(ca, common_name, names, usages, now)
        _write_key(key_path, key, group)
        _write_cert(cert_path, cert, group)
        return state

    server_usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    server = leaf(
        server_dir, (SERVER_CERT, SERVER_KEY), server_names[0], server_names, server_usages
    )
    client = leaf(
        client_dir, (CLIENT_CERT, CLIENT_KEY), CLIENT_NAME, [], [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    return Issued(ca=ca_state, server=server, client=client)
