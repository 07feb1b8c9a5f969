"""``tls_client_auth``: client authentication by TLS client certificate (RFC 8705 §2.1, PKI).

The TLS layer has already checked the certificate against the configured client CA
(``ServerTLS.client_ca_file``); this method only decides whether the certificate names the
client the request claims in ``client_id``: its subject DN equals the registered
``tls_client_auth_subject_dn``, or else its CN is the client id.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError
from cryptography import x509
from flask import request

from devserver.clients import Client
from devserver.tls import PEER_CERT_ENVIRON_KEY

METHOD = "tls_client_auth"


def authenticate_tls_client(query_client: object, oauth_request: OAuth2Request) -> Client | None:
    """authlib client-auth callable. ``None`` lets the other methods try; a request that
    names a ``tls_client_auth`` client and carries no other credential gets a precise
    ``invalid_client`` when the certificate is missing or names someone else."""
    form = oauth_request.form
    client_id = form.get("client_id")
    if not client_id or _has_other_credentials(oauth_request):
        return None
    client = query_client(client_id)  # type: ignore[operator]
    if not isinstance(client, Client) or METHOD not in client.auth_methods:
        return None
    pem = request.environ.get(PEER_CERT_ENVIRON_KEY)
    if not pem:
        raise InvalidClientError(description="tls_client_auth: no client certificate presented")
    subject = x509.load_pem_x509_certificate(pem.encode()).subject
    if not client.check_certificate_subject(subject):
        raise InvalidClientError(
            description="tls_client_auth: the client certificate does not belong to this client"
        )
    return client


def _has_other_credentials(oauth_request: OAuth2Request) -> bool:
    form = oauth_request.form
    return bool(
        oauth_request.headers.get("Authorization")
        or form.get("client_secret")
        or form.get("client_assertion")
    )


class CertificateBinding:
    """RFC 8705 §3: the clients whose tokens are bound to their TLS client certificate
    (``cnf.x5t#S256``), as an authorization server's per-client setting."""

    def __init__(self) -> None:
        self.bound_clients: set[str] = set()
        #: self_signed_tls_client_auth clients: client id -> registered x5t#S256.
        self.self_signed: dict[str, str] = {}


def certificate_thumbprint(pem: str) -> str:
    """``x5t#S256``: base64url(SHA-256(DER certificate))."""
    import base64
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding

    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def presented_certificate_thumbprint() -> str | None:
    """The thumbprint of the verified client certificate of this request, if any."""
    pem = request.environ.get(PEER_CERT_ENVIRON_KEY)
    return certificate_thumbprint(pem) if pem else None


def certificate_confirmation(binding: CertificateBinding) -> None:
    """Adds ``x5t#S256`` to the ``cnf`` of the token being issued when the requesting client's
    tokens are certificate-bound and it presented a certificate."""
    from flask import g

    client_id = request.form.get("client_id")
    thumbprint = presented_certificate_thumbprint()
    if client_id in binding.bound_clients and thumbprint:
        g.cnf = {**getattr(g, "cnf", {}), "x5t#S256": thumbprint}


SELF_SIGNED_METHOD = "self_signed_tls_client_auth"


def self_signed_authenticator(registered: dict[str, str]) -> Any:
    """``self_signed_tls_client_auth`` (RFC 8705 §2.2): the certificate is the one the client
    registered (``registered``: client id -> ``x5t#S256``), whoever issued it. The TLS layer
    must trust that certificate itself (it is part of the client CA bundle)."""

    def authenticate(query_client: object, oauth_request: OAuth2Request) -> Client | None:
        client_id = oauth_request.form.get("client_id")
        if not client_id or _has_other_credentials(oauth_request):
            return None
        client = query_client(client_id)  # type: ignore[operator]
        if not isinstance(client, Client) or SELF_SIGNED_METHOD not in client.auth_methods:
            return None
        thumbprint = presented_certificate_thumbprint()
        if thumbprint is None:
            raise InvalidClientError(description=f"{SELF_SIGNED_METHOD}: no client certificate")
        if registered.get(client_id) != thumbprint:
            raise InvalidClientError(
                description=f"{SELF_SIGNED_METHOD}: not the certificate this client registered"
            )
        return client

    return authenticate
