"""The request budget's decisions, without I/O: what a connection allows, how long a request
waits and why, what an answer teaches. The sync budget (:mod:`.rate_limit`) and the async one
(:mod:`.aio.rate_limit`) drive these over a store (this process's memory, or Redis).
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from airflow_provider_oauthcc.auth import metrics
from airflow_provider_oauthcc.auth.errors import OAuthCCError
from airflow_provider_oauthcc.auth.rate_limit_headers import Advice, advice_from

log = logging.getLogger("airflow_provider_oauthcc.auth.rate_limit")

# The longest a request waits for the budget when the task's own timeout is not known.
DEFAULT_MAX_WAIT = 900.0
# Waits from this long on are logged at INFO (shorter ones, the steady pacing, at DEBUG).
LOGGED_WAIT = 0.5
# A concurrency slot's lease outlives the request's own timeout by this much; a process killed
# while it held the slot frees it when the lease ends.
LEASE_MARGIN = 30.0

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+?)s?\s*$", re.IGNORECASE)


class WaitReason(enum.Enum):
    RATE_LIMIT = "rate_limit"
    API_HEADERS = "api_headers"
    PAUSED = "paused"


@dataclass(frozen=True)
class Reservation:
    """A store's answer: sleep ``wait`` seconds, then send (``granted``), or nothing was booked
    because the wait is longer than the caller can afford."""

    wait: float
    reason: WaitReason
    granted: bool


@dataclass(frozen=True)
class RateLimit:
    """``requests`` per ``period`` seconds, up to ``burst`` of them at once."""

    requests: float
    period: float
    burst: int = 1

    @property
    def interval(self) -> float:
        return self.period / self.requests

    @property
    def tolerance(self) -> float:
        return (self.burst - 1) * self.interval

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "min", 3600.0: "h", 86400.0: "day"}.get(self.period)
        text = f"{self.requests:g}/{unit}" if unit else f"{self.requests:g}/{self.period:g}s"
        return text if self.burst == 1 else f"{text} (burst {self.burst})"


def parse_rate_limit(value: str, burst: int | None = None) -> RateLimit:
    """``"10/s"``, ``"600/min"``, ``"5000/h"``, ``"100/10s"``; raises ValueError saying why."""
    match = _RATE.match(value)
    unit = _UNITS.get(match.group(3).lower()) if match else None
    if match is None or unit is None:
        raise ValueError(
            f"cannot read {value!r}: write requests per period, e.g. 10/s, 600/min or 5000/h"
        )
    requests = float(match.group(1))
    period = float(match.group(2) or 1) * unit
    if requests <= 0 or period <= 0:
        raise ValueError(f"{value!r} allows no request: the rate must be above 0")
    if burst is not None and burst < 1:
        raise ValueError("the burst must be at least 1")
    return RateLimit(requests, period, burst or 1)


@dataclass(frozen=True)
class BudgetSettings:
    """A connection's request budget: a rate, requests in flight, learning from the API."""

    rate_limit: RateLimit | None = None
    max_concurrency: int | None = None
    learn: bool = True

    @property
    def active(self) -> bool:
        return self.rate_limit is not None or self.max_concurrency is not None or self.learn


def budget_key(api_origin: str, identity: tuple[str, ...]) -> str:
    """The name of the budget of ``identity`` at ``api_origin``: a digest, so neither shows in
    a store."""
    text = json.dumps([api_origin, *identity], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class BudgetWaitError(OAuthCCError):
    """The request budget would make this request wait longer than it may."""


class BudgetStore(Protocol):
    @property
    def name(self) -> str: ...

    def reserve(
        self, key: str, interval: float, tolerance: float, max_wait: float
    ) -> Reservation: ...

    def pause(self, key: str, seconds: float) -> None: ...

    def narrow(self, key: str, interval: float, span: float) -> None: ...

    def acquire_slot(self, key: str, limit: int, lease: float, wait: float) -> str | None: ...

    def release_slot(self, key: str, slot: str, limit: int) -> None: ...


class BudgetPlan:
    """The decisions of one budget (one API origin and client identity).

    :param shown_origin: the API's origin as people write it, for messages.
    :param request_timeout: the requests' own timeout (seconds), for the concurrency lease.
    """

    def __init__(
        self,
        key: str,
        shown_origin: str,
        settings: BudgetSettings,
        *,
        request_timeout: float = 30.0,
        max_wait: float = DEFAULT_MAX_WAIT,
    ) -> None:
        self.key = key
        self.shown_origin = shown_origin
        self.settings = settings
        self.lease = request_timeout + LEASE_MARGIN
        self.max_wait = max_wait

    @property
    def interval(self) -> float:
        limit = self.settings.rate_limit
        return limit.interval if limit else 0.0

    @property
    def tolerance(self) -> float:
        limit = self.settings.rate_limit
        return limit.tolerance if limit else 0.0

    def affordable(self, seconds_left: float | None) -> float:
        """How long a request may wait: the task's time left, at most ``max_wait``."""
        return self.max_wait if seconds_left is None else max(0.0, min(seconds_left, self.max_wait))

    def waited(self, reservation: Reservation, affordable: float) -> float:
        """The seconds to sleep for ``reservation``; raises BudgetWaitError when it was refused."""
        if not reservation.granted:
            raise BudgetWaitError(
                f"the request budget of {self.shown_origin} would make this request wait "
                f"{reservation.wait:.1f} s ({self.why(reservation.reason)}), more than the "
                f"{affordable:.1f} s it may wait (the task's timeout, or at most "
                f"{self.max_wait:g} s)"
            )
        wait = max(0.0, reservation.wait)
        if wait > 0:
            metrics.timing(metrics.BUDGET_WAIT, wait)
            level = logging.INFO if wait >= LOGGED_WAIT else logging.DEBUG
            if log.isEnabledFor(level):
                log.log(
                    level,
                    "Waiting %.2f s for the request budget of %s (%s)",
                    wait,
                    self.shown_origin,
                    self.why(reservation.reason),
                )
        return wait

    def no_slot(self, waited: float) -> BudgetWaitError:
        return BudgetWaitError(
            f"no request slot for {self.shown_origin} became free within {waited:.1f} s "
            f"(max_concurrency {self.settings.max_concurrency})"
        )

    def why(self, reason: WaitReason) -> str:
        if reason is WaitReason.PAUSED:
            return "the API asked every client sharing this budget to pause"
        if reason is WaitReason.API_HEADERS:
            return "pacing to the API's rate-limit headers"
        return f"rate_limit {self.settings.rate_limit}"

    def lesson(self, status: int, headers: Mapping[str, str]) -> Advice | None:
        """What an answer teaches the budget (None: nothing, or learning is off)."""
        if not self.settings.learn:
            return None
        advice = advice_from(status, headers)
        if advice is not None and advice.pause:
            metrics.incr(metrics.BUDGET_PAUSE)
            log.info(
                "Pausing every request to %s sharing this budget for %.1f s: %s",
                self.shown_origin,
                advice.pause,
                advice.reason,
            )
        return advice
