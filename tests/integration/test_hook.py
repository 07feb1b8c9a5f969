"""OAuthCCHook against the real local authorization server and protected API."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
import requests

from airflow_provider_oauthcc.auth.errors import (
    ApiError,
    ApiUnauthorizedError,
    OAuthCCConfigError,
    OriginNotAllowedError,
    TokenRequestError,
)
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from devserver import DevServer
from devserver.keys import generate_private_key_pem
from tests.support.connections import airflow_conn, conn_json

from .conftest import SECRET


def hook_for(
    server: DevServer,
    conn_id: str = "crm",
    client_id: str = "app",
    secret: str | None = SECRET,
    **extra: Any,
) -> OAuthCCHook:
    extra.setdefault("auth_url", server.token_url)
    with airflow_conn(conn_id, conn_json(server.api_url, client_id, secret, **extra)):
        hook = OAuthCCHook(oauth_conn_id=conn_id)
        hook.oauth_config  # noqa: B018  (reads the connection while the env var is set)
    return hook


@pytest.mark.parametrize(
    "method", ["client_secret_basic", "client_secret_post", "client_secret_jwt"]
)
def test_secret_methods_get_a_token_the_api_accepts(server: DevServer, method: str) -> None:
    hook = hook_for(server, auth_method=method, scope="read")
    claims = hook.run("/v1/whoami").json()
    assert claims["client_id"] == "app" and claims["scope"] == "read"
    assert server.stats.token_requests_ok == 1


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256"])
def test_private_key_jwt(server: DevServer, alg: str) -> None:
    pem, jwk = generate_private_key_pem(alg)  # type: ignore[arg-type]
    server.add_client("signer", public_jwk=jwk, auth_methods=["private_key_jwt"], scope="read")
    hook = hook_for(
        server,
        client_id="signer",
        secret=None,
        auth_method="private_key_jwt",
        private_key=pem,
        key_id=jwk["kid"],
        signing_algorithm=alg,
    )
    assert hook.run("/v1/whoami").json()["sub"] == "signer"
    form = server.stats.token_captures[0].form
    assert "client_assertion" in form and "client_secret" not in form


def test_discovery_from_the_issuer(server: DevServer) -> None:
    hook = hook_for(server, auth_url=None, issuer=server.issuer)
    assert hook.run("/v1/whoami").status_code == 200


def test_discovery_with_an_issuer_path() -> None:
    with DevServer(issuer_path="/realms/demo") as srv:
        srv.add_client("app", secret=SECRET, scope="read")
        hook = hook_for(srv, auth_url=None, issuer=srv.issuer)
        assert hook.get_token()


def test_audience_and_resource_reach_the_token(server: DevServer) -> None:
    assert (
        hook_for(server, audience="https://orders.example").run("/v1/whoami").json()["aud"]
        == "https://orders.example"
    )
    other = hook_for(server, conn_id="crm2", resource="https://inventory.example", scope="write")
    assert other.run("/v1/whoami").json()["aud"] == "https://inventory.example"


def test_wrong_secret_is_invalid_client_and_not_retried(server: DevServer) -> None:
    hook = hook_for(server, secret="wrong-secret-123")
    with pytest.raises(TokenRequestError) as info:
        hook.run("/v1/whoami")
    assert info.value.error == "invalid_client" and info.value.status == 401
    assert server.stats.token_requests == 1
    assert server.stats.api_requests == 0


def test_disallowed_scope_is_invalid_scope(server: DevServer) -> None:
    with pytest.raises(TokenRequestError) as info:
        hook_for(server, scope="admin").get_token()
    assert info.value.error == "invalid_scope"


def test_token_endpoint_503_then_ok_is_retried(server: DevServer) -> None:
    server.token_faults.add(status=503, times=2)
    hook = hook_for(server)
    hook.token_provider.client.backoff = 0.01
    assert hook.run("/v1/whoami").status_code == 200
    assert server.stats.token_requests == 3


def test_token_endpoint_429_with_retry_after(server: DevServer) -> None:
    server.token_faults.add(status=429, retry_after=1)
    started = time.monotonic()
    assert hook_for(server).get_token()
    assert time.monotonic() - started >= 0.95
    assert server.stats.token_requests == 2


def test_401_refreshes_and_replays_once(server: DevServer) -> None:
    hook = hook_for(server)
    first = hook.get_token()
    server.revoke_all_tokens()
    assert hook.run("/v1/whoami").status_code == 200
    assert hook.get_token() != first
    assert server.stats.token_requests == 2
    statuses = [c.status for c in server.stats.api_captures]
    assert statuses == [401, 200]


def test_second_401_raises_with_the_api_reason(server: DevServer) -> None:
    hook = hook_for(server)
    server.api_faults.add(status=401, times=2)
    with pytest.raises(ApiUnauthorizedError) as info:
        hook.run("/v1/whoami")
    assert info.value.status == 401 and info.value.error == "invalid_token"
    assert server.stats.api_requests == 2


def test_other_api_errors_raise_api_error(server: DevServer) -> None:
    with pytest.raises(ApiError) as info:
        hook_for(server).run("/v1/nowhere")
    assert info.value.status == 404


def test_post_body_is_replayed_after_401(server: DevServer) -> None:
    hook = OAuthCCHook(method="POST", oauth_conn_id="crm")
    with airflow_conn("crm", conn_json(server.api_url, "app", SECRET, auth_url=server.token_url)):
        hook.get_token()
        server.revoke_all_tokens()
        response = hook.run("/v1/echo", json={"n": 1})
    assert response.json()["json"] == {"n": 1}
    assert [c.body for c in server.stats.api_captures][-2:] == [b'{"n": 1}', b'{"n": 1}']


def test_single_flight_with_50_threads(server: DevServer) -> None:
    server.token_faults.add(delay=0.3)
    barrier = threading.Barrier(50)
    hooks = [hook_for(server) for _ in range(50)]
    results: list[int] = []

    def call(hook: OAuthCCHook) -> None:
        barrier.wait()
        results.append(hook.run("/v1/whoami").status_code)

    threads = [threading.Thread(target=call, args=(h,)) for h in hooks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 50
    assert server.stats.token_requests == 1


def test_short_lived_tokens_never_used_expired(server: DevServer) -> None:
    server.add_client("brief", secret=SECRET, scope="read", token_lifetime=2)
    hook = hook_for(server, client_id="brief")
    session = hook.get_conn()
    calls = 0
    # Call until the token was renewed three times (the server counts them), however long
    # that takes on this machine; the bound only stops a hook that never renews.
    deadline = time.monotonic() + 120
    while server.stats.token_requests < 4:
        assert time.monotonic() < deadline, "the hook did not renew its 2-second token"
        assert session.get(f"{server.api_url}/v1/whoami", timeout=30).status_code == 200
        calls += 1
        time.sleep(0.02)
    # Renewed before expiry, not after a 401. The early-refresh margin of a 2 s token is 1 s:
    # a request stalled longer than that on a loaded machine may still meet one 401 (and is
    # replayed), so one is tolerated; without early refresh every renewal follows a 401.
    assert server.stats.api_requests_by_status.get(401, 0) <= 1, "tokens were used expired"
    # Each token served several calls: renewed about once a second, not fetched per call.
    assert calls >= 2 * server.stats.token_requests


def test_no_secret_reaches_the_api(server: DevServer) -> None:
    pem, jwk = generate_private_key_pem("RS256")
    server.add_client("signer", public_jwk=jwk, auth_methods=["private_key_jwt"], scope="read")
    basic = hook_for(server, headers={"X-Team": "data"}, request_params={"tenant": "acme"})
    signer = hook_for(
        server,
        conn_id="signer",
        client_id="signer",
        secret=None,
        auth_method="private_key_jwt",
        private_key=pem,
    )
    basic.run("/v1/whoami")
    signer.run("/v1/link/items", data={"limit": 5})
    captures = server.stats.api_captures
    assert captures and all(
        c.headers.get("X-Team") == "data" or c.path != "/v1/whoami" for c in captures
    )
    assertions = [
        c.form["client_assertion"]
        for c in server.stats.token_captures
        if "client_assertion" in c.form
    ]
    forbidden = [SECRET, pem.strip(), *pem.strip().splitlines()[1:-1], *assertions, "acme"]
    for capture in captures:
        for secret in forbidden:
            assert not capture.contains(secret), f"{capture.path} carried a secret"
        assert set(capture.headers) & {"Auth_url", "Private_key", "Request_params"} == set()


def test_the_session_sends_nothing_to_another_host(server: DevServer) -> None:
    """The hook's session is the API's: a request for another origin is refused before
    anything (token, headers extra, body) is sent there."""
    other = DevServer()
    other.add_client("app", secret=SECRET)
    with other:
        session = hook_for(server).get_conn()
        with pytest.raises(OriginNotAllowedError, match="stopped before sending anything"):
            session.get(f"{other.api_url}/v1/whoami", timeout=5)
        assert other.stats.api_requests == 0


def test_nothing_secret_is_logged(server: DevServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    hook = hook_for(server, auth_method="client_secret_jwt")
    hook.run("/v1/whoami")
    server.revoke_all_tokens()
    hook.run("/v1/whoami")
    hook.test_connection()
    tokens = [c.headers["Authorization"].split()[1] for c in server.stats.api_captures]
    assertions = [c.form["client_assertion"] for c in server.stats.token_captures]
    assert tokens and assertions
    text = caplog.text
    assert "Fetched an OAuth token" in text
    for secret in [SECRET, *tokens, *assertions]:
        assert secret not in text


def test_configuration_error_before_any_network_call(server: DevServer) -> None:
    with (
        airflow_conn(
            "bad", conn_json(server.api_url, "app", SECRET, auth_url="http://idp.example.com/t")
        ),
        pytest.raises(OAuthCCConfigError, match="auth_url"),
    ):
        OAuthCCHook(oauth_conn_id="bad").run("/v1/whoami")
    assert server.stats.token_requests == 0 and server.stats.api_requests == 0


def test_test_connection_success_and_failures(server: DevServer) -> None:
    ok, message = hook_for(server, scope="read").test_connection()
    assert ok and "Bearer" in message and "expires in" in message and "scope 'read'" in message
    ok, message = hook_for(server, conn_id="wrong", secret="nope-nope-nope").test_connection()
    assert not ok and "invalid_client" in message
    ok, message = hook_for(
        server, conn_id="down", auth_url="http://127.0.0.1:9/token"
    ).test_connection()
    assert not ok and "cannot reach" in message


def test_get_conn_is_a_requests_session(server: DevServer) -> None:
    session = hook_for(server).get_conn(headers={"X-Extra": "1"})
    assert isinstance(session, requests.Session)
    response = session.get(f"{server.api_url}/v1/whoami")
    assert response.status_code == 200
    assert server.stats.api_captures[-1].headers["X-Extra"] == "1"
