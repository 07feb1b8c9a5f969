"""A per-client rate limit on the API, as SaaS gateways enforce one, and what it saw.

``ApiRateLimit.configure(per_second=N)``: every client (the token's ``client_id``) gets a token
bucket of ``burst`` requests (default N) refilled at N per second; a request beyond it gets 429
with ``Retry-After`` and the rate-limit headers. Every answer carries the headers, in the style
chosen: ``"draft"`` (``RateLimit-Limit`` / ``-Remaining`` / ``-Reset``), ``"structured"``
(``RateLimit`` and ``RateLimit-Policy``), ``"x"`` (``X-RateLimit-*``, reset as a Unix time) or
``"none"``. Counted per client whether or not a limit is set: requests admitted and refused,
the times of the admitted ones, and the most requests in flight at once.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from flask import Blueprint, Response, g

HeaderStyle = Literal["draft", "structured", "x", "none"]


@dataclass
class ClientCounts:
    admitted: int = 0
    refused: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    admitted_at: list[float] = field(default_factory=list)

    def rate(self) -> float:
        """Admitted requests per second over the span of the admitted ones."""
        if len(self.admitted_at) < 2:
            return 0.0
        span = self.admitted_at[-1] - self.admitted_at[0]
        return (len(self.admitted_at) - 1) / span if span > 0 else float("inf")

    def snapshot(self) -> dict[str, Any]:
        return {
            "admitted": self.admitted,
            "refused": self.refused,
            "max_in_flight": self.max_in_flight,
            "rate": self.rate(),
        }


@dataclass
class _Bucket:
    tokens: float
    updated: float


class ApiRateLimit:
    def __init__(self) -> None:
        self.per_second: float | None = None
        self.burst: float = 0.0
        self.header_style: HeaderStyle = "draft"
        self._buckets: dict[str, _Bucket] = {}
        self._counts: dict[str, ClientCounts] = {}
        self._lock = threading.Lock()
        # Tests that count tokens exactly replace it: a loaded machine's requests take time.
        self.clock: Callable[[], float] = time.monotonic

    def configure(
        self,
        per_second: float | None,
        *,
        burst: float | None = None,
        headers: HeaderStyle = "draft",
    ) -> None:
        """Limit each client to ``per_second`` (None: no limit, headers off) and zero the counts."""
        with self._lock:
            self.per_second = per_second
            self.burst = burst if burst is not None else (per_second or 0.0)
            self.header_style = headers
            self._buckets.clear()
            self._counts.clear()

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._counts.clear()

    def counts(self, client_id: str) -> ClientCounts:
        with self._lock:
            counts = self._counts.get(client_id, ClientCounts())
            return ClientCounts(
                counts.admitted,
                counts.refused,
                counts.in_flight,
                counts.max_in_flight,
                list(counts.admitted_at),
            )

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {client: counts.snapshot() for client, counts in self._counts.items()}

    def enter(self, client_id: str) -> tuple[bool, dict[str, str]]:
        """Count a request of ``client_id`` in flight; whether it is admitted, and the headers
        its answer carries."""
        now = self.clock()
        with self._lock:
            counts = self._counts.setdefault(client_id, ClientCounts())
            counts.in_flight += 1
            counts.max_in_flight = max(counts.max_in_flight, counts.in_flight)
            if self.per_second is None:
                counts.admitted += 1
                counts.admitted_at.append(now)
                return True, {}
            bucket = self._bucket(client_id, now)
            admitted = bucket.tokens >= 1.0
            if admitted:
                bucket.tokens -= 1.0
                counts.admitted += 1
                counts.admitted_at.append(now)
            else:
                counts.refused += 1
            return admitted, self._headers(bucket, admitted)

    def leave(self, client_id: str) -> None:
        with self._lock:
            counts = self._counts.get(client_id)
            if counts is not None:
                counts.in_flight -= 1

    def _bucket(self, client_id: str, now: float) -> _Bucket:
        assert self.per_second is not None
        bucket = self._buckets.get(client_id)
        if bucket is None:
            bucket = self._buckets[client_id] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.per_second)
        bucket.updated = now
        return bucket

    def _headers(self, bucket: _Bucket, admitted: bool) -> dict[str, str]:
        assert self.per_second is not None
        limit = math.floor(self.burst)
        remaining = math.floor(bucket.tokens)
        reset = math.ceil((self.burst - bucket.tokens) / self.per_second)
        headers: dict[str, str] = {}
        if not admitted:
            headers["Retry-After"] = str(max(1, math.ceil((1 - bucket.tokens) / self.per_second)))
        if self.header_style == "draft":
            headers["RateLimit-Limit"] = str(limit)
            headers["RateLimit-Remaining"] = str(remaining)
            headers["RateLimit-Reset"] = str(reset)
        elif self.header_style == "structured":
            window = max(1, math.ceil(self.burst / self.per_second))
            headers["RateLimit-Policy"] = f'"default";q={limit};w={window}'
            headers["RateLimit"] = f'"default";r={remaining};t={reset}'
        elif self.header_style == "x":
            headers["X-RateLimit-Limit"] = str(limit)
            headers["X-RateLimit-Remaining"] = str(remaining)
            headers["X-RateLimit-Reset"] = str(math.ceil(time.time() + reset))
        return headers


def install(blueprint: Blueprint, limit: ApiRateLimit) -> None:
    """Apply ``limit`` to ``blueprint``'s requests; register after the bearer-token check (it
    reads the client from ``g.claims``)."""

    @blueprint.before_request
    def _admit() -> Response | None:
        claims = g.get("claims") or {}
        client_id = str(claims.get("client_id") or claims.get("sub") or "")
        g.rate_limit_client = client_id
        admitted, headers = limit.enter(client_id)
        g.rate_limit_headers = headers
        if admitted:
            return None
        from devserver.instrument import json_response

        body = {"error": "too_many_requests", "error_description": "rate limit exceeded"}
        return json_response(body, 429, headers)

    @blueprint.after_request
    def _headers(response: Response) -> Response:
        for name, value in (g.get("rate_limit_headers") or {}).items():
            response.headers.setdefault(name, value)
        return response

    @blueprint.teardown_request
    def _leave(_exc: BaseException | None) -> None:
        client_id = g.get("rate_limit_client")
        if client_id is not None:
            limit.leave(client_id)


def create_control_blueprint(limit: ApiRateLimit) -> Blueprint:
    """``/_control/rate_limit`` (loopback callers only): GET the counts per client; PUT
    ``{"per_second": 20, "burst": 20, "headers": "draft"}`` to configure (and zero the counts),
    ``{"per_second": null}`` to count without limiting."""
    from flask import abort, request

    from devserver.control import LOOPBACK
    from devserver.instrument import json_response

    bp = Blueprint("rate_limit_control", __name__, url_prefix="/_control/rate_limit")

    @bp.before_request
    def loopback_only() -> None:
        if request.remote_addr not in LOOPBACK:
            abort(403)

    @bp.get("")
    def counts() -> Response:
        return json_response({"per_second": limit.per_second, "clients": limit.snapshot()})

    @bp.put("")
    def configure() -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return json_response({"error": "invalid_request"}, 400)
        per_second, burst = body.get("per_second"), body.get("burst")
        headers = body.get("headers", "draft")
        numbers_ok = all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool) and v > 0)
            for v in (per_second, burst)
        )
        if not numbers_ok or headers not in ("draft", "structured", "x", "none"):
            return json_response({"error": "invalid_request"}, 400)
        limit.configure(per_second, burst=burst, headers=headers)
        return json_response({"per_second": limit.per_second, "burst": limit.burst})

    return bp
