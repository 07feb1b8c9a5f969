"""OAuthHttpTriggers at a triggerer's scale: hundreds of triggers over a hundred connections in
one event loop whose default executor has only two threads, against the devserver in its own
process, with each token cache starting cold.

Before the async token path was reworked, a pool thread waited on the loop for each cold token:
with more distinct cold tokens than pool threads, every trigger hung (issue 11).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE
from airflow_provider_oauthcc.triggers.oauth_http import OAuthHttpTrigger
from tests.support.connections import airflow_conn, conn_json
from tests.support.deferral import first_event, rebuild_trigger
from tests.support.devserver_process import control_stats, devserver_process
from tests.support.redis_server import RedisServer, redis_server
from tests.support.silent_server import SilentServer
from tests.support.triggerer_loop import POOL_THREADS, LoopReport, run_bounded

__all__ = ["redis_server"]  # fixture

pytestmark = [pytest.mark.load, pytest.mark.timeout(660)]

SECRET = "scale-secret-8d1c2b"
CONNECTIONS = 100
TRIGGERS = 500
# A hang (the old code: no trigger ever fired) fails the test at this bound. 500 triggers take
# 11-30 s on a 2-core machine, quiet or with one core kept busy, and up to 325 s when other
# test runs share it (load average 10): every trigger sets up (connection, cache) through the
# loop's two pool threads before the first token request, so they fire together near the
# end, and a bound on the time between fires would not tell slow from hung.
ALL_FIRE_WITHIN = 600.0
# 500 connections opened at once overflow the devserver's accept backlog (128) and wait for
# SYN retransmits, which take longer than the default 30 s on a loaded machine.
CONNECT_TIMEOUT = 120
REDIS_CONN = "scale_redis"


def client_id(number: int) -> str:
    return f"scale-{number:03d}"


@pytest.fixture(scope="module")
def devserver() -> Iterator[dict[str, Any]]:
    clients = [
        {"client_id": client_id(n), "secret": SECRET, "scope": "read"} for n in range(CONNECTIONS)
    ]
    with devserver_process(clients, "--api-workers", "64") as state:
        yield state


@pytest.fixture(autouse=True)
def _cold(devserver: dict[str, Any]) -> Iterator[None]:
    requests.post(f"{devserver['control_url']}/reset", timeout=10).raise_for_status()
    PROCESS_CACHE.clear()
    yield
    PROCESS_CACHE.clear()


@pytest.fixture(params=["memory", "file", "redis"])
def cache_extra(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The connection extras of a cold cache of each backend."""
    backend = request.param
    if backend == "memory":
        yield {"cache_backend": "memory"}
    elif backend == "file":
        yield {"cache_backend": "file", "cache_dir": str(tmp_path / "tokens")}
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        import redis

        client = redis.Redis(port=server.port)
        client.flushall()
        client.close()
        value = json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": server.port})
        with airflow_conn(REDIS_CONN, value):
            yield {"cache_backend": "redis", "cache_redis_conn_id": REDIS_CONN}


def connections(stack: ExitStack, devserver: dict[str, Any], count: int, **extra: Any) -> list[str]:
    """``count`` connections, one devserver client each, as AIRFLOW_CONN_* variables."""
    ids = []
    for number in range(count):
        conn_id = f"scale_conn_{number:03d}"
        value = conn_json(
            devserver["api_url"],
            client_id(number),
            SECRET,
            auth_url=devserver["token_url"],
            scope="read",
            timeout=CONNECT_TIMEOUT,
            **extra,
        )
        ids.append(stack.enter_context(airflow_conn(conn_id, value)))
    return ids


def stored(trigger: OAuthHttpTrigger) -> Any:
    """The trigger as a triggerer gets it: rebuilt from its stored form."""
    classpath, kwargs = trigger.serialize()
    return rebuild_trigger(classpath, json.loads(json.dumps(kwargs)))


async def fire_all(triggers: list[Any]) -> list[dict[str, Any]]:
    fired = await asyncio.gather(*(first_event(t) for t in triggers))
    return [event.payload for event in fired]


def test_500_triggers_over_100_connections_in_a_two_thread_loop(
    devserver: dict[str, Any], cache_extra: dict[str, Any]
) -> None:
    report = LoopReport()
    with ExitStack() as stack:
        conn_ids = connections(stack, devserver, CONNECTIONS, **cache_extra)
        triggers = [
            stored(OAuthHttpTrigger(conn_ids[n % CONNECTIONS], "/v1/whoami"))
            for n in range(TRIGGERS)
        ]
        started = time.perf_counter()
        payloads = run_bounded(lambda: fire_all(triggers), timeout=ALL_FIRE_WITHIN, report=report)
        elapsed = time.perf_counter() - started
    print(
        f"{TRIGGERS} triggers, {CONNECTIONS} connections, {POOL_THREADS} threads: {elapsed:.1f} s"
    )
    assert [p["status"] for p in payloads] == ["success"] * TRIGGERS, payloads[:3]
    stats = control_stats(devserver)
    assert stats["token_requests_by_client"] == {client_id(n): 1 for n in range(CONNECTIONS)}
    assert stats["api_requests"] == TRIGGERS
    assert report.pending_tasks == []
    assert report.busy_pool_threads == []
    assert report.new_non_daemon_threads == []


def test_a_hung_token_endpoint_does_not_delay_the_other_connections(
    devserver: dict[str, Any], cache_extra: dict[str, Any]
) -> None:
    """One connection's token endpoint accepts and never answers (its timeout is far above
    the bound): the other connections' triggers all fire; the hung ones wait until the
    triggerer cancels them, and then nothing is left running."""
    report = LoopReport()
    healthy_count = 20
    with ExitStack() as stack:
        silent = stack.enter_context(SilentServer())
        conn_ids = connections(stack, devserver, healthy_count, **cache_extra)
        hung_value = conn_json(
            devserver["api_url"],
            client_id(healthy_count),
            SECRET,
            auth_url=f"{silent.url}/token",
            scope="read",
            timeout=3600,
            **cache_extra,
        )
        hung_id = stack.enter_context(airflow_conn("scale_conn_hung", hung_value))
        healthy = [stored(OAuthHttpTrigger(c, "/v1/whoami")) for c in conn_ids for _ in range(5)]
        hung = [stored(OAuthHttpTrigger(hung_id, "/v1/whoami")) for _ in range(5)]

        async def scenario() -> tuple[list[dict[str, Any]], list[bool]]:
            hung_tasks = [asyncio.create_task(first_event(t)) for t in hung]
            # The hung triggers start first and hold whatever they take.
            while silent.accepted == 0:
                await asyncio.sleep(0.05)
            payloads = await fire_all(healthy)
            still_waiting = [not t.done() for t in hung_tasks]
            for task in hung_tasks:  # as the triggerer cancels a trigger whose task timed out
                task.cancel()
            await asyncio.gather(*hung_tasks, return_exceptions=True)
            return payloads, still_waiting

        payloads, still_waiting = run_bounded(scenario, timeout=ALL_FIRE_WITHIN, report=report)
    assert [p["status"] for p in payloads] == ["success"] * len(healthy)
    assert still_waiting == [True] * len(hung)
    stats = control_stats(devserver)
    assert stats["token_requests_by_client"] == {client_id(n): 1 for n in range(healthy_count)}
    assert report.pending_tasks == []
    assert report.busy_pool_threads == []
    assert report.new_non_daemon_threads == []
