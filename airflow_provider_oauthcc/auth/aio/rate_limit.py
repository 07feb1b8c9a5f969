"""AsyncRequestBudget: the request budget (:mod:`..rate_limit`) for an event loop.

The same plan and stores' arithmetic as the sync path; waits are ``asyncio.sleep``, Redis is
reached through redis-py's asyncio client (a twin of the connection's client: same server,
database, credentials and TLS settings), so nothing blocks the loop. When such a twin cannot be
made, the sync client's calls run in a thread. A failing Redis is bypassed as on the sync path.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_oauthcc.auth.rate_limit import (
    FALLBACK_RETRY_AFTER,
    Bypass,
    bypass_of,
    make_budget_plan,
)
from airflow_provider_oauthcc.auth.rate_limit_core import BudgetPlan, Reservation
from airflow_provider_oauthcc.auth.rate_limit_local import process_budgets
from airflow_provider_oauthcc.auth.rate_limit_redis import (
    ACQUIRE_SLOT,
    MAX_BLOCK,
    PAUSE,
    RELEASE_SLOT,
    key_names,
    reservation_of,
    reserve_arguments,
    server_identity,
)

if TYPE_CHECKING:
    import requests

    from airflow_provider_oauthcc.auth.config import ClientConfig
    from airflow_provider_oauthcc.auth.egress import EgressPolicy

log = logging.getLogger("airflow_provider_oauthcc.auth.rate_limit")


class AsyncLocalStore:
    """This process's budgets (shared with its threads), waited for without blocking."""

    name = "local"

    async def reserve(
        self, key: str, interval: float, tolerance: float, max_wait: float
    ) -> Reservation:
        return process_budgets().reserve(key, interval, tolerance, max_wait)

    async def pause(self, key: str, seconds: float) -> None:
        process_budgets().pause(key, seconds)

    async def narrow(self, key: str, interval: float, span: float) -> None:
        process_budgets().narrow(key, interval, span)

    async def acquire_slot(self, key: str, limit: int, lease: float, wait: float) -> str | None:
        store = process_budgets()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            freed: asyncio.Future[None] = loop.create_future()

            def wake(future: asyncio.Future[None] = freed) -> None:
                with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                    loop.call_soon_threadsafe(_resolve, future)

            store.on_release(key, wake)
            slot = store.try_slot(key, limit)
            if slot is not None:
                return slot
            left = deadline - loop.time()
            if left <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(freed, left)

    async def release_slot(self, key: str, slot: str, limit: int) -> None:
        process_budgets().release_slot(key, slot, limit)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AsyncRedisStore:
    """Budgets in Redis over an asyncio client. ``client`` returns the connection's (sync)
    redis-py client; it is called once, in a thread."""

    name = "redis"

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client_function = client
        self._sync: Any = None
        self._async: Any = None

    @property
    def identity(self) -> str | None:
        """Names the Redis client once it is made, as the sync store does."""
        return None if self._sync is None else server_identity(self._sync)

    async def _eval(self, script: str, numkeys: int, *args: Any) -> Any:
        client = await self._client()
        if client is not None:
            return await client.eval(script, numkeys, *args)
        return await asyncio.to_thread(self._sync.eval, script, numkeys, *args)

    async def _client(self) -> Any:
        """The asyncio twin, or None when there is none (then the sync client, in threads)."""
        if self._sync is None:
            from airflow_provider_oauthcc.auth.cache.redis import _bound_waits

            sync = await asyncio.to_thread(self._client_function)
            _bound_waits(sync, 5.0)
            self._sync = sync
            self._async = asyncio_twin(sync)
        return self._async

    async def reserve(
        self, key: str, interval: float, tolerance: float, max_wait: float
    ) -> Reservation:
        answer = await self._eval(*reserve_arguments(key, interval, tolerance, max_wait))
        return reservation_of(answer)

    async def pause(self, key: str, seconds: float) -> None:
        await self._eval(PAUSE, 1, key_names(key)["pause"], repr(seconds * 1000))

    async def narrow(self, key: str, interval: float, span: float) -> None:
        span_ms = int(span * 1000)
        if span_ms <= 0:
            return
        name, value = key_names(key)["learned"], repr(interval * 1000)
        client = await self._client()
        if client is not None:
            await client.set(name, value, px=span_ms)
        else:
            await asyncio.to_thread(self._sync.set, name, value, px=span_ms)

    async def acquire_slot(self, key: str, limit: int, lease: float, wait: float) -> str | None:
        names = key_names(key)
        slot = uuid.uuid4().hex
        deadline = time.monotonic() + wait
        while True:
            answer = int(
                await self._eval(ACQUIRE_SLOT, 1, names["slots"], limit, int(lease * 1000), slot)
            )
            if answer < 0:
                return slot
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            block = max(0.01, min(left, answer / 1000, MAX_BLOCK))
            client = await self._client()
            if client is not None:
                await client.blpop([names["freed"]], timeout=block)
            else:
                await asyncio.sleep(block)  # no blocking call on a thread of the pool

    async def release_slot(self, key: str, slot: str, limit: int) -> None:
        names = key_names(key)
        await self._eval(RELEASE_SLOT, 2, names["slots"], names["freed"], slot, limit, 60_000)


