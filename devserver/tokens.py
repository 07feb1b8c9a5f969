"""Access-token bookkeeping (issued / revoked) and the API's token validation."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey


class InvalidTokenError(Exception):
    """The bearer token is not acceptable; ``description`` goes into the 401."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWT, without checking anything."""
    payload = token.split(".")[1]
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data if isinstance(data, dict) else {}


class TokenRegistry:
    """Remembers every issued token (its ``jti`` and value) so they can all be revoked."""

    def __init__(self) -> None:
        self._issued: set[str] = set()
        self._revoked: set[str] = set()
        self._tokens: list[str] = []
        self._lock = threading.Lock()

    def record_issued(self, jti: str, token: str | None = None) -> None:
        with self._lock:
            self._issued.add(jti)
            if token is not None:
                self._tokens.append(token)

    @property
    def issued_tokens(self) -> list[str]:
        """Every access token issued, in order, revoked or not (leak scans look for them)."""
        with self._lock:
            return list(self._tokens)

    def revoke_all(self) -> int:
        """Revoke every token issued so far; return how many were newly revoked."""
        with self._lock:
            count = len(self._issued)
            self._revoked |= self._issued
            self._issued = set()
            return count

    def is_revoked(self, jti: str) -> bool:
        return jti in self._revoked


class AccessTokenVerifier:
    """Validates RFC 9068 access tokens: signature, ``typ``, ``iss``, ``exp``,
    revocation, and ``aud`` when an expected audience is configured."""

    _CACHE_LIMIT = 10_000

    def __init__(
        self,
        public_key: RSAKey,
        issuer: str,
        registry: TokenRegistry,
        expected_audience: Callable[[], str | None],
    ) -> None:
        self._key = public_key
        self._issuer = issuer
        self._registry = registry
        self._expected_audience = expected_audience
        # Signature checks dominate per-request cost; claims of tokens whose
        # signature already verified are kept (time-based checks still run each time).
        self._verified: dict[str, dict[str, Any]] = {}

    def verify(self, token: str) -> dict[str, Any]:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify_signature(token)
            if len(self._verified) >= self._CACHE_LIMIT:
                self._verified.clear()
            self._verified[token] = claims
        self._check_claims(claims)
        return claims

    def _verify_signature(self, token: str) -> dict[str, Any]:
        try:
            decoded = jwt.decode(token, self._key, algorithms=["RS256"])
        except JoseError as exc:
            raise InvalidTokenError(f"invalid token: {exc.error}") from exc
        except (ValueError, TypeError) as exc:
            raise InvalidTokenError("malformed token") from exc
        if decoded.header.get("typ", "").lower() not in ("at+jwt", "application/at+jwt"):
            raise InvalidTokenError("token is not an access token (typ)")
        return dict(decoded.claims)

    def _check_claims(self, claims: dict[str, Any]) -> None:
        if claims.get("iss") != self._issuer:
            raise InvalidTokenError("token issuer mismatch")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or time.time() >= exp:
            raise InvalidTokenError("token expired")
        if self._registry.is_revoked(str(claims.get("jti"))):
            raise InvalidTokenError("token revoked")
        audience = self._expected_audience()
        if audience is not None:
            aud = claims.get("aud")
            audiences = aud if isinstance(aud, list) else [aud]
            if audience not in audiences:
                raise InvalidTokenError("token audience mismatch")
