"""RequestBudget: the shared request budget of one API origin and client identity (sync path).

Every request to the API's origin passes ``RequestBudget.slot()`` (in ``GatedSession.send``):
it books the next slot of the budget and sleeps until it, and holds a concurrency slot while
the request is in flight when ``max_concurrency`` is set. Every answer passes ``learn()``:
``RateLimit`` / ``X-RateLimit-*`` headers narrow the pace for everyone sharing the budget until
their reset, and a 429 pauses all of them (for its ``Retry-After``).

The budget lives in this process (threads share it) or, when the connection's token cache is
Redis, in that Redis (every worker, task process and triggerer shares it). A Redis that fails
is bypassed for a minute with one warning per process: the budget is then this process's, and
no request fails because of it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_oauthcc.auth import metrics
from airflow_provider_oauthcc.auth.rate_limit_core import (
    BudgetPlan,
    BudgetStore,
    Reservation,
    budget_key,
)
from airflow_provider_oauthcc.auth.rate_limit_local import LocalBudgetStore, process_budgets

if TYPE_CHECKING:
    import requests

    from airflow_provider_oauthcc.auth.config import ClientConfig

log = logging.getLogger("airflow_provider_oauthcc.auth.rate_limit")

FALLBACK_RETRY_AFTER = 60.0


class FailOpenBudgetStore:
    """The shared store while it works; this process's store for ``retry_after`` seconds after
    it fails (one WARNING each time)."""

    def __init__(
        self,
        shared: BudgetStore,
        local: LocalBudgetStore | None = None,
        *,
        retry_after: float = FALLBACK_RETRY_AFTER,
        bypass: Bypass | None = None,
    ) -> None:
        self.shared = shared
        self._local = local
        self._retry_after = retry_after
        self._own_bypass = bypass or Bypass()

    @property
    def _bypass(self) -> Bypass:
        # Shared by every store of this process that reaches the same Redis (once its client
        # is known): one warning per Redis, not one per session.
        identity = getattr(self.shared, "identity", None)
        return bypass_of(identity) if identity else self._own_bypass

    @property
    def local(self) -> LocalBudgetStore:
        return self._local or process_budgets()

    @property
    def name(self) -> str:
        return f"{self.shared.name} (unavailable)" if self.bypassed else self.shared.name

    @property
    def bypassed(self) -> bool:
        return time.monotonic() < self._bypass.until

    def reserve(self, key: str, interval: float, tolerance: float, max_wait: float) -> Reservation:
        if not self.bypassed:
            try:
                return self.shared.reserve(key, interval, tolerance, max_wait)
            except Exception as exc:
                self.failed("book a request", exc)
        return self.local.reserve(key, interval, tolerance, max_wait)

    def pause(self, key: str, seconds: float) -> None:
        if not self.bypassed:
            try:
                self.shared.pause(key, seconds)
                return
            except Exception as exc:
                self.failed("pause", exc)
        self.local.pause(key, seconds)

    def narrow(self, key: str, interval: float, span: float) -> None:
        if not self.bypassed:
            try:
                self.shared.narrow(key, interval, span)
                return
            except Exception as exc:
                self.failed("narrow", exc)
        self.local.narrow(key, interval, span)

    def acquire_slot(self, key: str, limit: int, lease: float, wait: float) -> str | None:
        if not self.bypassed:
            try:
                return self.shared.acquire_slot(key, limit, lease, wait)
            except Exception as exc:
                self.failed("take a request slot", exc)
        return self.local.acquire_slot(key, limit, lease, wait)

    def release_slot(self, key: str, slot: str, limit: int) -> None:
        if slot == "local":
            self.local.release_slot(key, slot, limit)
            return
        try:
            self.shared.release_slot(key, slot, limit)
        except Exception as exc:
            # The slot's lease ends by itself.
            self.failed("free a request slot", exc)

    def failed(self, operation: str, exc: Exception) -> None:
        self._bypass.failed(self.shared.name, operation, exc, self._retry_after)


class RequestBudget:
    """One budget, driven synchronously. ``deadline`` (``time.monotonic()`` time) is when the
    task must be done: a request that would wait past it fails at once, saying why."""

    def __init__(
        self,
        plan: BudgetPlan,
        store: BudgetStore | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.plan = plan
        self._store = store
        self._sleep = sleep
        self.deadline: float | None = None

    @property
    def store(self) -> BudgetStore:
        return self._store or process_budgets()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Wait for the budget, then hold a concurrency slot (if limited) until the block ends."""
        plan = self.plan
        affordable = plan.affordable(self._seconds_left())
        reservation = self.store.reserve(plan.key, plan.interval, plan.tolerance, affordable)
        wait = plan.waited(reservation, affordable)
        if wait > 0:
            self._sleep(wait)
        limit = plan.settings.max_concurrency
        if limit is None:
            yield
            return
        started = time.monotonic()
        slot_wait = plan.affordable(self._seconds_left())
        slot = self.store.acquire_slot(plan.key, limit, plan.lease, slot_wait)
        if slot is None:
            raise plan.no_slot(time.monotonic() - started)
        waited = time.monotonic() - started
        if waited > 0:
            metrics.timing(metrics.BUDGET_WAIT, waited)
        try:
            yield
        finally:
            self.store.release_slot(plan.key, slot, limit)

    def send(self, send: Callable[[], requests.Response]) -> requests.Response:
        """``send()`` within the budget; its answer teaches the budget."""
        with self.slot():
            response = send()
        self.learn(response.status_code, response.headers)
        return response

    def learn(self, status: int, headers: Mapping[str, str]) -> None:
        """Apply what an answer says about the API's limit to everyone sharing the budget."""
        advice = self.plan.lesson(status, headers)
        if advice is None:
            return
        if advice.pause:
            self.store.pause(self.plan.key, advice.pause)
        elif advice.interval:
            self.store.narrow(self.plan.key, advice.interval, advice.span)

    def _seconds_left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