# One asyncio twin per sync client and event loop (an asyncio connection belongs to its loop).
_twins: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, Any]] = (
    weakref.WeakKeyDictionary()
)


def asyncio_twin(sync: Any) -> Any:
    """An asyncio redis-py client for the server ``sync`` talks to, or None if it cannot be
    made (a cluster or sentinel client, an unknown connection class)."""
    loop = asyncio.get_running_loop()
    twins = _twins.setdefault(loop, {})
    twin = twins.get(id(sync))
    if twin is None:
        try:
            twin = twins[id(sync)] = _make_twin(sync)
        except Exception:
            log.debug("No asyncio Redis client for the request budget", exc_info=True)
            return None
    return twin


def _make_twin(sync: Any) -> Any:
    import redis.asyncio as aioredis
    from redis.asyncio import connection as aioconnection

    pool = sync.connection_pool
    classes = {
        "Connection": aioconnection.Connection,
        "SSLConnection": aioconnection.SSLConnection,
        "UnixDomainSocketConnection": aioconnection.UnixDomainSocketConnection,
    }
    connection_class = classes[pool.connection_class.__name__]
    accepted: set[str] = set()
    for cls in connection_class.__mro__:
        init = cls.__dict__.get("__init__")
        if init is not None:
            accepted |= set(inspect.signature(init).parameters)
    kwargs = {k: v for k, v in pool.connection_kwargs.items() if k in accepted}
    dropped = set(pool.connection_kwargs) - accepted - {"retry"}
    if dropped:
        raise ValueError(f"settings the asyncio client lacks: {sorted(dropped)}")
    async_pool = aioredis.ConnectionPool(connection_class=connection_class, **kwargs)
    return aioredis.Redis(connection_pool=async_pool)


