"""RedisTokenCache against a real redis-server: encrypted values, TTL, expiring lock,
atomic compare-before-delete."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from airflow_provider_oauthcc.auth.cache import TokenCacheError
from airflow_provider_oauthcc.auth.cache.crypto import TokenCipher
from airflow_provider_oauthcc.auth.cache.redis import (
    _DELETE_IF_UNCHANGED,
    RedisTokenCache,
    _entry_name,
    _lock_name,
)
from tests.support.redis_server import free_port, redis_server, redis_url

from .cache_support import SECRET, config, token

__all__ = ["redis_server", "redis_url"]  # fixtures

KEY = config().cache_key


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def cache_at(url: str, secret: str = SECRET, **kwargs: float) -> RedisTokenCache:
    return RedisTokenCache(url, TokenCipher(secret.encode()), **kwargs)


def test_put_get_encrypted_with_the_token_lifetime(redis_url: str, raw: redis.Redis) -> None:
    cache = cache_at(redis_url)
    original = token("tok-in-redis-0007", lifetime=120)
    cache.put(KEY, original)

    assert cache.get(KEY) == original
    (name,) = raw.keys("*")
    assert name == _entry_name(KEY).encode()
    assert b"app" not in name and b"idp" not in name
    value = raw.get(name)
    assert value is not None
    for clear in (b"tok-in-redis-0007", SECRET.encode(), b"app", b"Bearer"):
        assert clear not in value
    assert 118_000 < raw.pttl(name) <= 120_000


def test_expired_token_is_not_stored(redis_url: str, raw: redis.Redis) -> None:
    cache_at(redis_url).put(KEY, token(lifetime=-1))
    assert raw.keys("*") == []


def test_foreign_or_corrupt_value_is_ignored(redis_url: str, raw: redis.Redis) -> None:
    cache_at(redis_url, secret="some-other-secret").put(KEY, token())
    assert cache_at(redis_url).get(KEY) is None
    raw.set(_entry_name(KEY), b"\x00garbage")
    assert cache_at(redis_url).get(KEY) is None


def test_invalidate_compares_before_delete(redis_url: str) -> None:
    cache = cache_at(redis_url)
    old, new = token("tok-old-1"), token("tok-new-2")
    cache.put(KEY, new)

    assert cache.invalidate(KEY, old) is False
    assert cache.get(KEY) == new
    assert cache.invalidate(KEY, new) is True
    assert cache.get(KEY) is None
    assert cache.invalidate(KEY, new) is False


def test_delete_is_atomic_on_the_encrypted_value(redis_url: str, raw: redis.Redis) -> None:
    """The value compared is the value deleted: a token written in between survives."""
    cache = cache_at(redis_url)
    cache.put(KEY, token("tok-seen"))
    seen = raw.get(_entry_name(KEY))
    cache.put(KEY, token("tok-written-meanwhile"))

    assert raw.eval(_DELETE_IF_UNCHANGED, 1, _entry_name(KEY), seen) == 0
    survivor = cache.get(KEY)
    assert survivor is not None and survivor.access_token == "tok-written-meanwhile"


def test_lock_excludes_other_clients_and_is_released(redis_url: str, raw: redis.Redis) -> None:
    first, second = cache_at(redis_url), cache_at(redis_url)
    entered = threading.Event()
    with first.lock(KEY):
        assert raw.exists(_lock_name(KEY))
        ttl = raw.pttl(_lock_name(KEY))
        assert 0 < ttl <= 600_000

        def other() -> None:
            with second.lock(KEY):
                entered.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert not entered.wait(0.2)
    assert entered.wait(2.0)
    thread.join()
    assert not raw.exists(_lock_name(KEY))


def test_lock_of_a_crashed_holder_expires(redis_url: str, raw: redis.Redis) -> None:
    """A holder that died without releasing blocks the others for lock_timeout at most."""
    cache = cache_at(redis_url, lock_timeout=0.4)
    # Read before the dead holder's lock is set: Redis frees it no earlier than 400 ms after,
    # so a shorter wait means the lock was taken over, however slow or fast the machine.
    started = time.monotonic()
    raw.set(_lock_name(KEY), b"token-of-a-dead-process", px=400)
    with cache.lock(KEY):
        waited = time.monotonic() - started
        assert raw.get(_lock_name(KEY)) != b"token-of-a-dead-process"
    assert waited >= 0.39  # less Redis' millisecond rounding; pytest's timeout bounds it above


def test_lock_that_expired_under_its_holder_releases_quietly(
    redis_url: str, raw: redis.Redis
) -> None:
    """A fetch slower than the lock: releasing must neither raise nor free the next holder's."""
    slow = cache_at(redis_url, lock_timeout=0.1)
    with slow.lock(KEY):
        deadline = time.monotonic() + 30
        while raw.exists(_lock_name(KEY)):  # redis expires it (the server decides when)
            assert time.monotonic() < deadline, "the lock never expired"
            time.sleep(0.02)
        # Another process takes the free lock while the slow holder still works.
        raw.set(_lock_name(KEY), b"lock-of-the-next-holder", px=60_000)
    assert raw.get(_lock_name(KEY)) == b"lock-of-the-next-holder"


def test_lock_wait_has_a_deadline(redis_url: str, raw: redis.Redis) -> None:
    raw.set(_lock_name(KEY), b"held", px=60_000)
    cache = cache_at(redis_url, lock_wait=0.2)
    started = time.monotonic()
    with pytest.raises(TokenCacheError, match="timed out"), cache.lock(KEY):
        pass
    assert time.monotonic() - started < 30  # not the 60 s the holder has


def test_unreachable_redis_raises(redis_server: object) -> None:
    cache = cache_at(f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.5)
    with pytest.raises(redis.ConnectionError):
        cache.get(KEY)


def test_bad_url_error_does_not_repeat_the_password() -> None:
    cache = cache_at("http://:hunter2-pass@127.0.0.1:1/0")
    with pytest.raises(TokenCacheError) as info:
        cache.get(KEY)
    assert "hunter2-pass" not in str(info.value)
    assert "hidden" in repr(cache) and "hunter2" not in repr(cache)


def test_url_is_resolved_lazily_once(redis_url: str) -> None:
    calls = []

    def resolve() -> str:
        calls.append(1)
        return redis_url

    cache = RedisTokenCache(resolve, TokenCipher(SECRET.encode()))
    assert calls == []
    cache.put(KEY, token())
    cache.get(KEY)
    assert calls == [1]
