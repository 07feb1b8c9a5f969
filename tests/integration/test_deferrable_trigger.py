"""OAuthHttpTrigger against the real local authorization server and API: tokens fetched in the
triggerer, nothing secret stored, errors as the provider's exceptions."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE
from airflow_provider_oauthcc.auth.errors import (
    ApiConnectionError,
    ApiError,
    ApiUnauthorizedError,
    OAuthCCConfigError,
    TokenRequestError,
    TokenRequestRejected,
)
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from airflow_provider_oauthcc.triggers import events
from airflow_provider_oauthcc.triggers.oauth_http import OAuthHttpTrigger
from devserver import DevServer
from tests.support.canned_http import CannedServer
from tests.support.connections import airflow_conn, conn_json
from tests.support.deferral import first_event, rebuild_trigger
from tests.support.redis_server import RedisServer, redis_server

from .conftest import SECRET

__all__ = ["redis_server"]  # fixture

CONN = "crm_deferred"


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    """One server for the module (the tests reset it): starting one per test costs more."""
    with DevServer(api_workers=64) as srv:
        srv.add_client("app", secret=SECRET, scope="read write", default_scope="read")
        yield srv


@pytest.fixture(autouse=True)
def _reset(server: DevServer) -> None:
    server.reset()


@pytest.fixture
def conn(server: DevServer) -> Iterator[str]:
    with airflow_conn(CONN, conn_json(server.api_url, "app", SECRET, auth_url=server.token_url)):
        yield CONN


def run(trigger: OAuthHttpTrigger) -> dict[str, Any]:
    """Store the trigger as Airflow does, rebuild it, and run it to its event."""
    classpath, kwargs = trigger.serialize()
    rebuilt = rebuild_trigger(classpath, json.loads(json.dumps(kwargs)))
    payload: dict[str, Any] = asyncio.run(first_event(rebuilt)).payload
    return payload


def tokens_sent(server: DevServer) -> set[str]:
    return {
        c.headers["Authorization"].split()[1]
        for c in server.stats.api_captures
        if "Authorization" in c.headers
    }


def test_calls_the_api_with_a_token_fetched_in_the_triggerer(server: DevServer, conn: str) -> None:
    trigger = OAuthHttpTrigger(conn, "/v1/whoami", data={"verbose": "1"})
    event = run(trigger)
    assert event["status"] == "success"
    response = events.decode_response(event["response"])
    assert response.status_code == 200 and response.json()["client_id"] == "app"
    assert server.stats.token_requests == 1
    (capture,) = server.stats.api_captures
    assert capture.path == "/v1/whoami" and capture.query_string == "verbose=1"


def test_stored_trigger_and_event_hold_no_secret_and_no_token(server: DevServer, conn: str) -> None:
    trigger = OAuthHttpTrigger(conn, "/v1/whoami", headers={"X-Request-Id": "r-1"})
    before = json.dumps(trigger.serialize())
    event = json.dumps(run(trigger))
    after = json.dumps(trigger.serialize())  # the same object, once it ran
    (token,) = tokens_sent(server)
    for stored in (before, after, event):
        assert SECRET not in stored
        assert token not in stored and token.split(".")[2] not in stored
    assert before == after
    assert CONN in before and "/v1/whoami" in before


def test_connection_headers_and_token_are_added_in_the_triggerer(server: DevServer) -> None:
    value = conn_json(
        server.api_url, "app", SECRET, auth_url=server.token_url, headers={"X-Tenant": "acme"}
    )
    with airflow_conn("crm_headers", value):
        event = run(OAuthHttpTrigger("crm_headers", "/v1/whoami"))
    assert event["status"] == "success"
    (capture,) = server.stats.api_captures
    assert capture.headers["X-Tenant"] == "acme"
    assert capture.headers["Authorization"].startswith("Bearer ")
    assert "X-Tenant" not in json.dumps(OAuthHttpTrigger("crm_headers").serialize())


def test_post_sends_data_as_the_body(server: DevServer, conn: str) -> None:
    event = run(OAuthHttpTrigger(conn, "/v1/echo", method="POST", data={"a": "1", "b": "x y"}))
    echoed = events.decode_response(event["response"]).json()
    assert echoed["method"] == "POST" and echoed["form"] == {"a": ["1"], "b": ["x y"]}
    event = run(OAuthHttpTrigger(conn, "/v1/echo", method="PUT", json={"k": [1, 2]}))
    echoed = events.decode_response(event["response"]).json()
    assert echoed["json"] == {"k": [1, 2]}


def test_a_revoked_token_is_refreshed_and_the_request_replayed(
    server: DevServer, conn: str
) -> None:
    assert run(OAuthHttpTrigger(conn, "/v1/whoami"))["status"] == "success"
    server.revoke_all_tokens()
    event = run(OAuthHttpTrigger(conn, "/v1/whoami"))
    assert event["status"] == "success"
    assert server.stats.token_requests == 2
    assert server.stats.api_requests_by_status == {200: 2, 401: 1}


def test_a_second_401_fails_with_api_unauthorized(server: DevServer, conn: str) -> None:
    server.api_faults.add(status=401, times=2)
    event = run(OAuthHttpTrigger(conn, "/v1/whoami"))
    assert event["status"] == "error"
    error = events.decode_error(event["error"])
    assert isinstance(error, ApiUnauthorizedError) and error.status == 401
    assert error.error == "invalid_token"
    assert "also after a refresh" in str(error)
    assert server.stats.token_requests == 2


def test_server_errors_are_retried_then_fail_with_api_error(server: DevServer, conn: str) -> None:
    server.api_faults.add(status=503, times=2, retry_after=0)
    ok = run(OAuthHttpTrigger(conn, "/v1/whoami", retries=2, retry_max_wait=0.1))
    assert ok["status"] == "success"
    server.api_faults.add(status=500, every=1)
    event = run(OAuthHttpTrigger(conn, "/v1/whoami", retries=1, retry_max_wait=0.1))
    error = events.decode_error(event["error"])
    assert type(error) is ApiError and error.status == 500
    assert str(error) == "500:Internal Server Error"  # as the sync hook says it
    assert server.stats.api_requests_by_status == {503: 2, 200: 1, 500: 2}


def test_non_idempotent_post_is_not_retried_after_a_500(server: DevServer, conn: str) -> None:
    server.api_faults.add(status=500, every=1)
    event = run(OAuthHttpTrigger(conn, "/v1/echo", method="POST", retries=3, retry_max_wait=0.1))
    assert events.decode_error(event["error"]).status == 500  # type: ignore[attr-defined]
    assert server.stats.api_requests == 1


def test_check_response_false_hands_back_the_failed_answer(server: DevServer, conn: str) -> None:
    event = run(OAuthHttpTrigger(conn, "/v1/nowhere", extra_options={"check_response": False}))
    assert event["status"] == "success"
    assert events.decode_response(event["response"]).status_code == 404


def test_token_endpoint_refusal_is_a_token_request_error(server: DevServer) -> None:
    value = conn_json(server.api_url, "app", "not-the-secret-1", auth_url=server.token_url)
    with airflow_conn("crm_bad_secret", value):
        event = run(OAuthHttpTrigger("crm_bad_secret", "/v1/whoami"))
    error = events.decode_error(event["error"])
    # The fail-fast kind of TokenRequestError: the task fails without using its retries.
    assert type(error) is TokenRequestRejected and isinstance(error, TokenRequestError)
    assert error.error == "invalid_client" and error.status == 401
    assert "not-the-secret-1" not in json.dumps(event)
    assert server.stats.api_requests == 0


def test_misconfigured_connection_is_a_config_error(server: DevServer) -> None:
    with airflow_conn("crm_no_auth_url", conn_json(server.api_url, "app", SECRET)):
        event = run(OAuthHttpTrigger("crm_no_auth_url", "/v1/whoami"))
    error = events.decode_error(event["error"])
    assert isinstance(error, OAuthCCConfigError) and error.field == "auth_url"
    assert SECRET not in json.dumps(event)


def test_unreachable_api_is_an_api_connection_error(server: DevServer) -> None:
    value = conn_json("http://127.0.0.1:9", "app", SECRET, auth_url=server.token_url)
    with airflow_conn("crm_down", value):
        event = run(OAuthHttpTrigger("crm_down", "/v1/whoami", retries=1, retry_max_wait=0.01))
    error = events.decode_error(event["error"])
    assert isinstance(error, ApiConnectionError) and not error.request_sent
    assert "cannot reach the API http://127.0.0.1:9" in str(error)


@pytest.fixture
def canned() -> Iterator[CannedServer]:
    other = CannedServer()
    yield other
    other.close()


def test_a_redirect_to_another_origin_is_not_followed(
    server: DevServer, conn: str, canned: CannedServer
) -> None:
    canned.add_json(200, '{"elsewhere": true}')
    server.api_faults.add(status=302, headers={"Location": f"{canned.url}/landing"})
    event = run(OAuthHttpTrigger(conn, "/v1/whoami"))
    assert event["status"] == events.ERROR
    assert event["error"]["type"] == "OriginNotAllowedError"
    assert canned.requests == []
    assert server.stats.api_captures[0].headers["Authorization"].startswith("Bearer ")


def test_same_origin_redirect_keeps_the_token(server: DevServer, conn: str) -> None:
    server.api_faults.add(status=307, headers={"Location": f"{server.api_url}/v1/whoami"})
    event = run(OAuthHttpTrigger(conn, "/v1/link/items"))
    assert events.decode_response(event["response"]).json()["client_id"] == "app"
    assert server.stats.api_requests_by_status == {307: 1, 200: 1}


def test_file_cache_is_shared_with_the_workers_hooks(server: DevServer, tmp_path: Path) -> None:
    value = conn_json(
        server.api_url,
        "app",
        SECRET,
        auth_url=server.token_url,
        cache_backend="file",
        cache_dir=str(tmp_path),
    )
    with airflow_conn("crm_file", value):
        OAuthCCHook(oauth_conn_id="crm_file").get_token()  # a worker's task
        PROCESS_CACHE.clear()  # the triggerer is another process
        event = run(OAuthHttpTrigger("crm_file", "/v1/whoami"))
    assert event["status"] == "success"
    assert server.stats.token_requests == 1


def test_redis_cache_is_read_through_the_redis_connection(
    server: DevServer, redis_server: RedisServer
) -> None:
    redis_conn = json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": redis_server.port})
    oauth_conn = conn_json(
        server.api_url,
        "app",
        SECRET,
        auth_url=server.token_url,
        cache_backend="redis",
        cache_redis_conn_id="trigger_redis",
    )
    with airflow_conn("trigger_redis", redis_conn), airflow_conn("crm_redis", oauth_conn):
        assert run(OAuthHttpTrigger("crm_redis", "/v1/whoami"))["status"] == "success"
        PROCESS_CACHE.clear()
        OAuthCCHook(oauth_conn_id="crm_redis").run("/v1/whoami")  # a worker, another process
    assert server.stats.token_requests == 1
    raw = redis.Redis(port=redis_server.port)
    assert len(raw.keys("oauthcc:token:*")) == 1
    raw.close()


def test_many_triggers_share_one_loop_and_one_token(server: DevServer, conn: str) -> None:
    count = 50
    # The API holds every request until all 50 are in flight at once: triggers that ran one
    # after another would never get there (and the watcher lets them go after 60 s).
    held = server.api_faults.add(hold=True, times=count)
    all_in_flight = threading.Event()
    held_after_waiting: list[int] = []

    def release_when_all_are_held() -> None:
        try:
            held.wait_held(count, timeout=60)
            all_in_flight.set()
        except TimeoutError:
            held_after_waiting.append(held.held)
        held.release()

    watcher = threading.Thread(target=release_when_all_are_held, daemon=True)
    watcher.start()
    triggers = [OAuthHttpTrigger(conn, "/v1/whoami") for _ in range(count)]

    async def all_events() -> list[Any]:
        return await asyncio.gather(*(first_event(t) for t in triggers))

    fired = asyncio.run(all_events())
    watcher.join(timeout=90)
    assert all_in_flight.is_set(), f"{held_after_waiting} of {count} requests in flight at once"
    assert [e.payload["status"] for e in fired] == ["success"] * count
    assert server.stats.token_requests == 1
