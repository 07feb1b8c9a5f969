"""What a trigger hands back to the task: an API answer or an error, as JSON-ready data.

A trigger event is stored in the metadata database until the task resumes, so it carries the
answer (status, headers, body) and, for an error, its type and fields: never a token or a
secret. The task turns it back into a ``requests.Response`` or into the exception it stands
for, of the same class as the sync path raises.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict

from airflow_provider_oauthcc.auth import masking
from airflow_provider_oauthcc.auth.errors import (
    ApiConnectionError,
    ApiError,
    ApiResponseTooLargeError,
    ApiUnauthorizedError,
    OAuthCCConfigError,
    OAuthCCError,
    OriginNotAllowedError,
    TokenRequestError,
    TokenRequestRejected,
    TokenResponseError,
)
from airflow_provider_oauthcc.auth.redact import scrub, secret_forms

SUCCESS = "success"
ERROR = "error"
TIMEOUT = "timeout"
# The answer was too large for an event: the task sends the request again from the worker.
TOO_LARGE = "too_large"

# An answer body larger than this is not handed back through the metadata database (an event
# row holds it base64-encoded, a third larger, until the task resumes).
MAX_EVENT_BODY = 256 * 1024

# The classes an error event can name, most specific first.
_TEXT_LIMIT = 2000
_ERROR_CLASSES: tuple[type[OAuthCCError], ...] = (
    OriginNotAllowedError,
    ApiResponseTooLargeError,
    OAuthCCConfigError,
    TokenResponseError,
    TokenRequestRejected,
    TokenRequestError,
    ApiUnauthorizedError,
    ApiError,
    ApiConnectionError,
    OAuthCCError,
)


# The answer is too large to travel back from the triggerer in a trigger event (raised while
# it is read, at the cap, or when it is encoded).
ResponseTooLargeError = ApiResponseTooLargeError


def too_large_error(size: int, *, exact: bool = True) -> ResponseTooLargeError:
    """The error of an answer too large for an event, saying what to do instead."""
    return ResponseTooLargeError(
        f"the API answered {'' if exact else 'at least '}{size:,} bytes, more "
        f"than the {MAX_EVENT_BODY:,} a trigger can hand back to the task; call this endpoint "
        "without deferrable=True (with output=... to stream it to object storage)",
        size=size,
    )


def encode_response(response: requests.Response) -> dict[str, Any]:
    content = response.content or b""
    if len(content) > MAX_EVENT_BODY:
        raise too_large_error(len(content))
    return {
        "status_code": response.status_code,
        "reason": response.reason,
        "url": response.url,
        "headers": dict(response.headers),
        "encoding": response.encoding,
        "content": base64.b64encode(content).decode("ascii"),
    }


def too_large_event(error: ResponseTooLargeError) -> dict[str, Any]:
    """The event that hands the request back to the worker instead of the answer."""
    return {"status": TOO_LARGE, "size": error.size, "limit": MAX_EVENT_BODY}


def decode_response(data: dict[str, Any]) -> requests.Response:
    response = requests.Response()
    response.status_code = int(data["status_code"])
    response.reason = str(data.get("reason") or "")
    response.url = str(data.get("url") or "")
    response.headers = CaseInsensitiveDict(data.get("headers") or {})
    response.encoding = data.get("encoding")
    response._content = base64.b64decode(data.get("content") or "")
    return response


def response_digest(response: requests.Response) -> str:
    """Identifies an answer by its status and body (headers such as Date change every time)."""
    digest = hashlib.sha256(str(response.status_code).encode())
    digest.update(b"\n")
    digest.update(response.content or b"")
    return digest.hexdigest()


def encode_error(error: BaseException, secrets: tuple[str, ...] = ()) -> dict[str, Any]:
    """An error as data: its provider class and fields; other exceptions as OAuthCCError with
    their class name in the message. Known secrets are replaced by ***."""
    kind = next((c for c in _ERROR_CLASSES if isinstance(error, c)), None)
    message = str(error) if kind is not None else f"{type(error).__name__}: {error}"
    data: dict[str, Any] = {"type": (kind or OAuthCCError).__name__, "message": message}
    for name in (
        "field",
        "status",
        "error",
        "error_description",
        "error_uri",
        "request_sent",
        "origin",
        "size",
    ):
        value = getattr(error, name, None) if kind is not None else None
        if value is not None:
            data[name] = value
    forms = secret_forms(secrets)
    # Scrubbed before any cut: the event is stored in the metadata database.
    return {
        k: scrub(masking.LIVE.redact(v), forms, limit=_TEXT_LIMIT) if isinstance(v, str) else v
        for k, v in data.items()
    }


def decode_error(data: dict[str, Any]) -> OAuthCCError:
    """The exception an error event stands for."""
    kind = next((c for c in _ERROR_CLASSES if c.__name__ == data.get("type")), OAuthCCError)
    message = str(data.get("message") or "unknown error in the triggerer")
    if kind is OAuthCCConfigError:
        field = str(data.get("field") or "extra")
        return OAuthCCConfigError(
            field, message.removeprefix(f"OAuth connection field '{field}': ")
        )
    if issubclass(kind, TokenRequestError):
        return kind(
            message,
            status=data.get("status"),
            error=data.get("error"),
            error_description=data.get("error_description"),
            error_uri=data.get("error_uri"),
        )
    if issubclass(kind, ApiError):
        return kind(
            message,
            status=int(data.get("status") or 0),
            error=data.get("error"),
            error_description=data.get("error_description"),
        )
    if kind is OriginNotAllowedError:
        return OriginNotAllowedError(message, origin=str(data.get("origin") or ""))
    if kind is ApiResponseTooLargeError:
        return ApiResponseTooLargeError(message, size=int(data.get("size") or 0))
    if kind is ApiConnectionError:
        return ApiConnectionError(message, request_sent=bool(data.get("request_sent", True)))
    return kind(message)
