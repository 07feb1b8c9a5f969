"""The fail-open token cache's bypass window ends: after ``retry_after`` seconds the shared
cache (a real Redis) is read and written again, and while the window lasts it is left alone.

Redis is down at first (nothing listens on its port), then started on that port. The window's
clock is the module's ``time.monotonic``: one test moves it by hand (no wait at all), the other
uses a 1-second window and waits, on the cache's own ``bypassed`` flag, until it ends."""

from __future__ import annotations

import logging
import time
import types
from collections.abc import Iterator

import pytest

from airflow_provider_oauthcc.auth.cache import fail_open as cache_fail_open
from airflow_provider_oauthcc.auth.cache.crypto import TokenCipher
from airflow_provider_oauthcc.auth.cache.fail_open import FailOpenCache
from airflow_provider_oauthcc.auth.cache.redis import RedisTokenCache, close_clients
from airflow_provider_oauthcc.auth.token import Token
from tests.support import redis_server as redis_support

pytestmark = pytest.mark.integration

KEY = "oauthcc-test-key"
CIPHER = TokenCipher(b"s3cret-Value-fail-open-window")


def _token(value: str) -> Token:
    now = time.time()
    return Token(value, "Bearer", expires_at=now + 3600, obtained_at=now)


class Redis:
    """A redis-server on a port chosen now and started later (so that it is down first)."""

    def __init__(self) -> None:
        self.port = redis_support.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.server: redis_support.RedisServer | None = None

    def start(self, monkeypatch: pytest.MonkeyPatch) -> None:
        with monkeypatch.context() as patch:
            patch.setattr(redis_support, "free_port", lambda: self.port)
            self.server = redis_support.RedisServer()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@pytest.fixture
def redis() -> Iterator[Redis]:
    server = Redis()
    yield server
    close_clients()
    server.stop()


class Reads:
    """Counts the reads that reach the shared cache behind the fail-open wrapper."""

    def __init__(self, cache: FailOpenCache, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        inner_get = cache.inner.get

        def counted(key: str) -> Token | None:
            self.count += 1
            return inner_get(key)

        monkeypatch.setattr(cache.inner, "get", counted)


def test_the_shared_cache_is_used_again_once_the_window_is_over(
    redis: Redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    now = 1000.0
    clock = types.SimpleNamespace(monotonic=lambda: now)
    monkeypatch.setattr(cache_fail_open, "time", clock)
    cache = FailOpenCache(RedisTokenCache(redis.url, CIPHER), retry_after=30)
    reads = Reads(cache, monkeypatch)

    with caplog.at_level(logging.WARNING, logger=cache_fail_open.__name__):
        assert cache.get(KEY) is None  # Redis is down: one failed read opens the window
    assert reads.count == 1 and cache.bypassed
    assert "fetching tokens directly for the next 30 s" in caplog.text

    redis.start(monkeypatch)
    RedisTokenCache(redis.url, CIPHER).put(KEY, _token("shared-token"))  # another process
    now += 29.5
    cache.put(KEY, _token("not-written"))  # still in the window: neither read nor written
    assert cache.get(KEY) is None and reads.count == 1 and cache.bypassed

    now += 1.0  # the window is over
    assert not cache.bypassed
    found = cache.get(KEY)
    assert found is not None and found.access_token == "shared-token" and reads.count == 2
    cache.put(KEY, _token("written-after-the-window"))
    stored = RedisTokenCache(redis.url, CIPHER).get(KEY)
    assert stored is not None and stored.access_token == "written-after-the-window"


def test_a_short_window_ends_by_itself(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = FailOpenCache(RedisTokenCache(redis.url, CIPHER), retry_after=1.0)
    assert cache.get(KEY) is None  # Redis down: bypassed for 1 s
    redis.start(monkeypatch)
    RedisTokenCache(redis.url, CIPHER).put(KEY, _token("shared-token"))
    deadline = time.monotonic() + 60
    while cache.bypassed:  # the window's own flag, not a guess at its length
        assert time.monotonic() < deadline, "the bypass window never ended"
        time.sleep(0.05)
    found = cache.get(KEY)
    assert found is not None and found.access_token == "shared-token"
