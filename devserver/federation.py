"""Workload identity: a platform that signs assertions, and the client authentication that
trusts them (as Microsoft Entra ID trusts an AKS cluster's service-account tokens).

``PlatformIssuer`` plays the platform (its own key, separate from the authorization server's);
``authenticate_federated_client`` is the authorization server's client-auth callable: the
request names the client in ``client_id`` and carries the platform's assertion in
``client_assertion``; the client's ``Federation`` says which issuer, subject and audience it
trusts and with which keys.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from devserver.clients import FEDERATED_METHOD, Client, Federation

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Entra ID's audience for federated credentials.
ENTRA_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
LEEWAY = 30


class PlatformIssuer:
    """A platform's token issuer (Kubernetes' service-account issuer, say): an RSA key of its
    own and an issuer URL; issues the assertions a workload finds in its token file."""

    alg = "RS256"

    def __init__(self, issuer: str = "https://oidc.platform.example/cluster-1") -> None:
        self.issuer = issuer
        self._key = RSAKey.generate_key(
            2048, {"alg": self.alg, "use": "sig"}, private=True, auto_kid=True
        )

    @property
    def key_set(self) -> KeySet:
        """The public keys (what the authorization server trusts)."""
        return KeySet([RSAKey.import_key(self._key.as_dict(private=False))])

    def federation(self, subject: str, audience: str = ENTRA_EXCHANGE_AUDIENCE) -> Federation:
        return Federation(issuer=self.issuer, subject=subject, audience=audience, keys=self.key_set)

    def assertion(
        self,
        subject: str,
        *,
        audience: str = ENTRA_EXCHANGE_AUDIENCE,
        lifetime: int = 3600,
        issued_at: float | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time() if issued_at is None else issued_at)
        payload = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        return jwt.encode({"alg": self.alg, "kid": self._key.kid}, payload, self._key)

    def write(self, path: Any, subject: str, **kwargs: Any) -> str:
        """Write a new assertion to ``path`` as the platform does (atomically); returns it."""
        import os

        assertion = self.assertion(subject, **kwargs)
        tmp = f"{path}.tmp"
        with open(tmp, "w") as handle:
            handle.write(assertion)
        os.replace(tmp, path)
        return assertion


def authenticate_federated_client(query_client: Any, oauth_request: OAuth2Request) -> Client | None:
    """authlib client-auth callable. ``None`` lets the other methods try (the client is not a
    federated one); a federated client with a bad assertion gets ``invalid_client``."""
    form = oauth_request.form
    assertion, client_id = form.get("client_assertion"), form.get("client_id")
    if form.get("client_assertion_type") != ASSERTION_TYPE or not assertion or not client_id:
        return None
    client = query_client(client_id)
    if not isinstance(client, Client) or client.federation is None:
        return None
    if FEDERATED_METHOD not in client.auth_methods:
        return None
    _verify(assertion, client.federation)
    return client


def _verify(assertion: str, federation: Federation) -> None:
    try:
        token = jwt.decode(assertion, federation.keys, algorithms=["RS256", "ES256"])
        jwt.JWTClaimsRegistry(
            leeway=LEEWAY,
            iss={"essential": True, "value": federation.issuer},
            sub={"essential": True, "value": federation.subject},
            aud={"essential": True, "values": [federation.audience]},
            exp={"essential": True},
        ).validate(token.claims)
    except JoseError as exc:
        raise InvalidClientError(
            description=f"federated assertion refused: {exc.description or exc.error}"
        ) from None
    except ValueError:
        raise InvalidClientError(description="federated assertion refused: not a JWT") from None
