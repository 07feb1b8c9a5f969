"""AsyncTokenProvider: TokenProvider for an event loop (the triggerer).

The same design as :class:`~airflow_provider_oauthcc.auth.provider.TokenProvider` over the same
caches (memory, file, redis): a cache hit returns at once; a miss fetches under the cache's lock
after re-checking the cache, so a cold cache costs one token request per process (memory), per
machine (file) or per deployment (redis).

Within one event loop, the coroutines that miss together wait on one asyncio lock per token, so
100 triggers starting on a cold cache make one request. The cache's own lock (a thread lock, a
file lock, a Redis lock) is taken in a worker thread, never on the loop: another thread or
process may hold it for the length of a token request. File and Redis reads run in threads too.
Secrets are registered with the log masker on the loop, never from those threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from typing import TypeVar

from airflow_provider_oauthcc.auth import masking, metrics
from airflow_provider_oauthcc.auth.async_client import AsyncTokenClient
from airflow_provider_oauthcc.auth.cache import MemoryTokenCache, TokenCache
from airflow_provider_oauthcc.auth.cache_factory import make_token_cache
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import TokenRequestError
from airflow_provider_oauthcc.auth.token import Token

log = logging.getLogger(__name__)
T = TypeVar("T")

# One asyncio lock per (event loop, token): an asyncio lock belongs to one loop.
_loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _loop_lock(key: str) -> asyncio.Lock:
    locks = _loop_locks.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(key, asyncio.Lock())


class AsyncTokenProvider:
    def __init__(
        self,
        config: ClientConfig,
        *,
        cache: TokenCache | None = None,
        client: AsyncTokenClient | None = None,
    ) -> None:
        self.config = config
        self.cache: TokenCache = cache if cache is not None else make_token_cache(config)
        self.client = client or AsyncTokenClient(config)
        self._key = config.cache_key
        # The in-process layer, readable on the loop without blocking.
        local = self.cache if isinstance(self.cache, MemoryTokenCache) else None
        self._memory: MemoryTokenCache | None = local or _memory_layer(self.cache)
        self._blocking = not isinstance(self.cache, MemoryTokenCache)

    async def get_token(self) -> Token:
        token = await self._cached()
        if token is not None and token.is_fresh():
            return self._hit(token)
        async with _loop_lock(self._key):
            # Another coroutine of this loop may have fetched while this one waited.
            token = await self._cached()
            if token is not None and token.is_fresh():
                return self._hit(token)
            loop = asyncio.get_running_loop()
            token = await asyncio.to_thread(self._get_or_fetch_locked, loop)
            # Masked here, on the loop: Airflow's masker talks to the triggerer's supervisor,
            # which a worker thread must not do on every Airflow version.
            masking.mask(token.access_token)
            return token

    async def invalidate(self, token: Token) -> None:
        """Forget ``token`` after the API rejected it, unless the cache already moved on."""
        await self._run(self.cache.invalidate, self._key, token)

    async def _cached(self) -> Token | None:
        if self._memory is not None:
            token = self._memory.get(self._key)
            if token is not None and token.is_fresh():
                return token
        if not self._blocking:
            return self.cache.get(self._key)
        return await asyncio.to_thread(self.cache.get, self._key)

    def _get_or_fetch_locked(self, loop: asyncio.AbstractEventLoop) -> Token:
        """In a worker thread: the cache's lock, a re-check, and a fetch on the loop if needed."""
        with self.cache.lock(self._key):
            # Another thread or process may have fetched while this one waited for the lock.
            token = self.cache.get(self._key)
            if token is not None and token.is_fresh():
                metrics.incr(metrics.CACHE_HIT)
                return token
            metrics.incr(metrics.CACHE_MISS)
            return self._fetch(loop, stale=token)

    def _fetch(self, loop: asyncio.AbstractEventLoop, stale: Token | None) -> Token:
        started = time.perf_counter()
        try:
            token = asyncio.run_coroutine_threadsafe(self.client.fetch_token(), loop).result()
        except TokenRequestError as exc:
            metrics.incr(metrics.FETCH_ERROR)
            if stale is not None and stale.expires_at > time.time():
                log.warning(
                    "Token refresh for client %s failed (%s); using the current token, valid %d s more",
                    self.config.client_id,
                    exc,
                    stale.expires_in(),
                )
                return stale
            raise
        metrics.timing(metrics.FETCH_LATENCY, time.perf_counter() - started)
        metrics.incr(metrics.FETCH)
        self.cache.put(self._key, token)
        log.info(
            "Fetched an OAuth token for client %s in the triggerer (expires in %d s, cache %s)",
            self.config.client_id,
            token.expires_in(),
            self.cache.name,
        )
        return token

    def _hit(self, token: Token) -> Token:
        masking.mask(token.access_token)
        metrics.incr(metrics.CACHE_HIT)
        return token

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        if self._blocking:
            return await asyncio.to_thread(function, *args)
        return function(*args)


def _memory_layer(cache: TokenCache) -> MemoryTokenCache | None:
    """The process-memory layer in front of a shared cache (LayeredTokenCache.local)."""
    local = getattr(cache, "local", None)
    return local if isinstance(local, MemoryTokenCache) else None
