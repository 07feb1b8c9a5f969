"""LayeredTokenCache: the process's memory in front of a shared cache.

A task sends many requests and asks for the token before each; the shared store (a file to
decrypt, a Redis round trip) is read only when memory holds no fresh token. An entry older
than what this process has already seen for the key is refused (``replay``).
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager

from airflow_provider_oauthcc.auth.cache import (
    PROCESS_CACHE,
    MemoryTokenCache,
    Release,
    TokenCache,
)
from airflow_provider_oauthcc.auth.cache.replay import SEEN_ENTRIES, SeenEntries
from airflow_provider_oauthcc.auth.token import Token

log = logging.getLogger(__name__)


class LayeredTokenCache:
    def __init__(
        self,
        shared: TokenCache,
        local: MemoryTokenCache = PROCESS_CACHE,
        seen: SeenEntries = SEEN_ENTRIES,
    ) -> None:
        self.shared = shared
        self.local = local
        self.seen = seen

    @property
    def name(self) -> str:
        return self.shared.name

    def get(self, key: str) -> Token | None:
        local = self.local.get(key)
        if local is not None and local.is_fresh():
            return local
        shared = self.shared.get(key)
        if shared is not None and not self.seen.admit(key, shared):
            log.warning(
                "Ignoring the %s cache's token entry: it is older than one this process has "
                "already seen or invalidated (put back by someone who can write the cache?); "
                "fetching a new token",
                self.shared.name,
            )
            shared = None
        if shared is None or (local is not None and local.expires_at >= shared.expires_at):
            return local
        self.local.put(key, shared)
        return shared

    def put(self, key: str, token: Token) -> None:
        self.seen.saw(key, token)
        self.local.put(key, token)
        self.shared.put(key, token)

    def invalidate(self, key: str, token: Token) -> bool:
        self.seen.invalidated(key, token)
        self.local.invalidate(key, token)
        return self.shared.invalidate(key, token)

    def lock(self, key: str) -> AbstractContextManager[None]:
        return self.shared.lock(key)

    def try_lock(self, key: str) -> Release | None:
        return self.shared.try_lock(key)
