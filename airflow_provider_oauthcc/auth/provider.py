"""TokenProvider: a valid access token on demand, from the cache or a single-flight fetch.

The decisions (is the cached token fresh? a fetch failed: is the old token still good enough?
what is counted, logged and masked?) live in :class:`TokenPolicy`, shared with the asyncio
provider (``async_provider``); the providers only move tokens between cache and client.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager

from airflow_provider_oauthcc.auth import masking, metrics
from airflow_provider_oauthcc.auth.cache import TokenCache, TokenCacheError
from airflow_provider_oauthcc.auth.cache.factory import make_token_cache
from airflow_provider_oauthcc.auth.client import TokenClient
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.egress import shown
from airflow_provider_oauthcc.auth.errors import TokenRequestError
from airflow_provider_oauthcc.auth.token import Token

log = logging.getLogger(__name__)


class TokenPolicy:
    """What the sync and async providers decide alike, for one connection's token."""

    # Tokens this provider handed out or saw rejected: what a server may echo back in an
    # error, scrubbed from every message built from its answers. Bounded: old ones are long
    # expired and no longer worth hiding.
    REMEMBERED_TOKENS = 8

    def __init__(
        self, config: ClientConfig, cache: TokenCache, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.cache = cache
        self.clock = clock  # epoch seconds: when a token is due for refresh, or expired
        self._tokens: deque[str] = deque(maxlen=self.REMEMBERED_TOKENS)

    def remember(self, token: Token) -> None:
        if token.access_token not in self._tokens:
            self._tokens.append(token.access_token)

    def secret_forms(self) -> tuple[str, ...]:
        """The connection's secrets in every form a server may echo them, and the tokens
        handed out or rejected lately: what every server-derived text is scrubbed of."""
        return (*self._tokens, *self.config.secret_forms)

    def usable(self, token: Token | None) -> bool:
        # A DPoP-bound token without its key cannot be used (and is never sent as Bearer).
        bound_without_key = token is not None and token.token_type == "DPoP" and not token.dpop_jwk
        return token is not None and not bound_without_key and token.is_fresh(self.clock())

    def hand_out(self, token: Token, *, hit: bool) -> Token:
        """Every token handed to a sync caller passes here: masked before anything can log it."""
        masking.mask_token(token.access_token, token.expires_at)
        return self._counted(token, hit)

    async def ahand_out(self, token: Token, *, hit: bool) -> Token:
        """``hand_out`` on an event loop (the triggerer): held in the live set until it expires,
        not handed to Airflow's masker, whose cost grows with every value it keeps."""
        masking.hold_token(token.access_token, token.expires_at)
        return self._counted(token, hit)

    def missed(self) -> float:
        metrics.incr(metrics.CACHE_MISS)
        return time.perf_counter()

    def fetched(self, token: Token, started: float, token_url: str | None) -> Token:
        metrics.timing(metrics.FETCH_LATENCY, time.perf_counter() - started)
        metrics.incr(metrics.FETCH)
        log.info(
            "Fetched an OAuth token for client %s from %s (expires in %d s, cache %s)",
            self.config.client_id,
            shown(token_url).partition("://")[2] if token_url else "the issuer's token endpoint",
            token.expires_in(self.clock()),
            self.cache.name,  # read now: a fail-open cache says when it is bypassed
        )
        return token

    def fall_back(self, error: TokenRequestError, stale: Token | None) -> Token:
        """The still-valid old token if there is one (an outage inside the early-refresh
        window is ridden out), else the error."""
        metrics.incr(metrics.FETCH_ERROR)
        if stale is None or stale.expires_at <= self.clock():
            raise error
        log.warning(
            "Token refresh for client %s failed (%s); using the current token, valid %d s more",
            self.config.client_id,
            error,
            stale.expires_in(self.clock()),
        )
        return stale

    def _counted(self, token: Token, hit: bool) -> Token:
        self.remember(token)
        if hit:
            metrics.incr(metrics.CACHE_HIT)
        return token

    def lock_unavailable(self, error: Exception) -> None:
        log.warning(
            "Token cache lock for client %s unavailable (%s); fetching without it",
            self.config.client_id,
            error,
        )


class TokenProvider:
    def __init__(
        self,
        config: ClientConfig,
        *,
        cache: TokenCache | None = None,
        client: TokenClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.cache: TokenCache = cache if cache is not None else make_token_cache(config)
        self.client = client or TokenClient(config)
        self.policy = TokenPolicy(config, self.cache, clock)
        self._key = config.cache_key

    def get_token(self) -> Token:
        token = self.cache.get(self._key)
        if self.policy.usable(token):
            assert token is not None
            return self.policy.hand_out(token, hit=True)
        lock: AbstractContextManager[None] | None = self.cache.lock(self._key)
        try:
            lock.__enter__()  # type: ignore[union-attr]
        except TokenCacheError as exc:
            self.policy.lock_unavailable(exc)
            lock = None
        try:
            return self._refresh()
        finally:
            if lock is not None:
                lock.__exit__(None, None, None)

    def invalidate(self, token: Token) -> None:
        """Forget ``token`` after the API rejected it, unless the cache already moved on."""
        self.policy.remember(token)
        self.cache.invalidate(self._key, token)

    def secret_forms(self) -> tuple[str, ...]:
        return self.policy.secret_forms()

    def _refresh(self) -> Token:
        # Another thread or process may have fetched while this one waited for the lock.
        token = self.cache.get(self._key)
        if self.policy.usable(token):
            assert token is not None
            return self.policy.hand_out(token, hit=True)
        started = self.policy.missed()
        try:
            fresh = self.client.fetch_token()
        except TokenRequestError as exc:
            return self.policy.hand_out(self.policy.fall_back(exc, stale=token), hit=False)
        self.cache.put(self._key, fresh)
        self.policy.fetched(fresh, started, self.client.token_url)
        return self.policy.hand_out(fresh, hit=False)
