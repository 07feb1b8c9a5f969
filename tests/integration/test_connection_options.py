"""Documented connection options, set the way a user sets them (connection extras), read on
every path that honours them: the sync hook and the deferrable trigger; and token expiry
counted from when the token request was sent, on a token endpoint that answers slowly.

The token endpoint and the API are real HTTP servers on 127.0.0.1 answering from a script
(tests/support/canned_http.py): redirect chains and token answers without ``expires_in`` are
what the devserver does not produce on purpose.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from airflow_provider_oauthcc.hooks.oauth_cc_async import OAuthCCAsyncHook
from airflow_provider_oauthcc.triggers import events
from airflow_provider_oauthcc.triggers.oauth_http import OAuthHttpTrigger
from tests.support.canned_http import Canned, CannedServer
from tests.support.connections import airflow_conn, conn_json
from tests.support.deferral import first_event

pytestmark = pytest.mark.integration

CONN = "options_api"
SECRET = "p@ss:w+rd/9f8e-ä"


def token_answer(**fields: Any) -> Canned:
    body = {"access_token": "tok-1", "token_type": "Bearer", **fields}
    return Canned(200, json.dumps(body), {"Content-Type": "application/json"})


@pytest.fixture
def idp() -> Iterator[CannedServer]:
    server = CannedServer()
    server.default = token_answer(expires_in=3600)
    yield server
    server.close()


@pytest.fixture
def api() -> Iterator[CannedServer]:
    server = CannedServer()
    server.default = Canned(200, b'{"done": true}', {"Content-Type": "application/json"})
    yield server
    server.close()


def connection(idp: CannedServer, api: CannedServer, **extras: Any) -> Any:
    return airflow_conn(
        CONN, conn_json(api.url, "app", SECRET, auth_url=f"{idp.url}/token", **extras)
    )


def redirect(to: str) -> Canned:
    return Canned(302, b"", {"Location": to})


def trigger_event(**kwargs: Any) -> dict[str, Any]:
    trigger = OAuthHttpTrigger(CONN, "/start", **kwargs)
    payload: dict[str, Any] = asyncio.run(first_event(trigger)).payload
    return payload


# -- default_expires_in ------------------------------------------------------------------


def test_default_expires_in_from_the_connection_sync_and_async(
    idp: CannedServer, api: CannedServer
) -> None:
    idp.default = token_answer()  # no expires_in, not a JWT
    with connection(idp, api, default_expires_in=1234):
        token = OAuthCCHook(oauth_conn_id=CONN).token_provider.get_token()
        assert token.lifetime == 1234

        async def fetch() -> float:
            provider = await OAuthCCAsyncHook(oauth_conn_id=CONN).token_provider()
            from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE

            PROCESS_CACHE.clear()  # the async path fetches its own token
            return (await provider.get_token()).lifetime

        assert asyncio.run(fetch()) == 1234
    assert len(idp.requests) == 2


# -- basic_auth_encoding -----------------------------------------------------------------


def basic_credentials(idp: CannedServer) -> str:
    scheme, _, value = idp.requests[-1].headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    return base64.b64decode(value).decode()


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("plain", f"app:{SECRET}"), ("form", "app:p%40ss%3Aw%2Brd%2F9f8e-%C3%A4")],
)
def test_basic_auth_encoding_from_the_connection(
    encoding: str, expected: str, idp: CannedServer, api: CannedServer
) -> None:
    with connection(idp, api, basic_auth_encoding=encoding):
        OAuthCCHook(oauth_conn_id=CONN).get_token()
    assert basic_credentials(idp) == expected


# -- allow_redirects / max_redirects -------------------------------------------------------


@pytest.mark.parametrize("off", [False, "false"], ids=["json-false", "string-false"])
def test_allow_redirects_off_from_the_connection_sync(
    off: Any, idp: CannedServer, api: CannedServer
) -> None:
    api.add(redirect("/elsewhere"))
    with connection(idp, api, allow_redirects=off):
        response = OAuthCCHook(method="GET", oauth_conn_id=CONN).run("/start")
    assert response.status_code == 302
    assert [r.path for r in api.requests] == ["/start"]


@pytest.mark.parametrize("off", [False, "false"], ids=["json-false", "string-false"])
def test_allow_redirects_off_from_the_connection_deferrable(
    off: Any, idp: CannedServer, api: CannedServer
) -> None:
    api.add(redirect("/elsewhere"))
    with connection(idp, api, allow_redirects=off):
        event = trigger_event()
    assert event["status"] == "success", event
    assert events.decode_response(event["response"]).status_code == 302
    assert [r.path for r in api.requests] == ["/start"]


def test_redirects_are_followed_by_default(idp: CannedServer, api: CannedServer) -> None:
    api.add(redirect("/b"))
    with connection(idp, api):
        assert OAuthCCHook(method="GET", oauth_conn_id=CONN).run("/start").status_code == 200
    api.add(redirect("/b"))
    with connection(idp, api):
        assert trigger_event()["status"] == "success"
    assert [r.path for r in api.requests] == ["/start", "/b", "/start", "/b"]


def test_max_redirects_from_the_connection_sync(idp: CannedServer, api: CannedServer) -> None:
    api.add(redirect("/b"), redirect("/c"), redirect("/d"))
    with (
        connection(idp, api, max_redirects=1),
        pytest.raises(requests.exceptions.TooManyRedirects),
    ):
        OAuthCCHook(method="GET", oauth_conn_id=CONN).run("/start")
    assert [r.path for r in api.requests] == ["/start", "/b"]


def test_max_redirects_from_the_connection_deferrable(idp: CannedServer, api: CannedServer) -> None:
    api.add(redirect("/b"), redirect("/c"), redirect("/d"))
    with connection(idp, api, max_redirects=1):
        event = trigger_event()
    assert event["status"] == "error", event
    assert "redirects" in str(events.decode_error(event["error"]))
    assert [r.path for r in api.requests] == ["/start", "/b"]


# -- expiry counted from when the request was sent -----------------------------------------


def test_expiry_counts_from_the_request_not_the_answer_sync(
    idp: CannedServer, api: CannedServer
) -> None:
    idp.add(Canned(**{**vars(token_answer(expires_in=3600)), "delay": 0.5}))
    with connection(idp, api):
        token = OAuthCCHook(oauth_conn_id=CONN).token_provider.get_token()
    # Sent before the server received it, whatever the delay: never counted from the answer.
    assert token.obtained_at <= idp.requests[0].received_at
    assert token.lifetime == 3600


def test_expiry_counts_from_the_request_not_the_answer_async(
    idp: CannedServer, api: CannedServer
) -> None:
    idp.add(Canned(**{**vars(token_answer(expires_in=3600)), "delay": 0.5}))

    async def fetch() -> Any:
        provider = await OAuthCCAsyncHook(oauth_conn_id=CONN).token_provider()
        return await provider.get_token()

    with connection(idp, api):
        token = asyncio.run(fetch())
    assert token.obtained_at <= idp.requests[0].received_at
    assert token.lifetime == 3600


@pytest.mark.parametrize("off", [False, "false"], ids=["json-false", "string-false"])
def test_check_response_off_from_the_connection_sync_and_deferrable(
    off: Any, idp: CannedServer, api: CannedServer
) -> None:
    api.add(Canned(404, b"missing"), Canned(404, b"missing"))
    with connection(idp, api, check_response=off):
        assert OAuthCCHook(method="GET", oauth_conn_id=CONN).run("/start").status_code == 404
        event = trigger_event()
    assert event["status"] == "success", event
    assert events.decode_response(event["response"]).status_code == 404
