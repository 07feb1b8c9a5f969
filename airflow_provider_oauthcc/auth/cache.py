"""Token caches: where a valid token waits between uses.

Every backend offers the same four operations. ``lock`` is what makes a cold cache fetch
once: callers re-check the cache inside it before fetching.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from airflow_provider_oauthcc.auth.token import Token


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


class MemoryTokenCache:
    """Per-process cache shared by every hook instance and thread in the process."""

    name = "memory"

    def __init__(self) -> None:
        self._tokens: dict[str, Token] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

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
    def lock(self, key: str) -> Iterator[None]:
        with self._guard:
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            yield

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()


PROCESS_CACHE = MemoryTokenCache()


class KeyedLocks:
    """One thread lock per name, created on first use."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __getitem__(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())
