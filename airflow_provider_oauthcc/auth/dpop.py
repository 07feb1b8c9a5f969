"""DPoP (RFC 9449): a key pair per token, a signed proof on every request, server nonces.

A DPoP-bound token is useless without its private key, so the key travels with the token in
the cache entry (sealed as the token is): every process that can open the entry can prove
possession; one that cannot fetches its own token with its own key. Proofs are never logged
and never put in an error.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any

from airflow_provider_oauthcc.auth.config import DEFAULT_DPOP_ALGORITHM
from airflow_provider_oauthcc.auth.egress import UnsafeUrlError, target
from airflow_provider_oauthcc.auth.errors import TokenResponseError
from airflow_provider_oauthcc.auth.token import Token

TOKEN_TYPE = "DPoP"
NONCE_ERROR = "use_dpop_nonce"
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


class DPoPKey:
    """A DPoP key pair and the proofs it signs. ``repr`` never shows the key."""

    def __init__(self, key: Any, alg: str) -> None:
        self._key = key
        self.alg = alg
        self.public_jwk: dict[str, Any] = dict(key.as_dict(private=False))
        self.thumbprint: str = key.thumbprint()

    def __repr__(self) -> str:
        return f"DPoPKey({self.alg}, jkt={self.thumbprint})"

    @classmethod
    def generate(cls, alg: str = DEFAULT_DPOP_ALGORITHM) -> DPoPKey:
        from joserfc.jwk import ECKey, RSAKey

        key: Any
        if alg in _CURVES:
            key = ECKey.generate_key(_CURVES[alg])
        elif alg in ("RS256", "PS256"):
            key = RSAKey.generate_key(2048)
        else:
            raise ValueError(f"unsupported DPoP algorithm {alg!r}")
        return cls(key, alg)

    @classmethod
    def from_jwk(cls, text: str) -> DPoPKey:
        """The key of a cache entry: a private JWK (JSON) with its ``alg``."""
        from joserfc.jwk import JWKRegistry

        data = json.loads(text)
        alg = str(data.pop("alg"))
        return cls(JWKRegistry.import_key(data), alg)

    def to_jwk(self) -> str:
        """The private JWK as JSON, with ``alg``: what the cache entry holds (sealed)."""
        return json.dumps({**self._key.as_dict(private=True), "alg": self.alg})

    def proof(
        self,
        method: str,
        url: str,
        *,
        nonce: str | None = None,
        access_token: str | None = None,
    ) -> str:
        """A DPoP proof JWT for one request (RFC 9449 §4.2); ``ath`` when a token goes along."""
        from joserfc import jws

        claims: dict[str, Any] = {
            "jti": uuid.uuid4().hex,
            "htm": method.upper(),
            "htu": htu(url),
            "iat": int(time.time()),
        }
        if nonce:
            claims["nonce"] = nonce
        if access_token is not None:
            claims["ath"] = token_hash(access_token)
        header = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.public_jwk}
        payload = json.dumps(claims, separators=(",", ":"))
        return jws.serialize_compact(header, payload, self._key, algorithms=[self.alg])


@lru_cache(maxsize=32)
def key_of(jwk_text: str) -> DPoPKey:
    """The key pair of a cache entry, parsed once per process."""
    return DPoPKey.from_jwk(jwk_text)


def token_key(token: Token) -> DPoPKey | None:
    """The DPoP key a token is bound to, or None for a bearer token."""
    return key_of(token.dpop_jwk) if token.dpop_jwk else None


def token_hash(access_token: str) -> str:
    """``ath``: base64url(SHA-256(token)) (RFC 9449 §4.2)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def htu(url: str) -> str:
    """The proof's ``htu``: the request URL without query and fragment (RFC 9449 §4.2)."""
    return url.split("#", 1)[0].split("?", 1)[0]


class NonceStore:
    """The latest ``DPoP-Nonce`` each server (origin) handed out, shared by the process."""

    def __init__(self) -> None:
        self._nonces: dict[str, str] = {}
        self._guard = threading.Lock()

    def get(self, url: str) -> str | None:
        return self._nonces.get(_origin(url))

    def note(self, url: str, headers: Mapping[str, str]) -> str | None:
        """Keep the nonce an answer carries; returns it (None when there is none)."""
        nonce = headers.get("DPoP-Nonce")
        if not nonce or len(nonce) > 512:
            return None
        with self._guard:
            self._nonces[_origin(url)] = nonce
        return nonce

    def clear(self) -> None:
        with self._guard:
            self._nonces.clear()


NONCES = NonceStore()


def _origin(url: str) -> str:
    try:
        return target(url).origin
    except UnsafeUrlError:
        return url


def asks_for_nonce_at_token_endpoint(status: int, body: bytes) -> bool:
    """RFC 9449 §8: HTTP 400 with ``error=use_dpop_nonce``."""
    if status != 400:
        return False
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(payload, dict) and payload.get("error") == NONCE_ERROR


def asks_for_nonce_at_api(status: int, headers: Mapping[str, str]) -> bool:
    """RFC 9449 §9: HTTP 401 with ``WWW-Authenticate: DPoP error="use_dpop_nonce"``."""
    if status != 401:
        return False
    challenge = headers.get("WWW-Authenticate", "")
    return "dpop" in challenge.lower() and NONCE_ERROR in challenge


class DPoPBinding:
    """The DPoP side of token requests for one connection: its key pair, the proof for the
    token endpoint, the nonce retry, and the token bound to the key."""

    def __init__(self, alg: str, nonces: NonceStore = NONCES) -> None:
        self.alg = alg
        self.nonces = nonces
        self._key: DPoPKey | None = None

    @property
    def key(self) -> DPoPKey:
        if self._key is None:
            self._key = DPoPKey.generate(self.alg)
        return self._key

    def token_request_proof(self, url: str) -> str:
        return self.key.proof("POST", url, nonce=self.nonces.get(url))

    def retry_with_nonce(
        self, url: str, status: int, headers: Mapping[str, str], body: bytes
    ) -> bool:
        """Keep the answer's nonce; whether it asked for one (then send once more)."""
        nonce = self.nonces.note(url, headers)
        return nonce is not None and asks_for_nonce_at_token_endpoint(status, body)

    def bind(self, token: Token) -> Token:
        """The token with its key; a token the server did not bind (Bearer) is refused."""
        if token.token_type != TOKEN_TYPE:
            raise TokenResponseError(
                f"DPoP is on but the token endpoint issued a {token.token_type} token, not a "
                "DPoP-bound one: enable DPoP for this client at the authorization server, or "
                "set dpop to false"
            )
        return replace(token, dpop_jwk=self.key.to_jwk())


def api_proof(token: Token, method: str, url: str, nonces: NonceStore = NONCES) -> str | None:
    """The DPoP header value for an API request with ``token``; None for a bearer token."""
    key = token_key(token)
    if key is None:
        return None
    return key.proof(method, url, nonce=nonces.get(url), access_token=token.access_token)


def authorization(token: Token) -> str:
    """The Authorization header: a DPoP-bound token is never sent as Bearer."""
    scheme = TOKEN_TYPE if token.dpop_jwk or token.token_type == TOKEN_TYPE else "Bearer"
    return f"{scheme} {token.access_token}"
