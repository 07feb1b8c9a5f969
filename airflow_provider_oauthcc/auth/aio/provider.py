"""AsyncTokenProvider: TokenProvider for an event loop (the triggerer).

Same caches and the same decisions (:class:`~airflow_provider_oauthcc.auth.provider.TokenPolicy`)
as the sync provider; what differs is who waits. Nothing here lets a thread wait for the loop,
or the loop wait for a thread that waits:

- coroutines of one loop that miss together wait on one asyncio lock per token (one request);
- the cache's own lock (thread, file or Redis lock, which another process may hold) is taken
  with ``try_lock`` in short thread calls, the loop sleeping between attempts, for a bounded
  time; the fetch itself runs on the loop, bounded by the client's longest possible duration;
- setup that reads files or parses keys (cache key, cipher, client authentication) runs once
  in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from typing import TypeVar

from airflow_provider_oauthcc.auth.aio.client import AsyncTokenClient
from airflow_provider_oauthcc.auth.cache import (
    DEFAULT_LOCK_WAIT,
    MemoryTokenCache,
    Release,
    TokenCache,
)
from airflow_provider_oauthcc.auth.cache.factory import make_token_cache
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import TokenRequestError
from airflow_provider_oauthcc.auth.provider import TokenPolicy
from airflow_provider_oauthcc.auth.token import Token

log = logging.getLogger(__name__)
T = TypeVar("T")

# One asyncio lock per (event loop, token): an asyncio lock belongs to one loop.
_loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)
_FIRST_PAUSE = 0.02
_MAX_PAUSE = 0.25


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
        lock_wait: float = DEFAULT_LOCK_WAIT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._clock = clock
        self._cache = cache
        self._client = client
        self._lock_wait = lock_wait
        self._key: str | None = None
        self._policy: TokenPolicy | None = None
        self._setup: asyncio.Lock | None = None

    async def get_token(self) -> Token:
        key, cache, client, policy = await self._ready()
        token = await self._cached(cache, key)
        if policy.usable(token):
            assert token is not None
            return await policy.ahand_out(token, hit=True)
        async with _loop_lock(key):
            # Another coroutine of this loop may have fetched while this one waited.
            token = await self._cached(cache, key)
            if policy.usable(token):
                assert token is not None
                return await policy.ahand_out(token, hit=True)
            release = await self._acquire(cache, key, policy)
            try:
                token = await _run(cache, cache.get, key)
                if policy.usable(token):
                    assert token is not None
                    return await policy.ahand_out(token, hit=True)
                return await self._fetch(cache, key, client, policy, stale=token)
            finally:
                if release is not None:
                    await _run(cache, release)

    async def invalidate(self, token: Token) -> None:
        """Forget ``token`` after the API rejected it, unless the cache already moved on."""
        key, cache, _, policy = await self._ready()
        policy.remember(token)
        await _run(cache, cache.invalidate, key, token)

    def secret_forms(self) -> tuple[str, ...]:
        """See :meth:`TokenPolicy.secret_forms` (the secrets alone before the first token)."""
        if self._policy is None:
            return self.config.secret_forms
        return self._policy.secret_forms()

    @property
    def cache(self) -> TokenCache:
        if self._cache is None:
            raise RuntimeError("the cache is built on first use, in get_token()")
        return self._cache

    async def _ready(self) -> tuple[str, TokenCache, AsyncTokenClient, TokenPolicy]:
        if self._key is None:
            if self._setup is None:
                self._setup = asyncio.Lock()
            async with self._setup:
                if self._key is None:
                    await asyncio.to_thread(self._prepare)
        assert self._cache is not None and self._client is not None and self._policy is not None
        assert self._key is not None
        return self._key, self._cache, self._client, self._policy

    def _prepare(self) -> None:
        """In a thread: reads certificate and key files, parses keys, imports crypto."""
        if self._cache is None:
            self._cache = make_token_cache(self.config)
        if self._client is None:
            self._client = AsyncTokenClient(self.config)
        self._policy = TokenPolicy(self.config, self._cache, self._clock)
        self._key = self.config.cache_key

    async def _cached(self, cache: TokenCache, key: str) -> Token | None:
        memory = cache if isinstance(cache, MemoryTokenCache) else _memory_layer(cache)
        if memory is not None:
            token = memory.get(key)
            if token is not None and token.is_fresh():
                return token
        return await _run(cache, cache.get, key)

    async def _acquire(self, cache: TokenCache, key: str, policy: TokenPolicy) -> Release | None:
        """The cache's lock, polled without blocking; None (fetch without it) after lock_wait."""
        deadline = time.monotonic() + self._lock_wait
        pause = _FIRST_PAUSE
        while True:
            try:
                release = await _run(cache, cache.try_lock, key)
            except Exception as exc:
                policy.lock_unavailable(exc)
                return None
            if release is not None:
                return release
            if time.monotonic() >= deadline:
                policy.lock_unavailable(TimeoutError(f"still held after {self._lock_wait:g} s"))
                return None
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE)

    async def _fetch(
        self,
        cache: TokenCache,
        key: str,
        client: AsyncTokenClient,
        policy: TokenPolicy,
        stale: Token | None,
    ) -> Token:
        started = policy.missed()
        try:
            async with asyncio.timeout(client.max_duration):
                token = await client.fetch_token()
        except TokenRequestError as exc:
            return await policy.ahand_out(policy.fall_back(exc, stale), hit=False)
        except TimeoutError:
            error = TokenRequestError(
                f"token request did not complete within {client.max_duration:g} s"
            )
            return await policy.ahand_out(policy.fall_back(error, stale), hit=False)
        await _run(cache, cache.put, key, token)
        policy.fetched(token, started, client.known_token_url)
        return await policy.ahand_out(token, hit=False)


async def _run(cache: TokenCache, function: Callable[..., T], *args: object) -> T:
    """Memory-cache calls run on the loop (they never block); file and Redis in a thread."""
    if isinstance(cache, MemoryTokenCache):
        return function(*args)
    return await asyncio.to_thread(function, *args)


def _memory_layer(cache: TokenCache) -> MemoryTokenCache | None:
    """The process-memory layer in front of a shared cache (LayeredTokenCache.local)."""
    local = getattr(cache, "local", None)
    return local if isinstance(local, MemoryTokenCache) else None
