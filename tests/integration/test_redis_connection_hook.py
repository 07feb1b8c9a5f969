"""The Redis token cache reaches Redis the way the Redis provider's ``RedisHook`` does: the
Airflow Redis connection's TLS extras (``ssl``, ``ssl_ca_certs`` ...), its password and ``db``
count for the token cache as for every other user of that connection.

Real servers: a TLS-only ``redis-server`` with a throwaway CA, a password-protected one, and the
local authorization server counting token requests.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from airflow_provider_oauthcc.hooks.oauth_cc_async import OAuthCCAsyncHook
from devserver import DevServer
from devserver.pki import DevPKI, make_dev_pki
from tests.support.connections import airflow_conn, conn_json
from tests.support.redis_server import RedisServer
from tests.support.task_processes import TaskResult, run_tasks

from .conftest import SECRET

REDIS_CONN_ID = "token_redis"
REDIS_PASSWORD = "r3dis-Pass-word-77"
PROCESSES = 2


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPKI:
    return make_dev_pki(tmp_path_factory.mktemp("redis-pki"), ca_name="redis test CA")


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dev_pki(tmp_path_factory.mktemp("other-pki"), ca_name="another CA").ca_cert


def _started(**options: Any) -> RedisServer:
    try:
        return RedisServer(**options)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def tls_redis(pki: DevPKI) -> Iterator[RedisServer]:
    server = _started(tls=pki)
    yield server
    _close_and_stop(server)


@pytest.fixture(scope="module")
def password_redis() -> Iterator[RedisServer]:
    server = _started(password=REDIS_PASSWORD)
    yield server
    _close_and_stop(server)


def _close_and_stop(server: RedisServer) -> None:
    from airflow_provider_oauthcc.auth.cache.redis import close_clients

    close_clients()
    server.stop()


@pytest.fixture(autouse=True)
def _empty_redis(request: pytest.FixtureRequest) -> Iterator[None]:
    servers = [
        request.getfixturevalue(name)
        for name in ("tls_redis", "password_redis")
        if name in request.fixturenames
    ]
    for server in servers:
        client: Any = server.client()
        client.flushall()
        client.close()
    yield
    from airflow_provider_oauthcc.auth.cache.redis import close_clients

    close_clients()  # the next test's connection may differ: no client kept across tests


def redis_conn(server: RedisServer, **fields: Any) -> str:
    return json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": server.port, **fields})


def oauth_conn(server: DevServer) -> str:
    return conn_json(
        server.api_url,
        "app",
        SECRET,
        auth_url=server.token_url,
        scope="read",
        cache_backend="redis",
        cache_redis_conn_id=REDIS_CONN_ID,
    )


def tasks(server: DevServer, redis_connection: str) -> list[TaskResult]:
    return run_tasks(
        PROCESSES,
        "crm_api",
        oauth_conn(server),
        env={f"AIRFLOW_CONN_{REDIS_CONN_ID.upper()}": redis_connection},
    )


def cached_entries(redis_server: RedisServer) -> int:
    client: Any = redis_server.client()
    try:
        return len(client.keys("oauthcc:token:*"))
    finally:
        client.close()


def warnings_of(results: list[TaskResult]) -> list[str]:
    return [m for r in results for level, m in r.logs if level == "WARNING"]


def our_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("airflow_provider_oauthcc")
    ]


def test_tls_connection_with_its_ca_shares_one_token_across_processes(
    server: DevServer, tls_redis: RedisServer, pki: DevPKI
) -> None:
    connection = redis_conn(tls_redis, extra={"ssl": True, "ssl_ca_certs": str(pki.ca_cert)})

    results = tasks(server, connection)

    assert [r.error for r in results if not r.ok] == []
    assert warnings_of(results) == []
    assert server.stats.token_requests == 1
    assert server.stats.api_requests == PROCESSES
    assert cached_entries(tls_redis) == 1


def test_async_hook_uses_the_tls_connection_too(
    server: DevServer, tls_redis: RedisServer, pki: DevPKI, caplog: pytest.LogCaptureFixture
) -> None:
    """The triggerer's hook caches in the TLS Redis; a worker's hook then finds the token."""
    connection = redis_conn(tls_redis, extra={"ssl": "true", "ssl_ca_certs": str(pki.ca_cert)})
    with airflow_conn(REDIS_CONN_ID, connection), airflow_conn("crm_async", oauth_conn(server)):

        async def token() -> str:
            provider = await OAuthCCAsyncHook(oauth_conn_id="crm_async").token_provider()
            return (await provider.get_token()).access_token

        first = asyncio.run(token())
        PROCESS_CACHE.clear()  # as another process: only Redis has the token
        assert OAuthCCHook(oauth_conn_id="crm_async").get_token() == first

    assert server.stats.token_requests == 1
    assert cached_entries(tls_redis) == 1
    assert our_warnings(caplog) == []


@pytest.mark.parametrize("ca", ["another CA", "no CA"])
def test_tls_connection_without_the_right_ca_fails_open(
    server: DevServer,
    tls_redis: RedisServer,
    other_ca: Path,
    ca: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    extra: dict[str, Any] = {"ssl": True}
    if ca == "another CA":
        extra["ssl_ca_certs"] = str(other_ca)
    with (
        airflow_conn(REDIS_CONN_ID, redis_conn(tls_redis, password=REDIS_PASSWORD, extra=extra)),
        airflow_conn("crm_badca", oauth_conn(server)),
    ):
        hook = OAuthCCHook(oauth_conn_id="crm_badca")
        assert hook.run("/v1/whoami").json()["client_id"] == "app"
        assert hook.run("/v1/whoami").status_code == 200

    assert server.stats.token_requests == 1  # the process cache still serves this process
    # One from the token cache; the request budget's store says it limits in-process.
    everything = our_warnings(caplog)
    warnings = [w for w in everything if "Token cache 'redis'" in w]
    assert len(warnings) == 1, everything
    assert len(everything) <= 2, everything
    assert "certificate verify failed" in warnings[0] or "SSL" in warnings[0]
    assert not [w for w in everything if SECRET in w or REDIS_PASSWORD in w]
    assert cached_entries(tls_redis) == 0


def test_password_protected_redis_through_the_connection(
    server: DevServer, password_redis: RedisServer
) -> None:
    results = tasks(server, redis_conn(password_redis, password=REDIS_PASSWORD))

    assert [r.error for r in results if not r.ok] == []
    assert warnings_of(results) == []
    assert server.stats.token_requests == 1
    assert cached_entries(password_redis) == 1


def test_wrong_redis_password_fails_open_without_showing_it(
    server: DevServer, password_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-Pass-word-31"
    with (
        airflow_conn(REDIS_CONN_ID, redis_conn(password_redis, password=wrong)),
        airflow_conn("crm_badpw", oauth_conn(server)),
    ):
        assert OAuthCCHook(oauth_conn_id="crm_badpw").run("/v1/whoami").status_code == 200

    # One from the token cache; the request budget's store says it limits in-process.
    everything = our_warnings(caplog)
    warnings = [w for w in everything if "Token cache 'redis'" in w]
    assert len(warnings) == 1, everything
    assert len(everything) <= 2, everything
    assert not [w for w in everything if wrong in w or SECRET in w]
    assert cached_entries(password_redis) == 0


def test_db_extra_selects_the_database(server: DevServer, password_redis: RedisServer) -> None:
    # As a URI gives them (?db=3&ssl=false): text; "false" is no TLS.
    extra = {"db": "3", "ssl": "false"}
    connection = redis_conn(password_redis, password=REDIS_PASSWORD, extra=extra)
    with (
        airflow_conn(REDIS_CONN_ID, connection),
        airflow_conn("crm_db", oauth_conn(server)),
    ):
        assert OAuthCCHook(oauth_conn_id="crm_db").run("/v1/whoami").status_code == 200

    db0, db3 = password_redis.client(), password_redis.client(db=3)
    try:
        assert db0.keys("oauthcc:token:*") == []
        assert len(db3.keys("oauthcc:token:*")) == 1
    finally:
        db0.close()
        db3.close()
