"""Thread-safe request counters and request capture for both servers."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CapturedRequest:
    """One request as the server received it (the response status is attached)."""

    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, str]
    status: int
    timestamp: float
    client_id: str | None = None  # token requests: the client id the request claimed
    #: Client-side TCP port: requests sharing it came over one kept-alive connection.
    remote_port: int | None = None

    def contains(self, text: str) -> bool:
        """Whether ``text`` appears anywhere in the request (path, query, headers, body)."""
        haystack = " ".join(
            [self.path, self.query_string, *self.headers.values(), *self.form.values()]
        )
        return text in haystack or text.encode() in self.body


class Stats:
    """Counters and captures. Readers get copies, so they are safe to inspect while
    the servers keep running."""

    def __init__(self, capture: bool = True) -> None:
        #: Set to False for long benchmarks so captures do not grow without bound.
        self.capture_enabled = capture
        self._lock = threading.Lock()
        self._reset_unlocked()

    def _reset_unlocked(self) -> None:
        self._token_requests = 0
        self._token_ok_by_client: Counter[str] = Counter()
        self._token_failed_by_client: Counter[str] = Counter()
        self._token_ok = 0
        self._api_requests = 0
        self._api_by_status: Counter[int] = Counter()
        self._token_captures: list[CapturedRequest] = []
        self._api_captures: list[CapturedRequest] = []

    def reset(self) -> None:
        with self._lock:
            self._reset_unlocked()

    def record_token_request(self, request: CapturedRequest) -> None:
        client = request.client_id or ""
        with self._lock:
            self._token_requests += 1
            if request.status == 200:
                self._token_ok += 1
                self._token_ok_by_client[client] += 1
            else:
                self._token_failed_by_client[client] += 1
            if self.capture_enabled:
                self._token_captures.append(request)

    def record_api_request(self, request: CapturedRequest) -> None:
        with self._lock:
            self._api_requests += 1
            self._api_by_status[request.status] += 1
            if self.capture_enabled:
                self._api_captures.append(request)

    @property
    def token_requests(self) -> int:
        return self._token_requests

    @property
    def token_requests_ok(self) -> int:
        return self._token_ok

    @property
    def token_requests_failed(self) -> int:
        return self._token_requests - self._token_ok

    @property
    def token_requests_by_client(self) -> Counter[str]:
        """Token requests per claimed client id (a missing id counts under "")."""
        with self._lock:
            return self._token_ok_by_client + self._token_failed_by_client

    @property
    def token_requests_ok_by_client(self) -> Counter[str]:
        with self._lock:
            return self._token_ok_by_client.copy()

    @property
    def token_requests_failed_by_client(self) -> Counter[str]:
        with self._lock:
            return self._token_failed_by_client.copy()

    @property
    def api_requests(self) -> int:
        return self._api_requests

    @property
    def api_requests_by_status(self) -> Counter[int]:
        with self._lock:
            return self._api_by_status.copy()

    @property
    def token_captures(self) -> list[CapturedRequest]:
        with self._lock:
            return list(self._token_captures)

    @property
    def api_captures(self) -> list[CapturedRequest]:
        with self._lock:
            return list(self._api_captures)

    def snapshot(self) -> dict[str, Any]:
        """Counters as JSON-ready data (no captures)."""
        with self._lock:
            by_client = self._token_ok_by_client + self._token_failed_by_client
            return {
                "token_requests": self._token_requests,
                "token_requests_ok": self._token_ok,
                "token_requests_failed": self._token_requests - self._token_ok,
                "token_requests_by_client": dict(by_client),
                "token_requests_ok_by_client": dict(self._token_ok_by_client),
                "token_requests_failed_by_client": dict(self._token_failed_by_client),
                "api_requests": self._api_requests,
                "api_requests_by_status": {str(k): v for k, v in self._api_by_status.items()},
            }
