"""Token caches: where a valid token waits between uses.

Every backend offers the same operations. ``lock`` is what makes a cold cache fetch once:
callers re-check the cache inside it before fetching. ``try_lock`` takes the same lock without
waiting (or returns None): the event loop polls it, so that no thread ever waits for a lock on
the loop's behalf. Every lock wait is bounded, and process-wide locks are made anew in a forked
child, where a thread of the parent may have held them.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from airflow_provider_oauthcc.auth.token import Token

# Longer than the longest token fetch with its retries (client.fetch_budget at the default
# 30 s timeout): a waiter gives up only on a holder that is stuck.
DEFAULT_LOCK_WAIT = 600.0

Release = Callable[[], None]


class TokenCacheError(Exception):
    """A shared cache could not be used; callers fail open (see cache_fail_open)."""


class TokenCache(Protocol):
    @property
    def name(self) -> str:
        """Backend name for logs: memory, file, redis."""
        ...

    def get(self, key: str) -> Token | None: ...

    def put(self, key: str, token: Token) -> None: ...

    def invalidate(self, key: str, token: Token) -> bool:
        """Drop the entry only if it still holds ``token`` (compare before delete)."""
        ...

    def lock(self, key: str) -> AbstractContextManager[None]: ...

    def try_lock(self, key: str) -> Release | None:
        """Take the lock if it is free now and return its release, else None."""
        ...


class MemoryTokenCache:
    """Per-process cache shared by every hook instance and thread in the process."""

    name = "memory"

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._locks = KeyedLocks()
        self._guard = threading.Lock()
        _FORK_SAFE.add(self)

    def get(self, key: str) -> Token | None:
        return self._tokens.get(key)

    def put(self, key: str, token: Token) -> None:
        self._tokens[key] = token

    def invalidate(self, key: str, token: Token) -> bool:
        with self._guard:
            current = self._tokens.get(key)
            if current is not None and current.access_token == token.access_token:
                del self._tokens[key]
                return True
            return False

    @contextmanager
    def lock(self, key: str, wait: float = DEFAULT_LOCK_WAIT) -> Iterator[None]:
        key_lock = self._locks[key]
        if not key_lock.acquire(timeout=wait):
            raise TokenCacheError(f"timed out after {wait:g} s waiting for another thread's fetch")
        try:
            yield
        finally:
            key_lock.release()

    def try_lock(self, key: str) -> Release | None:
        key_lock = self._locks[key]
        return key_lock.release if key_lock.acquire(blocking=False) else None

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()

    def _reset_after_fork(self) -> None:
        self._guard = threading.Lock()


class KeyedLocks:
    """One thread lock per name, created on first use; all made anew in a forked child."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        _FORK_SAFE.add(self)

    def __getitem__(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def _reset_after_fork(self) -> None:
        # The child has one thread: whatever a parent thread held is held by nobody here.
        self._guard = threading.Lock()
        self._locks = {}


class _ForkSafe:
    """Objects whose ``_reset_after_fork`` runs in every forked child (one hook for all)."""

    def __init__(self) -> None:
        self._owners: weakref.WeakSet[Any] = weakref.WeakSet()
        os.register_at_fork(after_in_child=self._reset_all)

    def add(self, owner: Any) -> None:
        self._owners.add(owner)

    def _reset_all(self) -> None:
        for owner in list(self._owners):
            owner._reset_after_fork()


_FORK_SAFE = _ForkSafe()


PROCESS_CACHE = MemoryTokenCache()
