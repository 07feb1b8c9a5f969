"""An old entry put back into the file or Redis cache is refused: someone who can write the
store cannot bring back a token the API rejected, or one the cache has moved past."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE, TokenCache
from airflow_provider_oauthcc.auth.cache.factory import make_token_cache
from airflow_provider_oauthcc.auth.cache.redis import _entry_name
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.provider import TokenProvider
from airflow_provider_oauthcc.auth.token import Token
from tests.support.redis_server import redis_server, redis_url

from .cache_support import CountingClient, config, token

__all__ = ["redis_server", "redis_url"]  # fixtures

Snapshot = Callable[[], Callable[[], None]]  # copies the entry now; returns what puts it back


class Store:
    def __init__(self, cfg: ClientConfig, cache: TokenCache, snapshot: Snapshot) -> None:
        self.config, self.cache, self.snapshot = cfg, cache, snapshot
        self.key = cfg.cache_key


@pytest.fixture(params=["file", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "file":
        cfg = config(cache_backend="file", cache_dir=str(tmp_path / "cache"))
        folder = tmp_path / "cache"

        def file_snapshot() -> Callable[[], None]:
            (entry,) = folder.glob("*.token")
            saved = entry.read_bytes()
            return lambda: entry.write_bytes(saved)

        yield Store(cfg, make_token_cache(cfg), file_snapshot)
        return
    url = request.getfixturevalue("redis_url")
    cfg = config(cache_backend="redis")
    raw = redis.Redis.from_url(url)

    def redis_snapshot() -> Callable[[], None]:
        name = _entry_name(cfg.cache_key)
        saved = raw.get(name)
        assert saved is not None
        return lambda: raw.set(name, saved, ex=3600)

    try:
        yield Store(cfg, make_token_cache(cfg, redis_url=url), redis_snapshot)
    finally:
        raw.close()


def _token(value: str, obtained_ago: float, lifetime: float) -> Token:
    obtained = time.time() - obtained_ago
    return Token(value, "Bearer", expires_at=obtained + lifetime, obtained_at=obtained)


def test_an_invalidated_token_put_back_is_refused(store: Store) -> None:
    rejected = token("tok-the-api-rejected")
    store.cache.put(store.key, rejected)
    put_back = store.snapshot()
    assert store.cache.invalidate(store.key, rejected)

    put_back()

    assert store.cache.get(store.key) is None
    client = CountingClient()
    provider = TokenProvider(store.config, cache=store.cache, client=client)  # type: ignore[arg-type]
    assert provider.get_token().access_token != "tok-the-api-rejected"
    assert client.calls == 1


def test_an_entry_older_than_one_seen_is_refused(store: Store) -> None:
    # The old entry lives longer than the newer one, whose refresh is due: only its age
    # tells them apart.
    old = _token("tok-old-long-lived", obtained_ago=100, lifetime=3600)
    newer = _token("tok-newer-due-for-refresh", obtained_ago=59, lifetime=60)
    store.cache.put(store.key, old)
    put_back = store.snapshot()
    store.cache.put(store.key, newer)

    put_back()

    got = store.cache.get(store.key)
    assert got is not None and got.access_token == "tok-newer-due-for-refresh"


def test_entries_as_they_come_are_used(store: Store) -> None:
    first = _token("tok-first", obtained_ago=30, lifetime=3600)
    store.cache.put(store.key, first)
    assert store.cache.get(store.key) == first
    # Written by another process (not through this one's memory): newer, so used.
    PROCESS_CACHE.clear()
    second = _token("tok-second", obtained_ago=1, lifetime=3600)
    store.cache.shared.put(store.key, second)  # type: ignore[attr-defined]
    got = store.cache.get(store.key)
    assert got is not None and got.access_token == "tok-second"
