"""RedisBudgetStore: request budgets shared by every process of a deployment through Redis.

Each decision is one Lua script, atomic on the server and timed by the server's clock (so the
processes' clocks do not matter): booking a slot (GCRA with reservations, the pause and what
the API taught included) is one round trip per request; the caller then sleeps exactly the
time it returned. Concurrency slots are leases in a sorted set that expire by themselves (a
killed task frees its slots when their lease ends); a released slot wakes one waiter through
a list it blocks on, so waiting for a slot is not polling.

Key names hold a digest of the API origin and client identity, in a hash tag (``{...}``) so
that a Redis Cluster keeps one budget's keys on one node.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, cast

from airflow_provider_oauthcc.auth.rate_limit_core import Reservation, WaitReason

KEY_PREFIX = "oauthcc:budget:"
# A slot waiter blocks on the wake-up list at most this long before it asks again (a lease
# that ended frees a slot without a wake-up); below the clients' socket timeout.
MAX_BLOCK = 1.0

# KEYS: tat, pause, learned. ARGV: interval ms, tolerance ms, max wait ms.
# Returns {wait ms, reason, granted (1/0)}; numbers as strings (Redis truncates Lua numbers).
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local reason = 'rate_limit'
local learned = tonumber(redis.call('GET', KEYS[3]) or '0')
if learned > interval then
  interval = learned
  tolerance = 0
  reason = 'api_headers'
end
local start = now
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then
  start = paused
  reason = 'paused'
end
if interval <= 0 then
  local wait = start - now
  return {tostring(wait), reason, wait <= max_wait and 1 or 0}
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < start then tat = start end
local send_at = tat - tolerance
if send_at < start then send_at = start end
local wait = send_at - now
if wait > max_wait then
  return {tostring(wait), reason, 0}
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(next_tat - now) + 1000)
return {tostring(wait), reason, 1}
"""

# KEYS: pause. ARGV: pause ms. The later of the pause in place and this one.
PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local pause_end = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < pause_end then
  redis.call('SET', KEYS[1], tostring(pause_end), 'PX', math.ceil(pause_end - now) + 1000)
end
return 1
"""

# KEYS: slots (sorted set of slot IDs by lease end). ARGV: limit, lease ms, slot ID.
# Returns -1 when the slot is taken, else the ms until the first lease ends.
ACQUIRE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local lease = tonumber(ARGV[2])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], lease + 1000)
  return -1
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, math.ceil(tonumber(first[2]) - now))
"""

# KEYS: slots, wake-up list. ARGV: slot ID, limit, lease ms.
RELEASE_SLOT = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], '1')
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
end
return 1
"""


def server_identity(client: Any) -> str:
    """The server and database a redis-py client talks to (no credential): where a bypass of a
    failing Redis applies."""
    settings = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None) or {}
    where = settings.get("path") or f"{settings.get('host')}:{settings.get('port')}"
    return f"redis:{where}/{settings.get('db', 0)}"


def key_names(key: str) -> dict[str, str]:
    base = f"{KEY_PREFIX}{{{key}}}:"
    return {name: base + name for name in ("tat", "pause", "learned", "slots", "freed")}


def reserve_arguments(
    key: str, interval: float, tolerance: float, max_wait: float
) -> tuple[str, int, str, str, str, str, str, str]:
    """``EVAL``'s arguments for RESERVE (its keys, then milliseconds), sync and async alike."""
    names = key_names(key)
    return (
        RESERVE,
        3,
        names["tat"],
        names["pause"],
        names["learned"],
        repr(interval * 1000),
        repr(tolerance * 1000),
        repr(max_wait * 1000),
    )


def reservation_of(answer: Any) -> Reservation:
    wait, reason, granted = (_text(part) for part in answer)
    return Reservation(float(wait) / 1000, WaitReason(reason), granted == "1")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBudgetStore:
    """Budgets in Redis. ``client`` returns a redis-py client (called on first use)."""

    name = "redis"

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client_function = client
        self._redis: Any = None

    @property
    def identity(self) -> str | None:
        """Names the Redis server once the client is made (None before)."""
        return None if self._redis is None else server_identity(self._redis)

    def _client(self) -> Any:
        if self._redis is None:
            from airflow_provider_oauthcc.auth.cache.redis import _bound_waits

            client = self._client_function()
            _bound_waits(client, 5.0)
            self._redis = client
        return self._redis

    def reserve(self, key: str, interval: float, tolerance: float, max_wait: float) -> Reservation:
        answer = self._client().eval(*reserve_arguments(key, interval, tolerance, max_wait))
        return reservation_of(answer)

    def pause(self, key: str, seconds: float) -> None:
        self._client().eval(PAUSE, 1, key_names(key)["pause"], repr(seconds * 1000))

    def narrow(self, key: str, interval: float, span: float) -> None:
        span_ms = int(span * 1000)
        if span_ms > 0:
            self._client().set(key_names(key)["learned"], repr(interval * 1000), px=span_ms)

    def acquire_slot(self, key: str, limit: int, lease: float, wait: float) -> str | None:
        names = key_names(key)
        slot = uuid.uuid4().hex
        client = self._client()
        deadline = time.monotonic() + wait
        while True:
            answer = int(
                cast(Any, client).eval(
                    ACQUIRE_SLOT, 1, names["slots"], limit, int(lease * 1000), slot
                )
            )
            if answer < 0:
                return slot
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            client.blpop([names["freed"]], timeout=max(0.01, min(left, answer / 1000, MAX_BLOCK)))

    def release_slot(self, key: str, slot: str, limit: int, lease: float = 60.0) -> None:
        names = key_names(key)
        self._client().eval(
            RELEASE_SLOT, 2, names["slots"], names["freed"], slot, limit, int(lease * 1000)
        )