class AsyncFailOpenStore:
    """The shared store while it works; this process's for a minute after it fails."""

    def __init__(
        self,
        shared: AsyncRedisStore,
        retry_after: float = FALLBACK_RETRY_AFTER,
        bypass: Bypass | None = None,
    ):
        self.shared = shared
        self.local = AsyncLocalStore()
        self._retry_after = retry_after
        self._own_bypass = bypass or Bypass()

    @property
    def _bypass(self) -> Bypass:
        identity = self.shared.identity
        return bypass_of(identity) if identity else self._own_bypass

    @property
    def name(self) -> str:
        return self.shared.name

    def _store(self) -> AsyncRedisStore | AsyncLocalStore:
        return self.local if time.monotonic() < self._bypass.until else self.shared

    async def _try(self, operation: str, call: Callable[[Any], Awaitable[Any]]) -> Any:
        store = self._store()
        if store is self.shared:
            try:
                return await call(store)
            except Exception as exc:
                self.failed(operation, exc)
        return await call(self.local)

    async def reserve(
        self, key: str, interval: float, tolerance: float, max_wait: float
    ) -> Reservation:
        answer: Reservation = await self._try(
            "book a request", lambda s: s.reserve(key, interval, tolerance, max_wait)
        )
        return answer

    async def pause(self, key: str, seconds: float) -> None:
        await self._try("pause", lambda s: s.pause(key, seconds))

    async def narrow(self, key: str, interval: float, span: float) -> None:
        await self._try("narrow", lambda s: s.narrow(key, interval, span))

    async def acquire_slot(self, key: str, limit: int, lease: float, wait: float) -> str | None:
        slot: str | None = await self._try(
            "take a request slot", lambda s: s.acquire_slot(key, limit, lease, wait)
        )
        return slot

    async def release_slot(self, key: str, slot: str, limit: int) -> None:
        if slot == "local":
            await self.local.release_slot(key, slot, limit)
            return
        try:
            await self.shared.release_slot(key, slot, limit)
        except Exception as exc:
            self.failed("free a request slot", exc)  # its lease ends by itself

    def failed(self, operation: str, exc: Exception) -> None:
        self._bypass.failed(self.shared.name, operation, exc, self._retry_after)


AsyncStore = AsyncLocalStore | AsyncRedisStore | AsyncFailOpenStore


class AsyncRequestBudget:
    """One budget, awaited. ``deadline`` (``time.monotonic()`` time): see RequestBudget."""

    def __init__(self, plan: BudgetPlan, store: AsyncStore | None = None) -> None:
        self.plan = plan
        self.store: AsyncStore = store or AsyncLocalStore()
        self.deadline: float | None = None

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        plan = self.plan
        affordable = plan.affordable(self._seconds_left())
        reservation = await self.store.reserve(plan.key, plan.interval, plan.tolerance, affordable)
        wait = plan.waited(reservation, affordable)
        if wait > 0:
            await asyncio.sleep(wait)
        limit = plan.settings.max_concurrency
        if limit is None:
            yield
            return
        started = time.monotonic()
        slot = await self.store.acquire_slot(
            plan.key, limit, plan.lease, plan.affordable(self._seconds_left())
        )
        if slot is None:
            raise plan.no_slot(time.monotonic() - started)
        try:
            yield
        finally:
            await self.store.release_slot(plan.key, slot, limit)

    async def learn(self, status: int, headers: Mapping[str, str]) -> None:
        advice = self.plan.lesson(status, headers)
        if advice is None:
            return
        if advice.pause:
            await self.store.pause(self.plan.key, advice.pause)
        elif advice.interval:
            await self.store.narrow(self.plan.key, advice.interval, advice.span)

    def _seconds_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


async def budgeted_send(
    budget: AsyncRequestBudget | None,
    egress: EgressPolicy,
    url: str,
    send: Callable[[], Awaitable[requests.Response]],
) -> requests.Response:
    """``send()`` within ``budget`` when ``url`` is on the API's origin; its answer teaches it."""
    from airflow_provider_oauthcc.auth.egress import target

    if budget is None or target(url).origin != egress.api_origin:
        return await send()
    async with budget.slot():
        response = await send()
    await budget.learn(response.status_code, response.headers)
    return response


def make_async_request_budget(
    config: ClientConfig,
    api_origin: str | None,
    shown_origin: str,
    *,
    redis_client: Callable[[], Any] | None = None,
) -> AsyncRequestBudget | None:
    """As ``make_request_budget``, for an event loop."""
    if api_origin is None:
        return None
    plan = make_budget_plan(config, api_origin, shown_origin)
    if plan is None:
        return None
    store: AsyncStore | None = None
    if config.cache_backend == "redis" and redis_client is not None:
        store = AsyncFailOpenStore(AsyncRedisStore(redis_client))
    return AsyncRequestBudget(plan, store)
