"""A throwaway PKI for TLS tests: one CA, a server certificate, client certificates.

    pki = make_dev_pki(tmp_path, client_ids=["etl"])
    DevServer(tls=pki.server_tls(client_auth=True))       # HTTPS, asks for client certs
    {"verify": str(pki.ca_cert)}                           # the CA bundle a client trusts
    {"client_cert": str(pki.clients["etl"].cert), "client_cert_key": str(pki.clients["etl"].key)}

EC P-256 keys keep generation and handshakes fast. Private keys are written 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devserver.tls import ServerTLS

DEFAULT_SERVER_NAMES = ("127.0.0.1", "localhost")
_VALIDITY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class CertFiles:
    cert: Path
    key: Path


@dataclass(frozen=True)
class DevPKI:
    """Files of one test PKI. ``ca_cert`` is the bundle clients trust (extra ``verify``)."""

    ca_cert: Path
    server: CertFiles
    clients: Mapping[str, CertFiles]

    def server_tls(
        self, *, client_auth: bool = False, require_client_cert: bool = False
    ) -> ServerTLS:
        """Server settings: the server certificate, and with ``client_auth`` this CA for
        client certificates (asked for; required at the handshake if ``require_client_cert``)."""
        return ServerTLS(
            certfile=self.server.cert,
            keyfile=self.server.key,
            client_ca_file=self.ca_cert if client_auth or require_client_cert else None,
            require_client_cert=require_client_cert,
        )


def make_dev_pki(
    folder: str | os.PathLike[str],
    *,
    client_ids: Iterable[str] = (),
    server_names: Iterable[str] = DEFAULT_SERVER_NAMES,
    ca_name: str = "devserver test CA",
) -> DevPKI:
    """Write a CA, a server certificate for ``server_names`` (IP addresses and DNS names)
    and one client certificate per client id (``CN=<client id>``) into ``folder``:
    ``ca.pem``, ``server.pem`` / ``server.key``, ``client-<id>.pem`` / ``client-<id>.key``.
    Use one folder per PKI."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _ca_certificate(ca_name, ca_key)
    ca_cert = out / "ca.pem"
    ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    names = list(server_names)
    server = _write_leaf(
        out / "server",
        _leaf_builder(names[0], ExtendedKeyUsageOID.SERVER_AUTH).add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
        ),
        ca,
        ca_key,
    )
    clients = {
        client_id: _write_leaf(
            out / f"client-{_file_name(client_id)}",
            _leaf_builder(client_id, ExtendedKeyUsageOID.CLIENT_AUTH),
            ca,
            ca_key,
        )
        for client_id in client_ids
    }
    return DevPKI(ca_cert=ca_cert, server=server, clients=clients)


def _ca_certificate(name: str, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf_builder(common_name: str, usage: x509.ObjectIdentifier) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )


def _write_leaf(
    stem: Path,
    builder: x509.CertificateBuilder,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
) -> CertFiles:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        builder.issuer_name(ca.subject)
        .public_key(key.public_key())
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = CertFiles(cert=stem.with_suffix(".pem"), key=stem.with_suffix(".key"))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return files


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _file_name(name: str) -> str:
    """A file-name-safe form of a client id."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"


def make_self_signed_client(folder: str | os.PathLike[str], client_id: str) -> CertFiles:
    """A self-signed client certificate (``CN=<client id>``) for
    ``self_signed_tls_client_auth``: ``self-<id>.pem`` / ``self-<id>.key`` in ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _leaf_builder(client_id, ExtendedKeyUsageOID.CLIENT_AUTH)
    cert = (
        builder.issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, client_id)]))
        .public_key(key.public_key())
        .sign(key, hashes.SHA256())
    )
    stem = Path(folder) / f"self-{_file_name(client_id)}"
    files = CertFiles(cert=stem.with_suffix(".pem"), key=stem.with_suffix(".key"))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return files


def client_trust_bundle(path: str | os.PathLike[str], *certs: Path) -> Path:
    """One PEM file of ``certs``: what a server trusts for client certificates (the CA, and
    the self-signed certificates clients registered)."""
    out = Path(path)
    out.write_bytes(b"".join(Path(c).read_bytes() for c in certs))
    return out
