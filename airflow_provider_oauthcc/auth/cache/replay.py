"""What this process has seen of each shared cache entry, to refuse an old one put back.

Entries in a file or Redis cache are sealed with the connection's credential, so no one
without it can forge one; but whoever can write the store can put back an entry copied
earlier: a token the API has since rejected, or one the cache has moved past. Per cache key,
this process remembers the newest ``obtained_at`` it has seen and the newest token it
invalidated, and refuses entries older than the first or not newer than the second.

Per process: a process that starts after the replay has nothing to compare with (the API's
401 then invalidates the token, and from then on it is refused). Clocks: ``obtained_at`` is
the fetching worker's clock, so a token from a worker whose clock is behind may be refused
once; this process then fetches its own.
"""

from __future__ import annotations

from airflow_provider_oauthcc.auth.token import Token


class SeenEntries:
    def __init__(self) -> None:
        self._newest: dict[str, float] = {}
        self._invalidated: dict[str, float] = {}

    def admit(self, key: str, token: Token) -> bool:
        """Whether ``token``, read from a shared cache, may be used; it is then seen."""
        if token.obtained_at <= self._invalidated.get(key, float("-inf")):
            return False
        if token.obtained_at < self._newest.get(key, float("-inf")):
            return False
        self.saw(key, token)
        return True

    def saw(self, key: str, token: Token) -> None:
        self._newest[key] = max(token.obtained_at, self._newest.get(key, float("-inf")))

    def invalidated(self, key: str, token: Token) -> None:
        self.saw(key, token)
        previous = self._invalidated.get(key, float("-inf"))
        self._invalidated[key] = max(token.obtained_at, previous)

    def clear(self) -> None:
        self._newest.clear()
        self._invalidated.clear()


SEEN_ENTRIES = SeenEntries()
