"""FailOpenCache: a shared cache that never fails a task.

When the cache errs (Redis down, folder unwritable, lock timed out), it logs one WARNING and
is bypassed for ``retry_after`` seconds: tokens are fetched directly, still single-flight
among the threads of this process.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager

from airflow_provider_oauthcc.auth import metrics
from airflow_provider_oauthcc.auth.cache import KeyedLocks, Release, TokenCache
from airflow_provider_oauthcc.auth.redact import scrub, secret_forms
from airflow_provider_oauthcc.auth.token import Token

DEFAULT_RETRY_AFTER = 60.0

log = logging.getLogger(__name__)


class FailOpenCache:
    def __init__(
        self,
        inner: TokenCache,
        *,
        secrets: tuple[str, ...] = (),
        retry_after: float = DEFAULT_RETRY_AFTER,
    ) -> None:
        self.inner = inner
        self._secret_forms = secret_forms(secrets)
        self._retry_after = retry_after
        self._bypass_until = 0.0
        self._local_locks = KeyedLocks()

    @property
    def name(self) -> str:
        return f"{self.inner.name} (unavailable)" if self.bypassed else self.inner.name

    @property
    def bypassed(self) -> bool:
        return time.monotonic() < self._bypass_until

    def get(self, key: str) -> Token | None:
        if self.bypassed:
            return None
        try:
            return self.inner.get(key)
        except Exception as exc:
            self._failed("read", exc)
            return None

    def put(self, key: str, token: Token) -> None:
        if self.bypassed:
            return
        try:
            self.inner.put(key, token)
        except Exception as exc:
            self._failed("write", exc)

    def invalidate(self, key: str, token: Token) -> bool:
        if self.bypassed:
            return False
        try:
            return self.inner.invalidate(key, token)
        except Exception as exc:
            self._failed("invalidate", exc)
            return False

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        shared: AbstractContextManager[None] | None = None
        if not self.bypassed:
            try:
                shared = self.inner.lock(key)
                shared.__enter__()
            except Exception as exc:
                self._failed("lock", exc)
                shared = None
        if shared is None:
            with self._local_locks[key]:
                yield
            return
        # Only the shared lock's own errors are swallowed; the caller's (a failed fetch) pass.
        try:
            yield
        finally:
            try:
                shared.__exit__(None, None, None)
            except Exception as exc:
                self._failed("unlock", exc)

    def try_lock(self, key: str) -> Release | None:
        if not self.bypassed:
            try:
                return self.inner.try_lock(key)
            except Exception as exc:
                self._failed("lock", exc)
        local = self._local_locks[key]
        return local.release if local.acquire(blocking=False) else None

    def _failed(self, operation: str, exc: Exception) -> None:
        metrics.incr(metrics.CACHE_ERROR)
        self._bypass_until = time.monotonic() + self._retry_after
        log.warning(
            "Token cache '%s' failed to %s (%s); fetching tokens directly for the next %g s",
            self.inner.name,
            operation,
            self._describe(exc),
            self._retry_after,
        )

    def _describe(self, exc: Exception) -> str:
        text = scrub(str(exc), self._secret_forms)
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
