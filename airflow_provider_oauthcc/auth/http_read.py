"""Read a response body with a size cap and a total deadline.

A token or discovery answer is small. A server that sends megabytes, or drips a byte at a time
(each read well inside the socket timeout), must not hold a worker, or the single-flight lock
that every other task is waiting on, for longer than the deadline.
"""

from __future__ import annotations

import time

import requests

from airflow_provider_oauthcc.auth.errors import TokenRequestError

MAX_RESPONSE_BYTES = 1024 * 1024
_CHUNK = 64 * 1024


def attempt_deadline(timeout: float) -> float:
    """Seconds one request may take from sending to the last byte of the answer.

    The socket timeouts bound each connect and each read; this bounds the whole body, which a
    server could otherwise drip-feed one byte per read. The last read may block one more
    ``timeout`` past it.
    """
    return 2 * timeout


class ResponseTooLargeError(TokenRequestError):
    """The body is larger than the cap."""


class ResponseTooSlowError(TokenRequestError):
    """The body did not arrive within the deadline."""


def read_capped(
    response: requests.Response,
    *,
    what: str,
    deadline: float,
    limit: int = MAX_RESPONSE_BYTES,
) -> bytes:
    """The body of a ``stream=True`` response; ``deadline`` is a ``time.monotonic()`` value."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise ResponseTooLargeError(f"{what} is too large ({declared} bytes)")
    raw = response.raw
    parts: list[bytes] = []
    size = 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise ResponseTooSlowError(f"{what} did not arrive in full in time")
            # read1: whatever the socket has, not a full chunk, so a drip cannot stall here.
            part = raw.read1(_CHUNK, decode_content=True)
            if not part:
                break
            size += len(part)
            if size > limit:
                raise ResponseTooLargeError(f"{what} is too large (over {limit} bytes)")
            parts.append(part)
    finally:
        response.close()
    return b"".join(parts)
