"""Registered OAuth clients: what each may do and how it authenticates."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin
from cryptography import x509
from cryptography.x509.oid import NameOID
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from devserver.keys import import_public_jwk, import_shared_secret

AUTH_METHODS = (
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
)
SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post", "client_secret_jwt"})
GRANT_TYPE = "client_credentials"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FEDERATED_METHOD = "federated_assertion"


@dataclass(frozen=True)
class Federation:
    """A federated identity credential (as Entra ID's): the client trusts assertions that
    ``issuer`` (a platform: Kubernetes, a cloud) signs with a key of ``keys`` for ``subject``
    and ``audience``."""

    issuer: str
    subject: str
    audience: str
    keys: KeySet = field(repr=False)


@dataclass(eq=False)
class Client(ClientMixin):
    client_id: str
    auth_methods: frozenset[str]
    scope: str = ""
    default_scope: str | None = None
    token_lifetime: int = 3600
    secret: str | None = field(default=None, repr=False)
    public_jwk: dict[str, Any] | None = None
    #: tls_client_auth: the certificate subject DN (RFC 4514); None means CN=<client_id>.
    tls_client_auth_subject_dn: str | None = None
    # Parsed once at registration so no request re-parses key material.
    secret_key: OctKey | None = field(default=None, repr=False)
    public_key: RSAKey | ECKey | None = field(default=None, repr=False)
    #: Workload identity and the JWT-bearer grant (build_federated_client,
    #: build_jwt_bearer_client).
    federation: Federation | None = None
    grant_types: frozenset[str] = frozenset({GRANT_TYPE})
    #: JWT-bearer grant: the subjects ("sub") it may act for; empty means any.
    jwt_bearer_subjects: frozenset[str] = frozenset()

    @property
    def allowed_scopes(self) -> list[str]:
        return self.scope.split()

    def get_client_id(self) -> str:
        return self.client_id

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """Requested scope if it is a subset of the client's scope, else ``None``
        (authlib turns that into ``invalid_scope``); no scope -> the default scope."""
        if not scope:
            return self.scope if self.default_scope is None else self.default_scope
        requested = list(dict.fromkeys(scope.split()))
        if not set(requested) <= set(self.allowed_scopes):
            return None
        return " ".join(requested)

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret is not None and secrets.compare_digest(
            self.secret.encode(), client_secret.encode()
        )

    def check_certificate_subject(self, subject: x509.Name) -> bool:
        """Whether a client certificate's subject identifies this client (RFC 8705 §2.1.2)."""
        if self.tls_client_auth_subject_dn is not None:
            return subject == x509.Name.from_rfc4514_string(self.tls_client_auth_subject_dn)
        names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return [n.value for n in names] == [self.client_id]

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in self.auth_methods

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    def get_default_redirect_uri(self) -> None:
        return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_response_type(self, response_type: str) -> bool:
        return False


def build_client(
    client_id: str,
    *,
    secret: str | None = None,
    public_jwk: dict[str, Any] | None = None,
    auth_methods: Sequence[str] = ("client_secret_basic",),
    scope: str = "",
    default_scope: str | None = None,
    token_lifetime: int = 3600,
    tls_client_auth_subject_dn: str | None = None,
) -> Client:
    methods = frozenset(auth_methods)
    unknown = methods - set(AUTH_METHODS)
    if unknown or not methods:
        raise ValueError(f"auth_methods must be a non-empty subset of {AUTH_METHODS}")
    if methods & SECRET_METHODS and not secret:
        raise ValueError(f"client {client_id!r}: a secret is required for {sorted(methods)}")
    if "private_key_jwt" in methods and not public_jwk:
        raise ValueError(f"client {client_id!r}: private_key_jwt requires public_jwk")
    if tls_client_auth_subject_dn is not None:
        if "tls_client_auth" not in methods:
            raise ValueError("tls_client_auth_subject_dn is only for tls_client_auth clients")
        try:
            x509.Name.from_rfc4514_string(tls_client_auth_subject_dn)
        except ValueError:
            raise ValueError(
                f"tls_client_auth_subject_dn {tls_client_auth_subject_dn!r} is not an RFC 4514 "
                "DN such as 'CN=etl,O=Acme'"
            ) from None
    if token_lifetime <= 0:
        raise ValueError("token_lifetime must be positive")
    if default_scope and not set(default_scope.split()) <= set(scope.split()):
        raise ValueError("default_scope must be a subset of scope")
    return Client(
        client_id=client_id,
        auth_methods=methods,
        scope=scope,
        default_scope=default_scope,
        token_lifetime=token_lifetime,
        secret=secret,
        public_jwk=public_jwk,
        tls_client_auth_subject_dn=tls_client_auth_subject_dn,
        secret_key=import_shared_secret(secret) if secret else None,
        public_key=import_public_jwk(public_jwk) if public_jwk else None,
    )


def build_federated_client(
    client_id: str, *, federation: Federation, scope: str = "", token_lifetime: int = 3600
) -> Client:
    """A client that authenticates with a platform's assertion only (no secret, no key)."""
    if token_lifetime <= 0:
        raise ValueError("token_lifetime must be positive")
    return Client(
        client_id=client_id,
        auth_methods=frozenset({FEDERATED_METHOD}),
        scope=scope,
        token_lifetime=token_lifetime,
        federation=federation,
    )


def build_jwt_bearer_client(
    client_id: str,
    *,
    public_jwk: dict[str, Any],
    scope: str = "",
    subjects: Sequence[str] = (),
    token_lifetime: int = 3600,
) -> Client:
    """A client that may use the JWT-bearer grant (RFC 7523 §2.1): its assertions are signed
    with the private key of ``public_jwk``, ``iss`` is the client ID, ``sub`` one of
    ``subjects`` (any when empty)."""
    return Client(
        client_id=client_id,
        auth_methods=frozenset({"none"}),
        scope=scope,
        token_lifetime=token_lifetime,
        public_jwk=public_jwk,
        public_key=import_public_jwk(public_jwk),
        grant_types=frozenset({JWT_BEARER_GRANT}),
        jwt_bearer_subjects=frozenset(subjects),
    )


class ClientRegistry:
    """Thread-safe client store; clients may be added while the server runs."""

    def __init__(self) -> None:
        self._clients: dict[str, Client] = {}
        self._lock = threading.Lock()

    def add(self, client: Client) -> None:
        with self._lock:
            self._clients[client.client_id] = client

    def remove(self, client_id: str) -> None:
        with self._lock:
            self._clients.pop(client_id, None)

    def get(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    def all(self) -> list[Client]:
        with self._lock:
            return list(self._clients.values())

    def all_scopes(self) -> list[str]:
        return sorted({s for c in self.all() for s in c.allowed_scopes})
