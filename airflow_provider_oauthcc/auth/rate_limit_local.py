"""LocalBudgetStore: the request budgets of this process (threads share them), no I/O.

The same arithmetic as the Redis store's script (GCRA with reservations: each call books the
next free slot and says how long to sleep until it), on this process's monotonic clock.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from airflow_provider_oauthcc.auth.rate_limit_core import Reservation, WaitReason


@dataclass
class _State:
    tat: float = 0.0  # theoretical arrival time of the next request (pacing)
    paused_until: float = 0.0
    learned_interval: float = 0.0
    learned_until: float = 0.0
    in_flight: int = 0


class LocalBudgetStore:
    """Budgets keyed by name, in this process's memory."""

    name = "local"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        # Event-loop waiters for a freed slot, by budget: called (once) at the next release.
        self._wakers: dict[str, list[Callable[[], None]]] = {}

    def _state(self, key: str) -> _State:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State()
        return state

    def reserve(self, key: str, interval: float, tolerance: float, max_wait: float) -> Reservation:
        with self._lock:
            return book(self._state(key), self._clock(), interval, tolerance, max_wait)

    def pause(self, key: str, seconds: float) -> None:
        with self._lock:
            state = self._state(key)
            state.paused_until = max(state.paused_until, self._clock() + seconds)

    def narrow(self, key: str, interval: float, span: float) -> None:
        with self._lock:
            state = self._state(key)
            state.learned_interval = interval
            state.learned_until = self._clock() + span

    def acquire_slot(self, key: str, limit: int, lease: float, wait: float) -> str | None:
        """A concurrency slot (its ID), or None after ``wait`` seconds without one. Threads
        of this process are woken when a slot is freed; ``lease`` matters only for the shared
        store (a process that dies here frees its slots with it)."""
        deadline = time.monotonic() + wait
        with self._slot_freed:
            state = self._state(key)
            while state.in_flight >= limit:
                left = deadline - time.monotonic()
                timed_out = left <= 0 or not self._slot_freed.wait(left)
                if timed_out and state.in_flight >= limit:
                    return None
            state.in_flight += 1
            return "local"

    def release_slot(self, key: str, slot: str, limit: int) -> None:
        with self._slot_freed:
            state = self._state(key)
            state.in_flight = max(0, state.in_flight - 1)
            self._slot_freed.notify()
            wakers = self._wakers.pop(key, [])
        for wake in wakers:
            wake()

    def on_release(self, key: str, wake: Callable[[], None]) -> None:
        """Call ``wake`` (once) when a slot of ``key`` is next released."""
        with self._lock:
            self._wakers.setdefault(key, []).append(wake)

    def try_slot(self, key: str, limit: int) -> str | None:
        """A concurrency slot now, or None (for event loops, which must not block)."""
        with self._lock:
            state = self._state(key)
            if state.in_flight >= limit:
                return None
            state.in_flight += 1
            return "local"

    def clear(self) -> None:
        with self._lock:
            self._states.clear()


def book(
    state: _State, now: float, interval: float, tolerance: float, max_wait: float
) -> Reservation:
    """Book the next slot of ``state`` at ``now``; nothing is booked when the wait would be
    longer than ``max_wait``."""
    reason = WaitReason.RATE_LIMIT
    if state.learned_until > now and state.learned_interval > interval:
        interval, tolerance, reason = state.learned_interval, 0.0, WaitReason.API_HEADERS
    start = now
    if state.paused_until > now:
        start, reason = state.paused_until, WaitReason.PAUSED
    if interval <= 0:
        wait = start - now
        return Reservation(wait, reason, granted=wait <= max_wait)
    tat = max(state.tat, start)
    send_at = max(tat - tolerance, start)
    wait = send_at - now
    if wait > max_wait:
        return Reservation(wait, reason, granted=False)
    state.tat = tat + interval
    return Reservation(wait, reason, granted=True)


# One store per process: every hook and thread of a process shares its budgets.
_process_store = LocalBudgetStore()


def process_budgets() -> LocalBudgetStore:
    """This process's store (a forked child starts with its own, empty one)."""
    return _process_store


def _fresh_after_fork() -> None:
    # A lock held by another thread at fork time would stay held in the child forever.
    global _process_store
    _process_store = LocalBudgetStore()


os.register_at_fork(after_in_child=_fresh_after_fork)
