"""The federated client assertion a platform writes to a file (workload identity).

Kubernetes projected service-account tokens, Microsoft Entra workload identity's
``AZURE_FEDERATED_TOKEN_FILE`` and similar are signed JWTs that the platform rewrites before
they expire. The file is read again for every token request, so a rotated assertion is used
without a restart. Its claims are read without verifying the signature (the authorization
server verifies it): only to refuse an expired assertion with a clear message, and to name the
identity in the cache key. Nothing read from the file is ever put in a message.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import UTC, datetime
from typing import Any

from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError

FIELD = "client_assertion_file"
MAX_ASSERTION_BYTES = 64 * 1024


def read_assertion(path: str, *, now: float | None = None) -> tuple[str, dict[str, Any]]:
    """The assertion in ``path`` and its (unverified) claims; raises OAuthCCConfigError when the
    file cannot be read, holds no JWT, or the JWT has expired."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_ASSERTION_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OAuthCCConfigError(
            FIELD, f"cannot read the assertion file {path} ({reason})"
        ) from None
    if len(raw) > MAX_ASSERTION_BYTES:
        raise OAuthCCConfigError(FIELD, f"{path} is larger than an assertion (64 KiB)")
    try:
        assertion = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise OAuthCCConfigError(FIELD, f"{path} does not hold a JWT (not ASCII)") from None
    claims = _unverified_claims(assertion, path)
    expires = claims.get("exp")
    if isinstance(expires, int | float) and not isinstance(expires, bool):
        current = time.time() if now is None else now
        if expires <= current:
            when = datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds")
            raise OAuthCCConfigError(
                FIELD,
                f"the assertion in {path} expired at {when} ({int(current - expires)} s ago); "
                "the platform that writes it has not rotated it (is the workload identity "
                "set up for this pod?)",
            )
    return assertion, claims


def assertion_identity(path: str) -> bytes:
    """Who the assertion in ``path`` vouches for: the path, issuer, subject and audience (not
    the assertion, which rotates), for the token's cache key."""
    _, claims = read_assertion(path)
    named = [path, *(claims.get(name) for name in ("iss", "sub", "aud"))]
    return json.dumps(named, sort_keys=True, default=str).encode()


def _unverified_claims(assertion: str, path: str) -> dict[str, Any]:
    parts = assertion.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise OAuthCCConfigError(FIELD, f"{path} does not hold a JWT (header.payload.signature)")
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError):
        raise OAuthCCConfigError(FIELD, f"{path} does not hold a JWT (unreadable claims)") from None
    if not isinstance(claims, dict):
        raise OAuthCCConfigError(FIELD, f"{path} does not hold a JWT (claims are not an object)")
    return claims
