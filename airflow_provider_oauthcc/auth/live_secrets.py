"""The rotating credentials still valid in this process, and a log filter that hides them.

Access tokens and client assertions expire; once expired they open nothing, so there is no
reason to remember them. ``LiveSecrets`` holds each until its expiry and never more than
``limit`` of them: its memory and the cost of redacting one line depend on how many tokens are
valid now, not on how many the process has ever seen (unlike a masker that keeps every value
for the life of the process).

``LiveSecretsFilter`` applies the set to the records of the HTTP client libraries' loggers
(urllib3, requests, aiohttp), the code that could log a request we made with a token in it.
A logger's filter costs nothing while that logger's level is off: records below the level are
never made.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable

MASK = "***"
DEFAULT_LIMIT = 10_000
#: Every logger urllib3, requests and aiohttp log requests and connections with (a logger's
#: filters do not apply to its children's records, so each is named).
HTTP_CLIENT_LOGGERS = (
    "urllib3",
    "urllib3.connection",
    "urllib3.connectionpool",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
    "urllib3.http2.connection",
    "urllib3.contrib.pyopenssl",
    "requests",
    "aiohttp.client",
    "aiohttp.internal",
    "aiohttp.websocket",
)
_MIN_SIGNATURE = 16
#: Shorter values cannot be told from ordinary text (Airflow's masker skips them too).
MIN_LENGTH = 5


class LiveSecrets:
    """A bounded set of secrets, each forgotten at its expiry (the soonest first when full)."""

    def __init__(self, limit: int = DEFAULT_LIMIT, clock: Callable[[], float] = time.time) -> None:
        self._limit = limit
        self._clock = clock
        self._expiry: dict[str, float] = {}
        self._by_expiry: list[tuple[float, str]] = []  # a heap; may hold superseded entries
        self._longest_first: tuple[str, ...] | None = ()  # None: to be sorted again
        self._lock = threading.Lock()

    def add(self, secret: str, expires_at: float) -> bool:
        """Hold ``secret`` (and a JWT's signature) until ``expires_at``; False if already held
        until then or later, or already expired."""
        with self._lock:
            self._forget_expired()
            if len(secret) < MIN_LENGTH or expires_at <= self._clock():
                return False
            if self._expiry.get(secret, 0.0) >= expires_at:
                return False
            for value in _forms(secret):
                self._expiry[value] = max(expires_at, self._expiry.get(value, 0.0))
                heapq.heappush(self._by_expiry, (expires_at, value))
            self._longest_first = None
            while len(self._expiry) > self._limit:
                self._forget_first()
            if len(self._by_expiry) > 2 * len(self._expiry) + 16:
                self._by_expiry = [(at, value) for value, at in self._expiry.items()]
                heapq.heapify(self._by_expiry)
            return True

    def __contains__(self, secret: str) -> bool:
        with self._lock:
            return self._expiry.get(secret, 0.0) > self._clock()

    def __len__(self) -> int:
        """How many values are held (expired ones included until the next add or redact)."""
        with self._lock:
            return len(self._expiry)

    def redact(self, text: str) -> str:
        """``text`` with every live secret replaced by ``***`` (the same object if none is in it)."""
        if not self._expiry:
            return text
        with self._lock:
            self._forget_expired()
            if self._longest_first is None:
                # A token before its signature.
                self._longest_first = tuple(sorted(self._expiry, key=len, reverse=True))
            values = self._longest_first
        for value in values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def clear(self) -> None:
        with self._lock:
            self._expiry.clear()
            self._by_expiry.clear()
            self._longest_first = ()

    def _forget_expired(self) -> None:
        now = self._clock()
        while self._by_expiry and self._by_expiry[0][0] <= now:
            self._forget_first()

    def _forget_first(self) -> None:
        at, value = heapq.heappop(self._by_expiry)
        if self._expiry.get(value) == at:
            del self._expiry[value]
            self._longest_first = None


def _forms(secret: str) -> tuple[str, ...]:
    """The secret, and a JWT's signature alone (what makes the readable rest usable)."""
    parts = secret.split(".")
    if len(parts) == 3 and len(parts[2]) >= _MIN_SIGNATURE:
        return secret, parts[2]
    return (secret,)


class LiveSecretsFilter(logging.Filter):
    """Rewrites a record whose message or traceback holds a live secret; drops nothing."""

    def __init__(self, secrets: LiveSecrets) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.secrets.redact(message)
        if redacted is not message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.secrets.redact(record.exc_text)
        return True


def install_filter(
    log_filter: logging.Filter, logger_names: tuple[str, ...] = HTTP_CLIENT_LOGGERS
) -> None:
    """Add ``log_filter`` to each logger, once (loggers made later by name get it too)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if log_filter not in logger.filters:
            logger.addFilter(log_filter)
