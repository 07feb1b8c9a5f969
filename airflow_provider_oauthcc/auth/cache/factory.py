"""Builds the token cache a connection asks for (its ``cache_backend`` extra)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow_provider_oauthcc.auth import metrics
from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE, TokenCache
from airflow_provider_oauthcc.auth.config import ClientConfig

log = logging.getLogger(__name__)

RedisUrl = str | Callable[[], str]
# A function returning a redis-py client (typed loosely: redis is imported only when used).
RedisClient = Callable[[], Any]


def make_token_cache(
    config: ClientConfig,
    *,
    redis_url: RedisUrl | None = None,
    redis_client: RedisClient | None = None,
    cache_dir: str | Path | None = None,
) -> TokenCache:
    """The cache for ``config.cache_backend``.

    ``memory`` is the process-wide cache. ``file`` and ``redis`` are shared, encrypted and fail
    open, behind the process cache.

    ``redis``: ``redis_client`` is a function returning a redis-py client, or ``redis_url`` a
    URL or a function returning one; called on first use (the Airflow hooks resolve the Redis
    connection there, through the Redis provider). ``file``: the connection's ``cache_dir``,
    else ``cache_dir`` (the Airflow hooks pass Airflow's configured folder), else
    ``default_cache_dir()``.

    If a shared cache cannot be set up (no credential to derive its key from, no Redis), this
    logs a WARNING and returns the process cache: a cache never fails a task.
    """
    if config.cache_backend == "memory":
        return PROCESS_CACHE
    try:
        shared = _shared_cache(config, redis_url, redis_client, cache_dir)
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


LOCK_MARGIN = 10.0


def lock_hold_budget(config: ClientConfig) -> float:
    """How long a shared lock lives: a fetch holds it, so it must outlive the longest one,
    retries included, and, when the token endpoint comes from the issuer, the discovery that
    runs first inside the lock (one request per metadata URL, not retried)."""
    from airflow_provider_oauthcc.auth.client import fetch_budget
    from airflow_provider_oauthcc.auth.discovery import metadata_urls
    from airflow_provider_oauthcc.auth.http_read import attempt_deadline

    budget = fetch_budget(config.timeout)
    if config.token_url is None and config.issuer:
        per_request = attempt_deadline(config.timeout) + config.timeout
        budget += len(metadata_urls(config.issuer)) * per_request
    return budget + LOCK_MARGIN


def _shared_cache(
    config: ClientConfig,
    redis_url: RedisUrl | None,
    redis_client: RedisClient | None,
    cache_dir: str | Path | None,
) -> TokenCache:
    from airflow_provider_oauthcc.auth.cache.crypto import TokenCipher, credential_of

    lock_timeout = lock_hold_budget(config)
    cipher = TokenCipher(credential_of(config))
    if config.cache_backend == "file":
        from airflow_provider_oauthcc.auth.cache.file import FileTokenCache, default_cache_dir

        directory = Path(config.cache_dir or cache_dir or default_cache_dir())
        if not directory.is_absolute():
            raise ValueError(f"the token cache folder must be an absolute path, not {directory}")
        return FileTokenCache(directory, cipher, lock_timeout=lock_timeout)
    if config.cache_backend == "redis":
        from airflow_provider_oauthcc.auth.cache.redis import RedisTokenCache

        if redis_client is not None:
            return RedisTokenCache(None, cipher, client=redis_client, lock_timeout=lock_timeout)
        if redis_url is None:
            raise ValueError("no Redis URL was given")
        return RedisTokenCache(redis_url, cipher, lock_timeout=lock_timeout)
    raise ValueError(f"unknown backend {config.cache_backend!r}")
