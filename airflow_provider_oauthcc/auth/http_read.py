"""Read a response body with a size cap and a total deadline.

A token or discovery answer is small. A server that sends megabytes, or drips a byte at a time
(each read well inside the socket timeout), must not hold a worker, or the single-flight lock
that every other task is waiting on, for longer than the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from airflow_provider_oauthcc.auth.errors import ApiResponseTooLargeError, TokenRequestError

MAX_RESPONSE_BYTES = 1024 * 1024
READ_CHUNK = 64 * 1024


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


TooLarge = Callable[[str, int], Exception]


def api_too_large(message: str, size: int) -> Exception:
    return ApiResponseTooLargeError(message, size=size)


def _token_too_large(message: str, size: int) -> Exception:
    return ResponseTooLargeError(message)


class CappedBody:
    """Collects a body's parts, refusing it once it is, or declares to be, over ``limit``.

    The parts are counted as the reader hands them over, after decompression: a small
    compressed answer that expands past the cap is refused as soon as it does.
    Shared by the requests and the aiohttp readers, which differ only in how a part is read.
    """

    def __init__(
        self, what: str, limit: int = MAX_RESPONSE_BYTES, *, too_large: TooLarge = _token_too_large
    ) -> None:
        self.what = what
        self.limit = limit
        self.too_large = too_large
        self._parts: list[bytes] = []
        self._size = 0

    def check_declared(self, content_length: int | None) -> None:
        if content_length is not None and content_length > self.limit:
            raise self.too_large(
                f"{self.what} is too large ({content_length:,} bytes; at most {self.limit:,})",
                content_length,
            )

    def add(self, part: bytes) -> None:
        self._size += len(part)
        if self._size > self.limit:
            raise self.too_large(
                f"{self.what} is too large (over {self.limit:,} bytes)", self._size
            )
        self._parts.append(part)

    def content(self) -> bytes:
        return b"".join(self._parts)


def read_capped(
    response: requests.Response,
    *,
    what: str,
    deadline: float,
    limit: int = MAX_RESPONSE_BYTES,
    too_large: TooLarge = _token_too_large,
) -> bytes:
    """The body of a ``stream=True`` response; ``deadline`` is a ``time.monotonic()`` value."""
    body = CappedBody(what, limit, too_large=too_large)
    declared = response.headers.get("Content-Length", "")
    try:
        body.check_declared(int(declared) if declared.isdigit() else None)
        raw = response.raw
        while True:
            if time.monotonic() > deadline:
                raise ResponseTooSlowError(f"{what} did not arrive in full in time")
            # read1: whatever the socket has, not a full chunk, so a drip cannot stall here.
            part = raw.read1(READ_CHUNK, decode_content=True)
            if not part:
                return body.content()
            body.add(part)
    finally:
        response.close()


def read_into(
    response: requests.Response, *, what: str, limit: int, timeout: object
) -> requests.Response:
    """``response`` (sent with ``stream=True``) with its body read through the capped reader,
    as if requests had read it; ``timeout`` is the request's (s, (connect, read), or None)."""
    read = timeout[-1] if isinstance(timeout, tuple | list) else timeout
    seconds = float(read) if isinstance(read, int | float) else 300.0
    content = read_capped(
        response,
        what=what,
        deadline=time.monotonic() + attempt_deadline(seconds),
        limit=limit,
        too_large=api_too_large,
    )
    response._content = content
    return response
