"""Every request of both paths passes the request budget, against the real local API: the
sync hook's sessions (one process: its threads and sessions share the budget), the async hook
(the triggerer's path), and the operator's execution_timeout bounding a wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import aiohttp
import pytest

from airflow_provider_oauthcc.auth.rate_limit_core import BudgetWaitError
from airflow_provider_oauthcc.auth.rate_limit_local import process_budgets
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from airflow_provider_oauthcc.hooks.oauth_cc_async import OAuthCCAsyncHook
from airflow_provider_oauthcc.operators.oauth_http import _bound_budget_waits
from devserver import DevServer
from tests.support.connections import airflow_conn, conn_json

from .conftest import SECRET

pytestmark = pytest.mark.integration

CONN = "budgeted"
N = 20


@pytest.fixture(autouse=True)
def _fresh_budgets() -> Iterator[None]:
    process_budgets().clear()
    yield
    process_budgets().clear()


def connect(server: DevServer, **extra: object) -> str:
    value = conn_json(server.api_url, "app", SECRET, auth_url=server.token_url, **extra)
    return value


def test_sync_sessions_share_the_budget(server: DevServer) -> None:
    server.api_rate_limit.configure(per_second=N)
    with airflow_conn(CONN, connect(server, rate_limit=f"{N}/s", rate_limit_learn="false")):
        hook = OAuthCCHook(oauth_conn_id=CONN)
        hook.get_token()

        def call(_: int) -> int:
            return int(hook.get_conn().get(f"{server.api_url}/v1/whoami").status_code)

        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(call, range(2 * N)))
    counts = server.api_rate_limit.counts("app")
    assert statuses == [200] * 2 * N
    assert counts.refused == 0  # the server's own limit judges
    # Measured at the server, over arrival times that a loaded machine delays unevenly.
    assert counts.rate() <= 1.25 * N


def test_a_429_to_one_session_pauses_the_others(server: DevServer) -> None:
    with airflow_conn(CONN, connect(server)):
        hook = OAuthCCHook(oauth_conn_id=CONN)
        first, second = hook.get_conn(), hook.get_conn()
        server.api_faults.add(status=429, retry_after=1, times=1)
        assert first.get(f"{server.api_url}/v1/whoami").status_code == 429
        started = time.monotonic()
        assert second.get(f"{server.api_url}/v1/whoami").status_code == 200
        assert time.monotonic() - started >= 0.9


def test_learning_off_does_not_pause(server: DevServer) -> None:
    with airflow_conn(CONN, connect(server, rate_limit_learn="false")):
        hook = OAuthCCHook(oauth_conn_id=CONN)
        assert hook.request_budget() is None  # nothing to do: no budget at all
        session = hook.get_conn()
        server.api_faults.add(status=429, retry_after=5, times=1)
        assert session.get(f"{server.api_url}/v1/whoami").status_code == 429
        started = time.monotonic()
        assert session.get(f"{server.api_url}/v1/whoami").status_code == 200
        assert time.monotonic() - started < 1


def test_async_hook_waits_for_the_budget(server: DevServer) -> None:
    server.api_rate_limit.configure(per_second=N)

    async def main() -> list[int]:
        hook = OAuthCCAsyncHook(oauth_conn_id=CONN)
        async with aiohttp.ClientSession() as session:
            await hook.run(session, "/v1/whoami")  # the token first
            answers = await asyncio.gather(*(hook.run(session, "/v1/whoami") for _ in range(2 * N)))
        return [a.status_code for a in answers]

    with airflow_conn(CONN, connect(server, rate_limit=f"{N}/s", rate_limit_learn="false")):
        started = time.monotonic()
        statuses = asyncio.run(main())
        took = time.monotonic() - started
    assert statuses == [200] * 2 * N
    assert server.api_rate_limit.counts("app").refused == 0
    assert took >= (2 * N - 1) / N * 0.9


def test_async_hook_learns_a_429(server: DevServer) -> None:
    async def main() -> float:
        hook = OAuthCCAsyncHook(oauth_conn_id=CONN)
        async with aiohttp.ClientSession() as session:
            await hook.run(session, "/v1/whoami")
            server.api_faults.add(status=429, retry_after=1, times=1)
            await hook.run(session, "/v1/whoami", extra_options={"check_response": False})
            started = time.monotonic()
            await hook.run(session, "/v1/whoami")
            return time.monotonic() - started

    with airflow_conn(CONN, connect(server)):
        assert asyncio.run(main()) >= 0.9


def test_execution_timeout_bounds_the_wait(server: DevServer) -> None:
    with airflow_conn(CONN, connect(server)):
        hook = OAuthCCHook(oauth_conn_id=CONN)
        session = hook.get_conn()
        started = datetime.now(UTC) - timedelta(seconds=50)
        _bound_budget_waits(
            session, timedelta(seconds=60), {"ti": SimpleNamespace(start_date=started)}
        )
        server.api_faults.add(status=429, retry_after=30, times=1)
        assert session.get(f"{server.api_url}/v1/whoami").status_code == 429
        begun = time.monotonic()
        with pytest.raises(BudgetWaitError, match=r"wait 30\.0 s .* more than the (9|10)\.\d s"):
            session.get(f"{server.api_url}/v1/whoami")
        assert time.monotonic() - begun < 1
