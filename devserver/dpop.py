"""DPoP (RFC 9449) on the server side: proof verification, nonces, and which clients must bind.

One ``DPoPVerifier`` per server (authorization server and API): each keeps its own nonce
and its own replay memory, as two real servers would.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

PROOF_ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "PS256"]
IAT_WINDOW = 60.0
NONCE_ERROR = "use_dpop_nonce"
INVALID_PROOF = "invalid_dpop_proof"


def _registry() -> jws.JWSRegistry:
    # An RSA key in the proof header passes joserfc's default 512-byte header limit.
    registry = jws.JWSRegistry(algorithms=PROOF_ALGORITHMS)
    registry.max_header_length = 8192
    return registry


REGISTRY = _registry()


class DPoPError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class DPoPVerifier:
    """Checks proofs: ``typ``, algorithm, the signature by the embedded public ``jwk``,
    ``htm``/``htu``, the ``iat`` window, ``jti`` replay, the nonce (when demanded), ``ath``
    and the key thumbprint (``cnf.jkt``). Counts what it accepted and refused."""

    def __init__(self, *, iat_window: float = IAT_WINDOW) -> None:
        self.iat_window = iat_window
        self.require_nonce = False
        self.bound_clients: set[str] = set()
        self.accepted = 0
        self.refused: list[str] = []  # the reasons, in order
        self._nonce = secrets.token_urlsafe(16)
        self._previous_nonce: str | None = None
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def nonce(self) -> str:
        return self._nonce

    def rotate_nonce(self) -> str:
        """A new nonce; the previous one stays good for the proofs already on their way."""
        with self._lock:
            self._previous_nonce, self._nonce = self._nonce, secrets.token_urlsafe(16)
            return self._nonce

    def reset_counts(self) -> None:
        """Zero what was accepted and refused (the settings and replay memory stay)."""
        with self._lock:
            self.accepted = 0
            self.refused.clear()

    def verify(
        self,
        proof: str | None,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        jkt: str | None = None,
    ) -> str:
        """The thumbprint of the proof's key; raises DPoPError saying what is wrong."""
        try:
            thumbprint = self._verify(proof, method, url, access_token, jkt)
        except DPoPError as exc:
            with self._lock:
                self.refused.append(exc.error if exc.error == NONCE_ERROR else exc.description)
            raise
        with self._lock:
            self.accepted += 1
        return thumbprint

    def _verify(
        self,
        proof: str | None,
        method: str,
        url: str,
        access_token: str | None,
        jkt: str | None,
    ) -> str:
        if not proof:
            raise DPoPError(INVALID_PROOF, "DPoP proof required")
        try:
            header = jws.extract_compact(proof.encode(), registry=REGISTRY).headers()
        except (JoseError, ValueError):
            raise DPoPError(INVALID_PROOF, "malformed DPoP proof") from None
        if header.get("typ") != "dpop+jwt":
            raise DPoPError(INVALID_PROOF, "DPoP proof typ must be dpop+jwt")
        alg = header.get("alg")
        if alg not in PROOF_ALGORITHMS:
            raise DPoPError(INVALID_PROOF, "DPoP proof algorithm not allowed")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or "d" in jwk:
            raise DPoPError(INVALID_PROOF, "DPoP proof must carry a public jwk")
        try:
            key: Any = JWKRegistry.import_key(jwk)
            claims = jws.deserialize_compact(proof, key, registry=REGISTRY).payload
        except (JoseError, ValueError, TypeError):
            raise DPoPError(INVALID_PROOF, "DPoP proof signature invalid") from None
        payload = _json(claims)
        self._check_claims(payload, method, url, access_token)
        thumbprint: str = key.thumbprint()
        if jkt is not None and thumbprint != jkt:
            raise DPoPError(INVALID_PROOF, "DPoP key does not match the token's cnf.jkt")
        self._check_replay(payload)
        return thumbprint

    def _check_claims(
        self, claims: dict[str, Any], method: str, url: str, access_token: str | None
    ) -> None:
        if claims.get("htm") != method.upper():
            raise DPoPError(INVALID_PROOF, "DPoP proof htm mismatch")
        if normalized(str(claims.get("htu", ""))) != normalized(url):
            raise DPoPError(INVALID_PROOF, "DPoP proof htu mismatch")
        iat = claims.get("iat")
        if not isinstance(iat, int | float) or abs(time.time() - iat) > self.iat_window:
            raise DPoPError(INVALID_PROOF, "DPoP proof iat outside the accepted window")
        if not isinstance(claims.get("jti"), str) or not claims["jti"]:
            raise DPoPError(INVALID_PROOF, "DPoP proof has no jti")
        nonce = claims.get("nonce")
        if self.require_nonce and (not nonce or nonce not in (self._nonce, self._previous_nonce)):
            raise DPoPError(NONCE_ERROR, "Authorization server requires nonce in DPoP proof")
        if access_token is not None and claims.get("ath") != token_hash(access_token):
            raise DPoPError(INVALID_PROOF, "DPoP proof ath does not match the access token")

    def _check_replay(self, claims: dict[str, Any]) -> None:
        now = time.time()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
            if claims["jti"] in self._seen:
                raise DPoPError(INVALID_PROOF, "DPoP proof replayed (jti seen before)")
            self._seen[claims["jti"]] = float(claims["iat"]) + self.iat_window


def token_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def normalized(url: str) -> str:
    """Scheme and host lowercased, default port dropped, no query or fragment."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme.lower()}://{host}{port}{parts.path or '/'}"


def _json(payload: bytes) -> dict[str, Any]:
    import json

    try:
        data = json.loads(payload)
    except ValueError:
        raise DPoPError(INVALID_PROOF, "DPoP proof payload is not JSON") from None
    if not isinstance(data, dict):
        raise DPoPError(INVALID_PROOF, "DPoP proof payload is not an object")
    return data


def challenge_headers(verifier: DPoPVerifier, error: DPoPError) -> dict[str, str]:
    """The API's 401 headers for a refused proof (RFC 9449 §7.1, §9)."""
    headers = {
        "WWW-Authenticate": (
            f'DPoP algs="{" ".join(PROOF_ALGORITHMS)}", error="{error.error}", '
            f'error_description="{error.description}"'
        )
    }
    if error.error == NONCE_ERROR:
        headers["DPoP-Nonce"] = verifier.nonce
    return headers
