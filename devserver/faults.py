"""Fault injection: make upcoming requests fail, or slow them down, on purpose.

Each server endpoint group (the token endpoint, the API) has its own ``FaultSet``.
For every request the set looks at its faults in the order they were added; every
fault counts the request, and the first one that is due fires (only that one uses
up one of its ``times``). A fault with ``status`` answers with that status instead
of serving the request; a fault with only ``delay`` sleeps and then serves normally; a
``reset`` fault serves the request but drops the connection half-way through the body.
A ``hold`` fault keeps the request waiting until the test calls ``release()`` (or
``hold_max`` seconds pass): slower than any client timeout, whatever the machine's load, and
``wait_held(n)`` lets the test wait until the server has ``n`` requests held.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field, fields
from typing import Any, Literal

FaultTarget = Literal["api", "token"]


@dataclass
class Fault:
    status: int | None = None
    #: Firings left; None means no limit.
    times: int | None = 1
    #: Fire on every k-th request this fault sees (1 = every request).
    every: int = 1
    delay: float = 0.0
    retry_after: int | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    #: Send the real response's headers and half its body, then drop the connection.
    reset: bool = False
    #: Keep the request waiting until ``release()`` (at most ``hold_max`` s), then fail/serve.
    hold: bool = False
    hold_max: float = 300.0
    seen: int = 0
    fired: int = 0
    _released: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    _held: threading.Condition = field(
        default_factory=threading.Condition, repr=False, compare=False
    )
    held: int = 0  # requests that started waiting on this fault so far

    def wait_here(self) -> None:
        """Called by the server for a request this fault fired on."""
        with self._held:
            self.held += 1
            self._held.notify_all()
        self._released.wait(self.hold_max)

    def wait_held(self, count: int = 1, timeout: float = 60.0) -> None:
        """Block until ``count`` requests are held by this fault (the server's signal)."""
        with self._held:
            if not self._held.wait_for(lambda: self.held >= count, timeout):
                raise TimeoutError(f"{self.held} request(s) held after {timeout} s, not {count}")

    def release(self) -> None:
        """Let every request held by this fault (and any later one) go on."""
        self._released.set()

    def _due(self) -> bool:
        return self.seen % self.every == 0

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: copy.deepcopy(getattr(self, f.name))
            for f in fields(self)
            if not f.name.startswith("_")
        }


class FaultSet:
    """The faults armed for one target. ``add`` and ``clear`` are safe to call
    from any thread while requests are in flight."""

    def __init__(self, target: FaultTarget) -> None:
        self.target = target
        self._faults: list[Fault] = []
        self._holds: list[Fault] = []  # hold faults, kept until cleared to release them
        self._lock = threading.Lock()

    def add(
        self,
        status: int | None = None,
        *,
        times: int | None = None,
        every: int | None = None,
        delay: float = 0.0,
        retry_after: int | str | None = None,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        reset: bool = False,
        hold: bool = False,
        hold_max: float = 300.0,
    ) -> Fault:
        """Arm a fault.

        - ``add(status=503, times=2)``: the next two requests get 503.
        - ``add(status=503, every=5)``: every 5th request gets 503 until cleared.
        - ``add(status=429, retry_after=1)``: the next request gets 429, ``Retry-After: 1``.
        - ``add(status=401)``: 401 with a ``WWW-Authenticate`` fitting the target.
        - ``add(delay=2.0)``: the next request is answered normally after 2 s.
        - ``add(hold=True)``: the next request waits until ``fault.release()``, then is
          answered normally (or with ``status``); ``fault.wait_held()`` waits for it to arrive.
        - ``add(status=307, headers={"Location": url})``: the next request is redirected.
        - ``add(reset=True, every=4)``: every 4th response stops half-way through its body
          (headers and ``Content-Length`` as usual) and its connection is closed.

        Without ``times`` a fault fires once, or forever when ``every`` is given.
        ``headers`` and ``body`` override the defaults of the fault response.
        """
        if reset and status is not None:
            raise ValueError("a reset fault cuts the real response; it takes no status")
        if status is None and delay <= 0 and not reset and not hold:
            raise ValueError("a fault needs a status, a delay, a hold, or a reset")
        if status is not None and 300 <= status <= 399:
            if not (headers or {}).get("Location"):
                raise ValueError("a 3xx fault needs a Location header")
        elif status is not None and not 400 <= status <= 599:
            raise ValueError("fault status must be a 3xx (with Location), 4xx or 5xx code")
        if every is not None and every < 1:
            raise ValueError("every must be >= 1")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1")
        if times is None and every is None:
            times = 1
        fault = Fault(
            status=status,
            times=times,
            every=every or 1,
            delay=delay,
            retry_after=retry_after,
            headers=dict(headers or {}),
            body=body,
            reset=reset,
            hold=hold,
            hold_max=hold_max,
        )
        with self._lock:
            self._faults.append(fault)
            if hold:
                self._holds.append(fault)
        return fault

    def clear(self) -> None:
        """Disarm every fault and release every held request."""
        with self._lock:
            self._faults.clear()
            holds, self._holds = self._holds, []
        for fault in holds:
            fault.release()

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self) -> Fault | None:
        """Count one request and return the fault that fires for it, if any."""
        if not self._faults:  # fast path for the common no-fault case
            return None
        with self._lock:
            chosen: Fault | None = None
            for fault in self._faults:
                fault.seen += 1
                if chosen is None and fault._due():
                    chosen = fault
                    fault.fired += 1
            self._faults = [f for f in self._faults if not f.exhausted]
            return chosen
