"""The shared token cache across real task processes, against the local authorization server
and a real Redis: one token request for a cold cache, whatever the number of processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devserver import DevServer
from tests.support.connections import conn_json
from tests.support.redis_server import RedisServer, free_port, redis_server, redis_url
from tests.support.task_processes import TaskResult, run_tasks

from .conftest import SECRET

__all__ = ["redis_server", "redis_url"]  # fixtures

PROCESSES = 16
REDIS_CONN_ID = "token_redis"


def redis_conn(port: int) -> str:
    return json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": port})


def tasks_with(
    server: DevServer, backend: str, *, cache_dir: Path, redis_port: int, count: int
) -> list[TaskResult]:
    extra = {"auth_url": server.token_url, "cache_backend": backend, "scope": "read"}
    if backend == "file":
        extra["cache_dir"] = str(cache_dir)
    if backend == "redis":
        extra["cache_redis_conn_id"] = REDIS_CONN_ID
    return run_tasks(
        count,
        "crm_api",
        conn_json(server.api_url, "app", SECRET, **extra),
        env={f"AIRFLOW_CONN_{REDIS_CONN_ID.upper()}": redis_conn(redis_port)},
    )


def fetch_lines(results: list[TaskResult]) -> list[str]:
    return [m for r in results for _, m in r.logs if m.startswith("Fetched an OAuth token")]


@pytest.mark.parametrize(("backend", "expected"), [("memory", 16), ("file", 1), ("redis", 1)])
def test_cold_cache_token_requests(
    server: DevServer,
    redis_server: RedisServer,
    redis_url: str,
    tmp_path: Path,
    backend: str,
    expected: int,
) -> None:
    results = tasks_with(
        server, backend, cache_dir=tmp_path / "c", redis_port=redis_server.port, count=PROCESSES
    )

    assert [r.error for r in results if not r.ok] == []
    assert {r.client_id for r in results} == {"app"}
    assert server.stats.token_requests == expected
    assert server.stats.api_requests == PROCESSES
    # One INFO line per real fetch, naming client, endpoint host and backend, never the token.
    lines = fetch_lines(results)
    assert len(lines) == expected
    host = server.token_url.split("/")[2]
    assert all(f"client app from {host}" in line and f"cache {backend}" in line for line in lines)
    tokens = {c.headers["Authorization"].split()[1] for c in server.stats.api_captures}
    assert len(tokens) == expected
    assert not [m for r in results for _, m in r.logs for t in tokens if t in m]
    assert not [r for r in results for level, _ in r.logs if level == "WARNING"]


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_warm_cache_serves_new_processes_without_a_request(
    server: DevServer, redis_server: RedisServer, redis_url: str, tmp_path: Path, backend: str
) -> None:
    for _ in range(2):
        results = tasks_with(
            server, backend, cache_dir=tmp_path / "c", redis_port=redis_server.port, count=4
        )
        assert all(r.ok for r in results)
    assert server.stats.token_requests == 1
    assert server.stats.api_requests == 8


def test_redis_down_tasks_still_succeed_with_one_warning(server: DevServer, tmp_path: Path) -> None:
    closed_port = free_port()  # nothing listens there
    results = tasks_with(server, "redis", cache_dir=tmp_path, redis_port=closed_port, count=3)

    assert [r.error for r in results if not r.ok] == []
    assert server.stats.token_requests == 3  # each fetched directly
    for result in results:
        everything = [m for level, m in result.logs if level == "WARNING"]
        # The request budget says once that it limits in this process only.
        warnings = [m for m in everything if not m.startswith("Request budget store 'redis'")]
        assert len(warnings) == 1 and len(everything) <= 2, everything
        assert "Token cache 'redis' failed" in warnings[0]
        assert "fetching tokens directly" in warnings[0]
    assert all("cache redis (unavailable)" in line for line in fetch_lines(results))


def test_unusable_cache_folder_tasks_still_succeed(server: DevServer, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    results = tasks_with(server, "file", cache_dir=blocker / "cache", redis_port=1, count=2)

    assert [r.error for r in results if not r.ok] == []
    assert server.stats.token_requests == 2
    assert all(len([1 for level, _ in r.logs if level == "WARNING"]) == 1 for r in results)


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_revoked_shared_token_is_replaced_once(
    server: DevServer, redis_server: RedisServer, redis_url: str, tmp_path: Path, backend: str
) -> None:
    """Eight processes start with the shared token, which the server has revoked: each gets a
    401, invalidates it and asks again. Compare-before-delete keeps the replacement alive:
    exactly one new token request, not one per process."""
    cache_dir = tmp_path / "c"
    first = tasks_with(server, backend, cache_dir=cache_dir, redis_port=redis_server.port, count=1)
    assert first[0].ok and server.stats.token_requests == 1
    server.revoke_all_tokens()

    results = tasks_with(
        server, backend, cache_dir=cache_dir, redis_port=redis_server.port, count=8
    )

    assert [r.error for r in results if not r.ok] == []
    assert server.stats.token_requests == 2
