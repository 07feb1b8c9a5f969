"""Token: an access token with its expiry, and the parsing of token-endpoint answers."""

from __future__ import annotations

import base64
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_oauthcc.auth.errors import TokenRequestError, TokenResponseError

# Refresh early by a tenth of the lifetime, at most 5 minutes, and at least 1 s (servers count
# expiry in whole seconds) unless that is more than half the lifetime: a 1-hour token is renewed
# 5 minutes before expiry, a 60-second token 6 s before, a 2-second one 1 s before.
EARLY_REFRESH_FRACTION = 0.1
EARLY_REFRESH_MAX = 300.0
EARLY_REFRESH_MIN = 1.0
# Longer lifetimes are cut to this: a token is fetched again at least daily, and nothing
# overflows a Redis TTL or makes a cache file immortal.
MAX_TOKEN_LIFETIME = 86400.0


@dataclass(frozen=True)
class Token:
    access_token: str = field(repr=False)
    token_type: str
    expires_at: float
    """Epoch seconds, counted from when the request was sent (never later than the real expiry)."""
    obtained_at: float
    scope: str | None = None
    dpop_jwk: str | None = field(default=None, repr=False)
    """The private JWK (JSON) of the DPoP key the token is bound to; None for a bearer token."""

    @property
    def lifetime(self) -> float:
        return self.expires_at - self.obtained_at

    @property
    def refresh_at(self) -> float:
        lifetime = max(self.lifetime, 0.0)
        floor = min(EARLY_REFRESH_MIN, lifetime / 2)
        margin = min(max(lifetime * EARLY_REFRESH_FRACTION, floor), EARLY_REFRESH_MAX)
        return self.expires_at - margin

    def is_fresh(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.refresh_at

    def expires_in(self, now: float | None = None) -> int:
        return max(0, int(self.expires_at - (time.time() if now is None else now)))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "obtained_at": self.obtained_at,
            "scope": self.scope,
        }
        if self.dpop_jwk is not None:
            data["dpop_jwk"] = self.dpop_jwk
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Token:
        return cls(
            access_token=str(data["access_token"]),
            token_type=str(data["token_type"]),
            expires_at=float(data["expires_at"]),
            obtained_at=float(data["obtained_at"]),
            scope=data.get("scope"),
            dpop_jwk=data.get("dpop_jwk"),
        )


def parse_token_response(
    *,
    status: int,
    content_type: str,
    body: bytes,
    sent_at: float,
    default_expires_in: float,
    requested_scope: str | None = None,
) -> Token:
    """Turn a token-endpoint answer into a Token, or raise a TokenRequestError saying why not."""
    payload = _json_object(body) if _looks_like_json(content_type, body) else None
    if not 200 <= status < 300:
        raise _error_from_response(status, content_type, payload)
    if payload is None:
        raise TokenResponseError(
            f"token endpoint answered HTTP {status} with {content_type or 'no content type'}, "
            "not a JSON token response (a proxy or login page in the way?)",
            status=status,
        )
    access_token = payload.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise TokenResponseError("token response has no access_token", status=status)
    token_type = payload.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() not in ("bearer", "dpop"):
        shown = token_type if isinstance(token_type, str) and len(token_type) < 40 else "missing"
        raise TokenResponseError(
            f"token response has token_type {shown!r}; only Bearer and DPoP tokens are supported",
            status=status,
        )
    lifetime = _lifetime(payload.get("expires_in"), access_token, sent_at, default_expires_in)
    scope = payload.get("scope")
    return Token(
        access_token=access_token,
        token_type="DPoP" if token_type.lower() == "dpop" else "Bearer",
        expires_at=sent_at + lifetime,
        obtained_at=sent_at,
        scope=scope if isinstance(scope, str) else requested_scope,
    )


def _looks_like_json(content_type: str, body: bytes) -> bool:
    return "json" in content_type.lower() or body.lstrip()[:1] == b"{"


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _error_from_response(
    status: int, content_type: str, payload: dict[str, Any] | None
) -> TokenRequestError:
    error = payload.get("error") if payload else None
    if isinstance(error, str) and error:
        description = _short(payload.get("error_description")) if payload else None
        uri = _short(payload.get("error_uri")) if payload else None
        message = f"token endpoint refused the request: {_short(error)} (HTTP {status})"
        if description:
            message += f": {description}"
        from airflow_provider_oauthcc.auth.errors import CREDENTIAL_ERRORS, TokenRequestRejected

        # A refusal no retry can cure fails the task at once (AirflowFailException).
        error_class = TokenRequestRejected if error in CREDENTIAL_ERRORS else TokenRequestError
        return error_class(
            message,
            status=status,
            error=_short(error),
            error_description=description,
            error_uri=uri,
        )
    kind = (
        "JSON without an 'error' field"
        if payload is not None
        else content_type or "no content type"
    )
    return TokenRequestError(f"token endpoint answered HTTP {status} ({kind})", status=status)


def _short(value: Any, limit: int = 300) -> str | None:
    if not isinstance(value, str):
        return None
    return value if len(value) <= limit else value[:limit] + "…"


def _lifetime(expires_in: Any, access_token: str, sent_at: float, default: float) -> float:
    """Seconds of validity from ``sent_at``.

    A JWT's ``exp`` is what the API checks, and servers round it down to whole seconds, so it
    can come up to a second before ``sent_at + expires_in``: the earlier of the two wins. An
    ``exp`` already in the past means the clocks disagree; then ``expires_in`` alone counts.
    """
    seconds = _expires_in(expires_in)
    exp = jwt_expiry(access_token)
    jwt_seconds = exp - sent_at if exp is not None and exp > sent_at else None
    if seconds is None:
        lifetime = jwt_seconds if jwt_seconds is not None else default
    else:
        lifetime = min(seconds, jwt_seconds) if jwt_seconds is not None else seconds
    return min(lifetime, MAX_TOKEN_LIFETIME)


def _expires_in(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    seconds = math.nan if isinstance(value, bool) else _float(value)
    if not (math.isfinite(seconds) and seconds > 0):
        # The value is not quoted: it is server text, and a piece of it cut short could be a
        # piece of a secret the scrubber no longer recognises.
        raise TokenResponseError(
            f"token response has an invalid expires_in (a {type(value).__name__}"
            f"{' of ' + str(len(value)) + ' characters' if isinstance(value, str) else ''}, "
            "not a positive number of seconds)"
        )
    return seconds


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def jwt_expiry(access_token: str) -> float | None:
    """The ``exp`` claim of a JWT access token, read without verifying (we are not its audience)."""
    parts = access_token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, UnicodeDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, int | float) and not isinstance(exp, bool) and math.isfinite(exp):
        return float(exp)
    return None
