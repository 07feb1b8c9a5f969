"""The request budget's arithmetic and stores: settings, GCRA pacing and bursts, pauses, what
the API taught, concurrency leases, Redis shared by two clients, failing open, bounded waits."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator

import pytest

from airflow_provider_oauthcc.auth.aio.rate_limit import (
    AsyncFailOpenStore,
    AsyncRedisStore,
    AsyncRequestBudget,
)
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError
from airflow_provider_oauthcc.auth.rate_limit import FailOpenBudgetStore, RequestBudget
from airflow_provider_oauthcc.auth.rate_limit_core import (
    BudgetPlan,
    BudgetSettings,
    BudgetWaitError,
    WaitReason,
    parse_rate_limit,
)
from airflow_provider_oauthcc.auth.rate_limit_local import LocalBudgetStore
from airflow_provider_oauthcc.auth.rate_limit_redis import RedisBudgetStore
from tests.support.redis_server import RedisServer, free_port, redis_server, redis_url

__all__ = ["redis_server", "redis_url"]  # fixtures


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def local(clock: Clock) -> LocalBudgetStore:
    return LocalBudgetStore(clock)


# -- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "interval"),
    [("10/s", 0.1), ("600/min", 0.1), ("3600/hour", 1.0), ("100/10s", 0.1), ("2/ sec", 0.5)],
)
def test_rate_limit_forms(text: str, interval: float) -> None:
    assert parse_rate_limit(text).interval == pytest.approx(interval)


def extras(**budget: object) -> ClientConfig:
    return ClientConfig.from_connection(
        client_id="app",
        client_secret="s3cret-Value",
        extra={"auth_url": "https://idp.example/token", **budget},
    )


@pytest.mark.parametrize(
    ("budget", "field"),
    [
        ({"rate_limit": "ten a second"}, "rate_limit"),
        ({"rate_limit": "0/s"}, "rate_limit"),
        ({"rate_limit": 10}, "rate_limit"),
        ({"rate_limit": "10/fortnight"}, "rate_limit"),
        ({"rate_limit_burst": 5}, "rate_limit_burst"),
        ({"rate_limit": "1/s", "rate_limit_burst": 0}, "rate_limit_burst"),
        ({"max_concurrency": "two"}, "max_concurrency"),
        ({"max_concurrency": True}, "max_concurrency"),
        ({"rate_limit_learn": "perhaps"}, "rate_limit_learn"),
    ],
)
def test_bad_settings_name_their_field(budget: dict[str, object], field: str) -> None:
    with pytest.raises(OAuthCCConfigError) as caught:
        extras(**budget)
    assert caught.value.field == field


def test_settings_as_typed_in_a_form() -> None:
    config = extras(
        rate_limit="600/min", rate_limit_burst="5", max_concurrency="2", rate_limit_learn="false"
    )
    assert config.budget == BudgetSettings(parse_rate_limit("600/min", 5), 2, learn=False)
    assert config.unknown_keys == ()
    assert not extras(rate_limit_learn=False).budget.active


# -- pacing, in this process ----------------------------------------------------------------


def test_gcra_burst_then_pace(local: LocalBudgetStore, clock: Clock) -> None:
    limit = parse_rate_limit("10/s", burst=3)
    waits = [local.reserve("k", limit.interval, limit.tolerance, 60).wait for _ in range(6)]
    assert waits == pytest.approx([0, 0, 0, 0.1, 0.2, 0.3])
    clock.now += 10  # idle: the burst is back, no more
    waits = [local.reserve("k", limit.interval, limit.tolerance, 60).wait for _ in range(4)]
    assert waits == pytest.approx([0, 0, 0, 0.1])


def test_a_wait_beyond_max_wait_books_nothing(local: LocalBudgetStore) -> None:
    for _ in range(5):
        local.reserve("k", 1.0, 0.0, 60)
    refused = local.reserve("k", 1.0, 0.0, 2.0)
    assert not refused.granted and refused.wait == pytest.approx(5)
    assert local.reserve("k", 1.0, 0.0, 60).wait == pytest.approx(5)  # the refused slot is free


def test_a_pause_stops_everyone_then_pacing_resumes_after_it(
    local: LocalBudgetStore, clock: Clock
) -> None:
    local.reserve("k", 0.1, 0.0, 60)
    local.pause("k", 3.0)
    first = local.reserve("k", 0.1, 0.0, 60)
    assert first.reason is WaitReason.PAUSED and first.wait == pytest.approx(3.0)
    assert local.reserve("k", 0.1, 0.0, 60).wait == pytest.approx(3.1)
    assert local.reserve("other", 0.1, 0.0, 60).wait == 0  # another budget is not paused


def test_a_pause_applies_without_any_rate_limit(local: LocalBudgetStore) -> None:
    assert local.reserve("k", 0.0, 0.0, 60).wait == 0
    local.pause("k", 2.0)
    assert local.reserve("k", 0.0, 0.0, 60).wait == pytest.approx(2.0)


def test_learned_pace_narrows_until_its_span_ends_never_widens(
    local: LocalBudgetStore, clock: Clock
) -> None:
    local.narrow("k", 0.5, span=2.0)
    waits = [local.reserve("k", 0.1, 0.3, 60) for _ in range(3)]
    assert [w.wait for w in waits] == pytest.approx([0, 0.5, 1.0])
    assert waits[1].reason is WaitReason.API_HEADERS
    clock.now += 5  # the API's window is over: back to the configured pace and burst
    assert local.reserve("k", 0.1, 0.3, 60).wait == 0
    local.narrow("k", 0.01, span=10)  # looser than the configured limit: ignored
    assert local.reserve("k", 0.1, 0.0, 60).reason is WaitReason.RATE_LIMIT


def test_concurrency_slots_wake_a_waiting_thread(local: LocalBudgetStore) -> None:
    assert local.acquire_slot("k", 1, 60, 0) == "local"
    assert local.acquire_slot("k", 1, 60, 0.05) is None
    got: list[str | None] = []
    waiter = threading.Thread(target=lambda: got.append(local.acquire_slot("k", 1, 60, 5)))
    waiter.start()
    time.sleep(0.05)
    local.release_slot("k", "local", 1)
    waiter.join(2)
    assert got == ["local"]


# -- the budget: waits shown, bounded -------------------------------------------------------


def plan(settings: BudgetSettings, max_wait: float = 900.0) -> BudgetPlan:
    return BudgetPlan("k", "https://api.example", settings, max_wait=max_wait)


def test_the_wait_is_slept_and_logged_with_its_reason(
    local: LocalBudgetStore, caplog: pytest.LogCaptureFixture
) -> None:
    slept: list[float] = []
    budget = RequestBudget(plan(BudgetSettings(parse_rate_limit("1/s"))), local, sleep=slept.append)
    caplog.set_level(logging.INFO, "airflow_provider_oauthcc")
    for _ in range(2):
        with budget.slot():
            pass
    assert slept == pytest.approx([1.0])
    assert "Waiting 1.00 s for the request budget of https://api.example (rate_limit 1/s)" in (
        caplog.text
    )


def test_a_wait_past_the_task_deadline_fails_at_once_saying_why(local: LocalBudgetStore) -> None:
    budget = RequestBudget(plan(BudgetSettings()), local, sleep=lambda s: pytest.fail("slept"))
    local.pause("k", 120)
    budget.deadline = time.monotonic() + 30
    with pytest.raises(BudgetWaitError) as caught, budget.slot():
        pass
    message = str(caught.value)
    assert "wait 120.0 s" in message and "asked every client" in message
    assert "more than the 30.0 s" in message or "more than the 29.9 s" in message


def test_a_429_pauses_the_budget_and_learning_can_be_switched_off(
    local: LocalBudgetStore,
) -> None:
    budget = RequestBudget(plan(BudgetSettings()), local)
    budget.learn(429, {"Retry-After": "4"})
    assert local.reserve("k", 0, 0, 60).wait == pytest.approx(4)
    deaf = RequestBudget(plan(BudgetSettings(learn=False)), LocalBudgetStore())
    deaf.learn(429, {"Retry-After": "4"})
    assert deaf.store.reserve("k", 0, 0, 60).wait == 0


# -- Redis: one budget for every client ------------------------------------------------------


@pytest.fixture
def two_clients(redis_server: RedisServer, redis_url: str) -> Iterator[tuple[object, object]]:
    first, second = redis_server.client(), redis_server.client()
    yield first, second
    first.close()  # type: ignore[attr-defined]
    second.close()  # type: ignore[attr-defined]


def test_redis_paces_two_clients_as_one(two_clients: tuple[object, object]) -> None:
    a, b = (RedisBudgetStore(lambda c=c: c) for c in two_clients)
    waits = [store.reserve("k", 0.2, 0.0, 60).wait for store in (a, b, a, b)]
    assert waits == pytest.approx([0, 0.2, 0.4, 0.6], abs=0.02)
    b.pause("k", 5)
    paused = a.reserve("k", 0.2, 0.0, 60)
    assert paused.reason is WaitReason.PAUSED and paused.wait == pytest.approx(5, abs=0.05)
    assert not a.reserve("k", 0.2, 0.0, 1).granted


def test_redis_learned_pace_is_shared(two_clients: tuple[object, object]) -> None:
    a, b = (RedisBudgetStore(lambda c=c: c) for c in two_clients)
    a.narrow("k", 0.5, span=10)
    waits = [b.reserve("k", 0.0, 0.0, 60) for _ in range(2)]
    assert [w.wait for w in waits] == pytest.approx([0, 0.5], abs=0.02)
    assert waits[1].reason is WaitReason.API_HEADERS


def test_redis_slots_are_leases_and_a_release_wakes_a_waiter(
    two_clients: tuple[object, object],
) -> None:
    a, b = (RedisBudgetStore(lambda c=c: c) for c in two_clients)
    held = a.acquire_slot("k", 1, lease=30, wait=0)
    assert held is not None
    assert b.acquire_slot("k", 1, lease=30, wait=0.05) is None
    threading.Timer(0.1, a.release_slot, ("k", held, 1)).start()
    started = time.monotonic()
    assert b.acquire_slot("k", 1, lease=30, wait=5) is not None
    # Woken by the release, not by asking again after MAX_BLOCK (1 s).
    assert time.monotonic() - started < 0.6
    # A holder that never releases (a killed task): its lease ends by itself.
    assert a.acquire_slot("j", 1, lease=0.2, wait=0) is not None
    started = time.monotonic()
    assert b.acquire_slot("j", 1, lease=30, wait=2) is not None
    assert time.monotonic() - started < 0.8  # when its lease ended


def test_redis_keys_hold_no_origin_or_client(redis_server: RedisServer, redis_url: str) -> None:
    from airflow_provider_oauthcc.auth.rate_limit import make_budget_plan

    config = extras(rate_limit="5/s", max_concurrency=1)
    budget_plan = make_budget_plan(config, "https://api.example:443", "https://api.example")
    assert budget_plan is not None
    client = redis_server.client()
    store = RedisBudgetStore(lambda: client)
    store.reserve(budget_plan.key, 0.2, 0, 60)
    store.acquire_slot(budget_plan.key, 1, 30, 0)
    names = b" ".join(client.keys("*"))
    assert names and b"api.example" not in names and b"app" not in names


# -- failing open ----------------------------------------------------------------------------


def dead_redis_store() -> RedisBudgetStore:
    import redis

    url = f"redis://:pass-word-77@127.0.0.1:{free_port()}/0"
    return RedisBudgetStore(lambda: redis.Redis.from_url(url, socket_connect_timeout=0.5))


def test_a_dead_redis_limits_in_process_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FailOpenBudgetStore(dead_redis_store(), LocalBudgetStore())
    budget = RequestBudget(
        plan(BudgetSettings(parse_rate_limit("100/s"), max_concurrency=1)), store
    )
    caplog.set_level(logging.WARNING, "airflow_provider_oauthcc")
    for _ in range(3):
        with budget.slot():
            pass
        budget.learn(200, {"RateLimit-Remaining": "5", "RateLimit-Reset": "1"})
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings
    assert "limiting requests in this process only" in warnings[0]
    assert "pass-word-77" not in caplog.text
    assert store.local.reserve("k", 0.01, 0, 60).wait > 0  # the local budget was used


# -- async ----------------------------------------------------------------------------------


def test_async_wait_does_not_block_the_loop() -> None:
    async def main() -> tuple[int, float]:
        budget = AsyncRequestBudget(plan(BudgetSettings(parse_rate_limit("4/s"))))
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        for _ in range(3):
            async with budget.slot():
                pass
        task.cancel()
        return ticks, time.monotonic() - started

    from airflow_provider_oauthcc.auth.rate_limit_local import process_budgets

    process_budgets().clear()
    ticks, took = asyncio.run(main())
    assert took == pytest.approx(0.5, abs=0.15)
    assert ticks >= 20  # the loop ran while the budget waited


def test_async_redis_store_shares_the_sync_budget(
    redis_server: RedisServer, redis_url: str
) -> None:
    client = redis_server.client()
    sync = RedisBudgetStore(lambda: client)

    async def main() -> list[float]:
        store = AsyncFailOpenStore(AsyncRedisStore(lambda: client))
        assert store.shared is not None
        first = await store.reserve("k", 0.2, 0, 60)
        second = sync.reserve("k", 0.2, 0, 60)
        await store.pause("k", 1.0)
        third = await store.reserve("k", 0.2, 0, 60)
        slot = await store.acquire_slot("k", 1, 30, 0)
        assert slot is not None and slot != "local"
        assert await store.acquire_slot("k", 1, 30, 0.05) is None
        await store.release_slot("k", slot, 1)
        twin = await store.shared._client()
        assert twin is not None  # redis.asyncio, not threads
        return [first.wait, second.wait, third.wait]

    waits = asyncio.run(main())
    assert waits == pytest.approx([0, 0.2, 1.0], abs=0.05)
