"""Token caches: memory (per process), file (per machine), Redis (per deployment), and the
layers around the shared ones (encryption, fail-open, the process cache in front)."""

from airflow_provider_oauthcc.auth.cache.base import (
    DEFAULT_LOCK_WAIT,
    PROCESS_CACHE,
    KeyedLocks,
    MemoryTokenCache,
    Release,
    TokenCache,
    TokenCacheError,
)

__all__ = [
    "DEFAULT_LOCK_WAIT",
    "PROCESS_CACHE",
    "KeyedLocks",
    "MemoryTokenCache",
    "Release",
    "TokenCache",
    "TokenCacheError",
]
