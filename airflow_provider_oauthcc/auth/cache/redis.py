"""RedisTokenCache: tokens shared by every worker of a deployment.

Entries are encrypted (see cache_crypto) and expire with the token. The fetch lock expires
by itself, so a holder that crashed blocks the others for ``lock_timeout`` at most.

The cache reaches Redis through a redis:// URL or a function that returns a redis-py client
(the Airflow hooks pass one that asks the Redis provider's ``RedisHook``, so a Redis connection
means the same here as anywhere in Airflow). Either way one client (and connection pool) per
process is shared by every cache that names the same Redis.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

from airflow_provider_oauthcc.auth.cache import KeyedLocks, Release, TokenCacheError
from airflow_provider_oauthcc.auth.cache.crypto import TokenCipher
from airflow_provider_oauthcc.auth.token import Token

if TYPE_CHECKING:
    from redis import Redis

KEY_PREFIX = "oauthcc:"
DEFAULT_LOCK_TIMEOUT = 600.0  # outlives client.fetch_budget() at the default timeout
DEFAULT_SOCKET_TIMEOUT = 5.0

# Delete the entry only if it still holds the exact (encrypted) value that was compared.
_DELETE_IF_UNCHANGED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

log = logging.getLogger(__name__)
_thread_locks = KeyedLocks()
# One client (and connection pool) per Redis and process, shared by every hook (see shared_client).
_clients: dict[str, Redis] = {}
_clients_guard = threading.Lock()


def _forget_clients_after_fork() -> None:
    # A pooled socket belongs to the parent; redis-py also checks the pid, the guard is ours.
    global _clients_guard
    _clients_guard = threading.Lock()
    _clients.clear()


os.register_at_fork(after_in_child=_forget_clients_after_fork)


class RedisTokenCache:
    name = "redis"

    def __init__(
        self,
        url: str | Callable[[], str] | None,
        cipher: TokenCipher,
        *,
        client: Callable[[], Redis] | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        lock_wait: float | None = None,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
    ) -> None:
        """Give ``url`` (a redis:// or rediss:// URL, or a function returning one) or
        ``client`` (a function returning a redis-py client, e.g. through ``shared_client``);
        either function is called on first use.

        ``lock_timeout``: how long a fetch may hold the lock before it expires by itself;
        ``lock_wait``: how long a process waits for it (default: a little longer);
        ``socket_timeout``: for the URL's client, and for a given client whose connections
        have no timeout of their own (every wait is bounded)."""
        if (url is None) == (client is None):
            raise ValueError("give either a Redis URL or a Redis client function")
        self._url = url
        self._client_function = client
        self._cipher = cipher
        self.lock_timeout = lock_timeout
        self._lock_wait = lock_timeout + 5 if lock_wait is None else lock_wait
        self._socket_timeout = socket_timeout
        self._redis: Redis | None = None

    def __repr__(self) -> str:
        return "RedisTokenCache(<url hidden>)" if self._url is not None else "RedisTokenCache()"

    def get(self, key: str) -> Token | None:
        blob = cast("bytes | None", self._client().get(_entry_name(key)))
        if blob is None:
            return None
        token = self._cipher.open(key, _as_bytes(blob))
        if token is None:
            log.info(
                "Ignoring a Redis token cache entry that does not decrypt with this connection's "
                "credential (corrupt, or written with another secret); it will be replaced"
            )
        return token

    def put(self, key: str, token: Token) -> None:
        ttl_ms = int((token.expires_at - time.time()) * 1000)
        if ttl_ms <= 0:
            return
        self._client().set(_entry_name(key), self._cipher.seal(key, token), px=ttl_ms)

    def invalidate(self, key: str, token: Token) -> bool:
        client = self._client()
        blob = cast("bytes | None", client.get(_entry_name(key)))
        if blob is None:
            return False
        current = self._cipher.open(key, _as_bytes(blob))
        if current is None or current.access_token != token.access_token:
            return False
        # redis-py's stubs want str arguments; bytes are what it sends as they are.
        deleted = cast(Any, client).eval(_DELETE_IF_UNCHANGED, 1, _entry_name(key), blob)
        return bool(deleted)

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        from redis.exceptions import LockError

        client = self._client()
        thread_lock = _thread_locks[_lock_name(key)]
        if not thread_lock.acquire(timeout=self._lock_wait):
            raise TokenCacheError("timed out waiting for another thread's fetch")
        try:
            shared = client.lock(
                _lock_name(key),
                timeout=self.lock_timeout,
                sleep=0.02,
                blocking_timeout=self._lock_wait,
                thread_local=False,
            )
            if not shared.acquire():
                raise TokenCacheError(
                    f"timed out after {self._lock_wait:g} s waiting for the Redis lock"
                )
            try:
                yield
            finally:
                try:
                    shared.release()
                except LockError:
                    # Held longer than lock_timeout: it expired, maybe another process has it now.
                    log.debug("Redis token lock expired before release")
        finally:
            thread_lock.release()

    def try_lock(self, key: str) -> Release | None:
        thread_lock = _thread_locks[_lock_name(key)]
        if not thread_lock.acquire(blocking=False):
            return None
        try:
            shared = self._client().lock(
                _lock_name(key), timeout=self.lock_timeout, thread_local=False
            )
            if not shared.acquire(blocking=False):
                thread_lock.release()
                return None
        except BaseException:
            thread_lock.release()
            raise

        def release() -> None:
            from redis.exceptions import LockError

            try:
                shared.release()
            except LockError:
                log.debug("Redis token lock expired before release")
            finally:
                thread_lock.release()

        return release

    def _client(self) -> Redis:
        if self._redis is None:
            if self._client_function is not None:
                client = self._client_function()
                _bound_waits(client, self._socket_timeout)
            else:
                url = self._url() if callable(self._url) else cast(str, self._url)
                client = client_for_url(url, self._socket_timeout)
            self._redis = client
        return self._redis


def shared_client(name: str, connect: Callable[[], Redis]) -> Redis:
    """This process's Redis client called ``name``, made by ``connect`` the first time.

    Caches that name the same Redis share one client and connection pool. Build ``name`` from
    everything that makes the client (hash whatever is secret in it); it is never logged.
    """
    with _clients_guard:
        client = _clients.get(name)
        if client is None:
            client = _clients[name] = connect()
    return client


def client_for_url(url: str, socket_timeout: float = DEFAULT_SOCKET_TIMEOUT) -> Redis:
    """This process's client for a redis:// (or rediss://) URL."""
    return shared_client(f"url:{url}", lambda: _connect(url, socket_timeout))


def _bound_waits(client: Any, socket_timeout: float) -> None:
    """Socket timeouts for a client made elsewhere (Airflow's RedisHook sets none), so that a
    Redis that stops answering fails the cache (it fails open) instead of hanging the task.
    Timeouts the client already has are kept; connections it has opened keep theirs."""
    pool = getattr(client, "connection_pool", None)
    settings = getattr(pool, "connection_kwargs", None)
    if not isinstance(settings, dict):
        return
    for name in ("socket_timeout", "socket_connect_timeout"):
        if settings.get(name) is None:
            settings[name] = socket_timeout


def _connect(url: str, socket_timeout: float) -> Redis:
    try:
        import redis
    except ImportError:
        raise TokenCacheError(
            "the redis cache needs the redis client: pip install 'airflow-provider-oauthcc[redis]'"
        ) from None

    try:
        client: Redis = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )
    except ValueError:
        # redis-py's message repeats the URL, password included.
        raise TokenCacheError(
            "the Redis URL is not valid (expected redis://[[user]:password@]host[:port][/db], "
            "or rediss:// for TLS)"
        ) from None
    return client


def _as_bytes(value: bytes | str) -> bytes:
    # The client is made without decode_responses, so values come back as bytes.
    return value if isinstance(value, bytes) else value.encode()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:40]


def _entry_name(key: str) -> str:
    return f"{KEY_PREFIX}token:{_digest(key)}"


def _lock_name(key: str) -> str:
    return f"{KEY_PREFIX}lock:{_digest(key)}"


def close_clients() -> None:
    """Close every pooled Redis connection of this process (tests, shutdown)."""
    with _clients_guard:
        clients: list[Any] = list(_clients.values())
        _clients.clear()
    for client in clients:
        with contextlib.suppress(Exception):
            client.close()
