"""Per-task scope / audience / resource against the real authorization server and API: each
distinct set is its own token (the API sees its scope), a repeated set reuses its token, in the
worker and in the triggerer alike."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from airflow_provider_oauthcc.hooks.oauth_cc_async import OAuthCCAsyncHook
from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.sensors.oauth_http import OAuthHttpSensor
from airflow_provider_oauthcc.triggers import events
from airflow_provider_oauthcc.triggers.oauth_http import OAuthHttpSensorTrigger
from devserver import DevServer
from tests.support.connections import conn_json
from tests.support.deferral import Deferrals, first_event, rebuild_trigger, run_deferrable

from .conftest import SECRET

pytestmark = pytest.mark.integration

CONN = "multi_api"


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    with DevServer() as srv:
        srv.add_client("app", secret=SECRET, scope="read write admin", default_scope="read")
        yield srv


@pytest.fixture(autouse=True)
def conn(server: DevServer, monkeypatch: pytest.MonkeyPatch) -> str:
    server.reset()
    value = conn_json(server.api_url, "app", SECRET, auth_url=server.token_url, scope="read")
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", value)
    return CONN


def whoami(deferrable: bool = False, **token_params: Any) -> dict[str, Any]:
    task = OAuthHttpOperator(
        task_id="who", oauth_conn_id=CONN, endpoint="/v1/whoami", deferrable=deferrable,
        **token_params,
    )  # fmt: skip
    text = run_deferrable(task, {}) if deferrable else task.execute({})
    claims: dict[str, Any] = json.loads(text)
    return claims


def bearer_tokens(server: DevServer) -> list[str]:
    return [c.headers["Authorization"].split()[1] for c in server.stats.api_captures]


@pytest.mark.parametrize("deferrable", [False, True], ids=["worker", "triggerer"])
def test_two_scopes_two_tokens_and_a_repeated_scope_reuses_its_token(
    server: DevServer, deferrable: bool
) -> None:
    first = whoami(deferrable, scope="write")
    second = whoami(deferrable, scope="admin read")
    third = whoami(deferrable, scope="write")

    assert first["scope"] == "write" and third["scope"] == "write"
    assert second["scope"] == "admin read"
    assert server.stats.token_requests == 2
    sent = bearer_tokens(server)
    assert sent[0] == sent[2] != sent[1]


def test_a_task_without_overrides_keeps_the_connections_scope(server: DevServer) -> None:
    assert whoami(scope="write")["scope"] == "write"
    assert whoami()["scope"] == "read"
    assert server.stats.token_requests == 2


def test_the_trigger_stores_the_overrides_and_the_triggerer_uses_them(server: DevServer) -> None:
    deferrals = Deferrals()
    task = OAuthHttpOperator(
        task_id="who", oauth_conn_id=CONN, endpoint="/v1/whoami", deferrable=True,
        scope=["write"], audience="https://reports.example", resource="https://r.example/",
    )  # fmt: skip
    claims = json.loads(run_deferrable(task, {}, deferrals))
    stored = deferrals.stored[0][1]["oauth_params"]
    assert stored == {
        "scope": "write",
        "audience": "https://reports.example",
        "resource": ["https://r.example/"],
    }
    assert claims["scope"] == "write" and claims["aud"] == "https://reports.example"
    form = server.stats.token_captures[0].form
    assert form["resource"] == "https://r.example/"


def test_audience_and_resource_are_token_identities(server: DevServer) -> None:
    def aud(**params: Any) -> Any:
        return OAuthCCHook(oauth_conn_id=CONN, **params).run("/v1/whoami").json()["aud"]

    assert aud(audience="https://a.example") == "https://a.example"
    assert aud(audience="https://b.example") == "https://b.example"
    assert aud(resource=["https://r1.example/"]) == "https://r1.example/"
    assert aud(audience="https://a.example") == "https://a.example"
    assert server.stats.token_requests == 3


def test_the_async_hook_and_the_sync_hook_share_a_scoped_token(server: DevServer) -> None:
    sync_token = OAuthCCHook(oauth_conn_id=CONN, scope="admin").get_token()

    async def async_token() -> str:
        provider = await OAuthCCAsyncHook(CONN, scope="admin").token_provider()
        return (await provider.get_token()).access_token

    assert asyncio.run(async_token()) == sync_token
    assert server.stats.token_requests == 1


def test_the_sensor_pokes_and_polls_with_its_own_scope(server: DevServer) -> None:
    sensor = OAuthHttpSensor(
        task_id="wait", oauth_conn_id=CONN, endpoint="/v1/whoami", scope="admin",
        response_check=lambda response: response.json()["scope"] == "admin",
    )  # fmt: skip
    assert sensor.poke({}) is True
    trigger = OAuthHttpSensorTrigger(
        CONN, "/v1/whoami", oauth_params=sensor.token_params.serialize(), deadline=None
    )
    classpath, kwargs = trigger.serialize()
    rebuilt = rebuild_trigger(classpath, json.loads(json.dumps(kwargs)))
    event = asyncio.run(first_event(rebuilt)).payload
    assert events.decode_response(event["response"]).json()["scope"] == "admin"
    assert server.stats.token_requests == 1  # the triggerer reused the poke's token


def test_a_scope_the_client_may_not_have_is_refused_by_the_server(server: DevServer) -> None:
    from airflow_provider_oauthcc.auth.errors import TokenRequestError

    with pytest.raises(TokenRequestError, match="invalid_scope"):
        OAuthCCHook(oauth_conn_id=CONN, scope="delete").get_token()


@pytest.mark.parametrize(
    ("params", "field"),
    [({"scope": 3}, "scope"), ({"audience": ["a"]}, "audience"), ({"resource": [1]}, "resource")],
)
def test_bad_overrides_fail_when_the_task_is_defined(params: dict[str, Any], field: str) -> None:
    with pytest.raises(OAuthCCConfigError, match=field):
        OAuthHttpOperator(task_id="t", oauth_conn_id=CONN, endpoint="/x", **params)
