"""Client authentication at the token endpoint (RFC 6749 §2.3, RFC 7523, RFC 8705).

Each method is one of authlib's pluggable callables ``(auth, method, uri, headers, body)``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from airflow_provider_oauthcc.auth.config import JWT_BEARER, MTLS_METHODS, ClientConfig
from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError

ASSERTION_LIFETIME = 300
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AuthCallable = Callable[[Any, str, str, dict[str, str], str], tuple[str, dict[str, str], str]]


class ClientAuthenticator:
    """Adds the configured client authentication to a token request."""

    def __init__(self, config: ClientConfig) -> None:
        from authlib.oauth2.auth import ClientAuth

        self._config = config
        self.last_assertion: str | None = None
        """The assertion of the last request (to mask), if the method sends one."""
        self.last_assertion_expires = 0.0
        """When ``last_assertion`` expires (epoch seconds): how long to keep it masked."""
        secret: Any = config.client_secret
        method: str | AuthCallable = config.auth_method
        self._header: dict[str, str] = {"kid": config.key_id} if config.key_id else {}
        if config.grant_type == JWT_BEARER:
            # RFC 7523 §2.1: the signed assertion is the grant; no client authentication.
            secret = _import_private_key(config)
            method = self._jwt_bearer_grant
        elif config.auth_method == "private_key_jwt":
            secret = _import_private_key(config)
            method = self._jwt_assertion
            if config.client_cert:
                self._header.update(certificate_thumbprints(config.client_cert))
        elif config.auth_method == "federated_assertion":
            method = self._federated_assertion
        elif config.auth_method == "client_secret_jwt":
            method = self._jwt_assertion
        elif config.auth_method == "client_secret_basic":
            method = self._basic
        elif config.auth_method in MTLS_METHODS:
            # RFC 8705 §2: the TLS client certificate authenticates; the body names the client.
            method = "none"
        self._client_auth = ClientAuth(config.client_id, secret, method)

    def prepare(self, uri: str, headers: dict[str, str], body: str) -> tuple[dict[str, str], str]:
        _, headers, body = self._client_auth.prepare("POST", uri, headers, body)
        return headers, body

    def _basic(
        self, auth: Any, method: str, uri: str, headers: dict[str, str], body: str
    ) -> tuple[str, dict[str, str], str]:
        """RFC 6749 §2.3.1; authlib's own encoder skips the form-encoding (and is latin-1)."""
        config = self._config
        client_id, secret = config.client_id, config.client_secret or ""
        if config.basic_auth_encoding == "form":
            client_id, secret = quote(client_id, safe=""), quote(secret, safe="")
        credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        headers["Authorization"] = f"Basic {credentials}"
        return uri, headers, body

    def _jwt_assertion(
        self, auth: Any, method: str, uri: str, headers: dict[str, str], body: str
    ) -> tuple[str, dict[str, str], str]:
        from authlib.common.urls import add_params_to_qs
        from authlib.oauth2.rfc7523 import client_secret_jwt_sign, private_key_jwt_sign
        from authlib.oauth2.rfc7523.client import ASSERTION_TYPE

        config = self._config
        now = int(time.time())
        # Fresh claims each time: authlib writes the jti into the dict it is given.
        claims = {"iat": now, "exp": now + ASSERTION_LIFETIME}
        header = dict(self._header) or None
        sign = (
            private_key_jwt_sign
            if config.auth_method == "private_key_jwt"
            else client_secret_jwt_sign
        )
        if config.auth_method == "client_secret_jwt":
            from joserfc.jwk import OctKey

            key: Any = OctKey.import_key(auth.client_secret)
        else:
            key = auth.client_secret
        assertion = sign(
            key,
            client_id=config.client_id,
            token_endpoint=uri,
            alg=config.signing_algorithm,
            claims=claims,
            header=header,
        )
        self.last_assertion, self.last_assertion_expires = assertion, claims["exp"]
        body = add_params_to_qs(
            body or "",
            [("client_assertion_type", ASSERTION_TYPE), ("client_assertion", assertion)],
        )
        # RFC 7523 §3 makes client_id optional; Okta and Entra ID ask for it all the same.
        body = add_params_to_qs(body, [("client_id", config.client_id)])
        return uri, headers, body

    def _federated_assertion(
        self, auth: Any, method: str, uri: str, headers: dict[str, str], body: str
    ) -> tuple[str, dict[str, str], str]:
        """RFC 7521 §4.2 with the platform's assertion, read again for every request (it
        rotates); no client secret."""
        from authlib.common.urls import add_params_to_qs

        from airflow_provider_oauthcc.auth.assertion_file import read_assertion

        assert self._config.client_assertion_file is not None
        assertion, claims = read_assertion(self._config.client_assertion_file)
        expires = claims.get("exp")
        self.last_assertion = assertion
        self.last_assertion_expires = (
            float(expires) if isinstance(expires, int | float) else time.time() + 86400
        )
        body = add_params_to_qs(
            body or "",
            [
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", assertion),
                ("client_id", self._config.client_id),
            ],
        )
        return uri, headers, body

    def _jwt_bearer_grant(
        self, auth: Any, method: str, uri: str, headers: dict[str, str], body: str
    ) -> tuple[str, dict[str, str], str]:
        """RFC 7523 §2.1: ``assertion=`` a JWT signed with the private key. ``iss`` defaults
        to the client ID, ``sub`` to the client ID, ``aud`` to the token endpoint (Salesforce
        wants its login URL, Google its token URL: set ``assertion_audience``)."""
        from authlib.common.urls import add_params_to_qs
        from authlib.oauth2.rfc7523 import JWTBearerGrant

        config = self._config
        now = int(time.time())
        # A new jti for every request (RFC 7523 §3): authlib before 1.8 adds none.
        claims: dict[str, Any] = {"jti": secrets.token_urlsafe(24)}
        if config.scope:
            claims["scope"] = config.scope
        assertion = JWTBearerGrant.sign(
            auth.client_secret,
            issuer=config.assertion_issuer or config.client_id,
            audience=config.assertion_audience or uri,
            subject=config.assertion_subject or config.client_id,
            issued_at=now,
            expires_at=now + config.assertion_lifetime,
            claims=claims,
            header=dict(self._header),
            alg=config.signing_algorithm,
        )
        self.last_assertion = assertion
        self.last_assertion_expires = now + config.assertion_lifetime
        return uri, headers, add_params_to_qs(body or "", [("assertion", assertion)])


def _import_private_key(config: ClientConfig) -> Any:
    from joserfc.jwk import ECKey, OKPKey, RSAKey

    from airflow_provider_oauthcc.auth.config import private_key_type

    assert config.private_key is not None
    key_class: Any = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}[
        private_key_type(config.private_key, config.private_key_passphrase)
    ]
    return key_class.import_key(
        config.private_key,
        parameters={"kid": config.key_id} if config.key_id else None,
        password=config.private_key_passphrase,
    )


def certificate_thumbprints(path: str) -> dict[str, str]:
    """``x5t`` and ``x5t#S256`` (RFC 7515 §4.1.7-8) of the PEM certificate at ``path``."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        with open(path, "rb") as handle:
            der = x509.load_pem_x509_certificate(handle.read()).public_bytes(Encoding.DER)
    except (OSError, ValueError):
        raise OAuthCCConfigError(
            "client_cert", f"{path} is not a readable PEM certificate"
        ) from None

    def b64(digest: bytes) -> str:
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    # SHA-1 only names the certificate here (what Entra ID looks up); it secures nothing.
    return {
        "x5t": b64(hashlib.sha1(der, usedforsecurity=False).digest()),
        "x5t#S256": b64(hashlib.sha256(der).digest()),
    }
