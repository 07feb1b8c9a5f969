"""TokenProvider: a valid access token on demand, from the cache or a single-flight fetch."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from airflow_provider_oauthcc.auth import masking, metrics
from airflow_provider_oauthcc.auth.cache import TokenCache
from airflow_provider_oauthcc.auth.cache_factory import make_token_cache
from airflow_provider_oauthcc.auth.client import TokenClient
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import TokenRequestError
from airflow_provider_oauthcc.auth.token import Token

log = logging.getLogger(__name__)


class TokenProvider:
    def __init__(
        self,
        config: ClientConfig,
        *,
        cache: TokenCache | None = None,
        client: TokenClient | None = None,
    ) -> None:
        self.config = config
        self.cache: TokenCache = cache if cache is not None else make_token_cache(config)
        self.client = client or TokenClient(config)
        self._key = config.cache_key

    def get_token(self) -> Token:
        token = self.cache.get(self._key)
        if token is not None and token.is_fresh():
            return self._hit(token)
        with self.cache.lock(self._key):
            # Another thread or process may have fetched while this one waited for the lock.
            token = self.cache.get(self._key)
            if token is not None and token.is_fresh():
                return self._hit(token)
            metrics.incr(metrics.CACHE_MISS)
            return self._fetch(stale=token)

    def invalidate(self, token: Token) -> None:
        """Forget ``token`` after the API rejected it, unless the cache already moved on."""
        self.cache.invalidate(self._key, token)

    def _hit(self, token: Token) -> Token:
        masking.mask(token.access_token)
        metrics.incr(metrics.CACHE_HIT)
        return token

    def _fetch(self, stale: Token | None) -> Token:
        started = time.perf_counter()
        try:
            token = self.client.fetch_token()
        except TokenRequestError as exc:
            metrics.incr(metrics.FETCH_ERROR)
            if stale is not None and stale.expires_at > time.time():
                # Inside the early-refresh window the old token is still good: ride out an
                # identity-provider outage on it rather than fail the task.
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
            "Fetched an OAuth token for client %s from %s (expires in %d s, cache %s)",
            self.config.client_id,
            _host(self.client.token_url),
            token.expires_in(),
            self.cache.name,
        )
        return token


def _host(url: str) -> str:
    return urlsplit(url).netloc
