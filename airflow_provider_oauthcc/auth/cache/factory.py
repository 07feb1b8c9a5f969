"""Builds the token cache a connection asks for (its ``cache_backend`` extra)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from airflow_provider_oauthcc.auth import metrics
from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE, TokenCache
from airflow_provider_oauthcc.auth.config import ClientConfig

log = logging.getLogger(__name__)

RedisUrl = str | Callable[[], str]


def make_token_cache(config: ClientConfig, *, redis_url: RedisUrl | None = None) -> TokenCache:
    """The cache for ``config.cache_backend``.

    ``memory`` is the process-wide cache. ``file`` and ``redis`` are shared, encrypted and fail
    open, behind the process cache. ``redis_url`` is a URL or a function returning one, called
    on first use (the Airflow hook resolves a connection ID there). If a shared cache cannot be
    set up (no credential to derive its key from, no Redis URL), this logs a WARNING and
    returns the process cache: a cache never fails a task.
    """
    if config.cache_backend == "memory":
        return PROCESS_CACHE
    try:
        shared = _shared_cache(config, redis_url)
    except Exception as exc:
        metrics.incr(metrics.CACHE_ERROR)
        log.warning(
            "Token cache '%s' cannot be used (%s); using the in-process cache",
            config.cache_backend,
            exc,
        )
        return PROCESS_CACHE

    from airflow_provider_oauthcc.auth.cache.fail_open import FailOpenCache
    from airflow_provider_oauthcc.auth.cache.layered import LayeredTokenCache

    return LayeredTokenCache(FailOpenCache(shared, secrets=config.secrets))


def _shared_cache(config: ClientConfig, redis_url: RedisUrl | None) -> TokenCache:
    from airflow_provider_oauthcc.auth.cache.crypto import TokenCipher, credential_of
    from airflow_provider_oauthcc.auth.client import fetch_budget

    # A fetch holds the shared lock: it must not expire under the longest possible fetch.
    lock_timeout = fetch_budget(config.timeout) + 10

    cipher = TokenCipher(credential_of(config))
    if config.cache_backend == "file":
        from airflow_provider_oauthcc.auth.cache.file import FileTokenCache, default_cache_dir

        directory = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
        return FileTokenCache(directory, cipher, lock_timeout=lock_timeout)
    if config.cache_backend == "redis":
        from airflow_provider_oauthcc.auth.cache.redis import RedisTokenCache

        if redis_url is None:
            raise ValueError("no Redis URL was given")
        return RedisTokenCache(redis_url, cipher, lock_timeout=lock_timeout)
    raise ValueError(f"unknown backend {config.cache_backend!r}")
