"""The request budget across real task processes, against the local API limiting each client
to N requests a second (429 + Retry-After + RateLimit headers beyond) and a real Redis: what the
server counts is the measure (requests admitted and refused, their rate, requests in flight)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from devserver import DevServer
from tests.support.budget_tasks import PullPlan, PullResult, run_pulls
from tests.support.connections import conn_json
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.load]

SECRET = "s3cret-Value-budget-77"
N = 25  # requests per second the API allows each client
PROCESSES = 4
PULLS = 40  # in all, PULLS // PROCESSES per process
PAGES = 3
REDIS_CONN_ID = "budget_redis"


@pytest.fixture(scope="module")
def api() -> Iterator[DevServer]:
    with DevServer() as srv:
        srv.add_client("app", secret=SECRET, scope="read")
        srv.dataset_size = PAGES * 10
        yield srv


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    try:
        server = RedisServer()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


def pulls(
    api: DevServer, redis: RedisServer, *, processes: int = PROCESSES, **extra: object
) -> list[PullResult]:
    """40 pulls of PAGES pages, in ``processes`` processes of two threads, with the budget
    settings ``extra`` on a connection whose token cache (and so budget) is in ``redis``."""
    api.reset()
    api.api_rate_limit.configure(per_second=N)
    connection = conn_json(
        api.api_url,
        "app",
        SECRET,
        auth_url=api.token_url,
        scope="read",
        cache_backend="redis",
        cache_redis_conn_id=REDIS_CONN_ID,
        **extra,
    )
    redis_conn = json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": redis.port})
    plan = PullPlan(
        "crm",
        connection,
        params={"limit": 10},
        pulls=PULLS // processes,
        threads=2,
        env={f"AIRFLOW_CONN_{REDIS_CONN_ID.upper()}": redis_conn},
    )
    return run_pulls(processes, plan)


def failures(results: list[PullResult]) -> list[str]:
    return [error for result in results for error in result.failed]


def test_rate_limit_uses_the_api_limit_without_a_429(api: DevServer, redis: RedisServer) -> None:
    # The configured limit alone: not helped by the API's headers.
    results = pulls(api, redis, rate_limit=f"{N}/s", rate_limit_learn=False)
    counts = api.api_rate_limit.counts("app")
    assert failures(results) == []
    assert counts.admitted == PULLS * PAGES
    assert counts.refused == 0
    assert 0.85 * N <= counts.rate() <= 1.1 * N, f"{counts.rate():.1f} requests/s of {N}"

    unlimited = pulls(api, redis, rate_limit_learn=False)
    refused = api.api_rate_limit.counts("app").refused
    failed = len(failures(unlimited))
    print(
        f"\nrate_limit {N}/s: 0 429s, {counts.rate():.1f} requests/s; without a budget: "
        f"{refused} 429s, {failed} of {PULLS} pulls failed"
    )
    assert refused > 0  # the comparison shows something: the limit is real


def test_rate_limit_headers_alone_spare_most_429s(api: DevServer, redis: RedisServer) -> None:
    pulls(api, redis, rate_limit_learn=False)
    refused_without = api.api_rate_limit.counts("app").refused
    results = pulls(api, redis)
    refused_with = api.api_rate_limit.counts("app").refused
    print(f"\n429s: {refused_without} with the budget off, {refused_with} learning from headers")
    assert failures(results) == []
    assert refused_without >= 10
    assert refused_with <= 0.1 * refused_without


def test_redis_killed_mid_run_fails_no_task(api: DevServer, redis: RedisServer) -> None:
    done = threading.Event()
    admitted_at_kill: list[int] = []

    def kill_mid_run() -> None:
        while not done.wait(0.02):
            admitted = api.api_rate_limit.counts("app").admitted
            if admitted >= PULLS * PAGES // 3:
                redis.stop()
                admitted_at_kill.append(admitted)
                return

    killer = threading.Thread(target=kill_mid_run)
    killer.start()
    try:
        results = pulls(api, redis, rate_limit=f"{N}/s")
    finally:
        done.set()
        killer.join()
    assert admitted_at_kill and admitted_at_kill[0] < PULLS * PAGES * 2 // 3, admitted_at_kill
    assert failures(results) == []
    assert api.api_rate_limit.counts("app").admitted == PULLS * PAGES
    warned = [[w for w in r.warnings if "Request budget store" in w] for r in results]
    assert any(warned), "no process said it went on without Redis"
    assert all(len(w) <= 1 for w in warned), warned


def test_max_concurrency_holds_across_processes(api: DevServer, redis: RedisServer) -> None:
    api.reset()
    api.api_rate_limit.configure(per_second=None)  # counting only
    connection = conn_json(
        api.api_url,
        "app",
        SECRET,
        auth_url=api.token_url,
        scope="read",
        cache_backend="redis",
        cache_redis_conn_id=REDIS_CONN_ID,
        max_concurrency=2,
    )
    redis_conn = json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": redis.port})
    plan = PullPlan(
        "crm",
        connection,
        endpoint="/v1/sleep",
        params={"seconds": 0.05},
        pulls=2,
        threads=2,
        env={f"AIRFLOW_CONN_{REDIS_CONN_ID.upper()}": redis_conn},
    )
    results = run_pulls(8, plan)  # 16 tasks at once: 8 processes of 2 threads
    counts = api.api_rate_limit.counts("app")
    assert failures(results) == []
    assert counts.admitted == 16
    assert counts.max_in_flight == 2