def make_budget_plan(config: ClientConfig, api_origin: str, shown_origin: str) -> BudgetPlan | None:
    """The plan of ``config``'s budget at ``api_origin`` (None: nothing to limit or learn).
    ``config`` is a ``ClientConfig``: the identity is its client at its token endpoint."""
    settings = config.budget
    if not settings.active:
        return None
    identity = (config.token_url or f"issuer:{config.issuer}", config.client_id)
    return BudgetPlan(
        budget_key(api_origin, identity),
        shown_origin,
        settings,
        request_timeout=float(config.timeout),
    )


def make_request_budget(
    config: ClientConfig,
    api_origin: str | None,
    shown_origin: str,
    *,
    redis_client: Callable[[], Any] | None = None,
) -> RequestBudget | None:
    """The budget of ``config`` (a ``ClientConfig``) for requests to ``api_origin``: in Redis
    when the connection's token cache is Redis (``redis_client`` returns its client), else in
    this process. None when there is nothing to do (no API origin, everything off)."""
    if api_origin is None:
        return None
    plan = make_budget_plan(config, api_origin, shown_origin)
    if plan is None:
        return None
    store: BudgetStore | None = None
    if config.cache_backend == "redis" and redis_client is not None:
        from airflow_provider_oauthcc.auth.rate_limit_redis import RedisBudgetStore

        store = FailOpenBudgetStore(RedisBudgetStore(redis_client))
    return RequestBudget(plan, store)


@dataclass
class Bypass:
    """Until when a shared store is bypassed (``time.monotonic()``): one per Redis and process,
    so that a Redis that fails is warned about once, not once per task or session."""

    until: float = 0.0

    def failed(self, store: str, operation: str, exc: Exception, retry_after: float) -> None:
        """``store`` failed: bypass it for ``retry_after`` s, warning once per bypass."""
        metrics.incr(metrics.BUDGET_STORE_ERROR)
        warn = time.monotonic() >= self.until
        self.until = time.monotonic() + retry_after
        if warn:
            # The exception's type only: a Redis client's message may hold its URL.
            log.warning(
                "Request budget store '%s' failed to %s (%s); limiting requests in this process "
                "only for the next %g s",
                store,
                operation,
                type(exc).__name__,
                retry_after,
            )


_bypasses: dict[str, Bypass] = {}


def bypass_of(name: str) -> Bypass:
    """This process's bypass state of the Redis called ``name``."""
    return _bypasses.setdefault(name, Bypass())


def _forget_bypasses_after_fork() -> None:
    _bypasses.clear()


os.register_at_fork(after_in_child=_forget_bypasses_after_fork)
