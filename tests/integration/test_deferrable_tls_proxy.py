"""Deferrable mode over TLS and proxies, as the sync path is tested (test_tls.py): the trigger
talks to the HTTPS devserver with a custom CA, without verification (one warning), with a
client certificate (rotated without a restart), through a local HTTP proxy, and with a
``(connect, read)`` timeout pair."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE
from airflow_provider_oauthcc.triggers import events
from airflow_provider_oauthcc.triggers.oauth_http import OAuthHttpTrigger
from devserver import DevServer
from devserver.pki import DevPKI, make_dev_pki
from devserver.tls import ServerTLS
from tests.support.connections import airflow_conn, conn_json
from tests.support.deferral import first_event
from tests.support.http_proxy import HttpProxy

from .conftest import SECRET
from .test_deferrable_trigger import run

MTLS_CLIENT = "etl-mtls"
TLS_LOGGER = "airflow_provider_oauthcc.auth.tls"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPKI:
    return make_dev_pki(tmp_path_factory.mktemp("pki"), client_ids=[MTLS_CLIENT])


def https_server(tls: ServerTLS, **kwargs: Any) -> DevServer:
    server = DevServer(tls=tls, **kwargs)
    server.add_client("app", secret=SECRET, scope="read")
    server.add_client(MTLS_CLIENT, auth_methods=["tls_client_auth"], scope="read")
    return server


@pytest.fixture
def server(pki: DevPKI) -> Iterator[DevServer]:
    with https_server(pki.server_tls(client_auth=True)) as srv:
        yield srv


def trigger_event(
    server: DevServer,
    client_id: str = "app",
    secret: str | None = SECRET,
    *,
    extra_options: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    extra.setdefault("auth_url", server.token_url)
    extra.setdefault("timeout", 10)
    with airflow_conn("tls_deferred", conn_json(server.api_url, client_id, secret, **extra)):
        return run(OAuthHttpTrigger("tls_deferred", "/v1/whoami", extra_options=extra_options))


def whoami(event: dict[str, Any]) -> dict[str, Any]:
    assert event["status"] == events.SUCCESS, event
    body: dict[str, Any] = events.decode_response(event["response"]).json()
    return body


def test_https_with_a_custom_ca(server: DevServer, pki: DevPKI) -> None:
    assert server.api_url.startswith("https://")
    assert whoami(trigger_event(server, verify=str(pki.ca_cert)))["client_id"] == "app"
    assert server.stats.token_requests == 1 and server.stats.api_requests == 1


def test_an_unknown_ca_fails_and_names_verify(server: DevServer) -> None:
    event = trigger_event(server)
    assert event["status"] == events.ERROR
    message = event["error"]["message"]
    assert "not signed by a CA this machine trusts" in message and "'verify'" in message


def test_verify_false_works_with_one_warning_per_host(
    server: DevServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=TLS_LOGGER)
    for _ in range(3):
        whoami(trigger_event(server, verify=False))
    lines = sorted(r.getMessage() for r in caplog.records if r.name == TLS_LOGGER)
    assert lines == sorted(
        [
            f"TLS certificate verification is off for the token endpoint {server.issuer} "
            "('verify': false): anyone on the network path can pose as it. "
            "Set 'verify' to the CA bundle path instead.",
            f"TLS certificate verification is off for the API {server.api_url} "
            "('verify': false): anyone on the network path can pose as it. "
            "Set 'verify' to the CA bundle path instead.",
        ]
    )


def mtls_extra(pki: DevPKI, cert: Path, key: Path) -> dict[str, Any]:
    return {
        "auth_method": "tls_client_auth",
        "client_cert": str(cert),
        "client_cert_key": str(key),
        "verify": str(pki.ca_cert),
    }


def test_tls_client_auth(server: DevServer, pki: DevPKI) -> None:
    files = pki.clients[MTLS_CLIENT]
    event = trigger_event(server, MTLS_CLIENT, None, **mtls_extra(pki, files.cert, files.key))
    assert whoami(event)["client_id"] == MTLS_CLIENT


def test_a_rotated_client_certificate_is_used_without_a_restart(
    pki: DevPKI, tmp_path: Path
) -> None:
    """The authorization server moves to a new client CA; the certificate files are replaced
    by ones the new CA issued; the next trigger in the same process presents the new one."""
    rotated = make_dev_pki(tmp_path / "next", client_ids=[MTLS_CLIENT])
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    shutil.copy(pki.clients[MTLS_CLIENT].cert, cert)
    shutil.copy(pki.clients[MTLS_CLIENT].key, key)
    extra = mtls_extra(pki, cert, key)

    def server_trusting(client_ca: Path, ports: tuple[int, int]) -> DevServer:
        tls = ServerTLS(
            certfile=pki.server.cert,
            keyfile=pki.server.key,
            client_ca_file=client_ca,
            require_client_cert=True,
        )
        return https_server(tls, auth_port=ports[0], api_port=ports[1])

    with server_trusting(pki.ca_cert, (0, 0)) as before:
        assert whoami(trigger_event(before, MTLS_CLIENT, None, **extra))
        ports = (port_of(before.issuer), port_of(before.api_url))
    # The rotation: new files in place (a new inode, as cert managers write them).
    shutil.copy(rotated.clients[MTLS_CLIENT].cert, tmp_path / "new.pem")
    shutil.copy(rotated.clients[MTLS_CLIENT].key, tmp_path / "new.key")
    (tmp_path / "new.pem").replace(cert)
    (tmp_path / "new.key").replace(key)
    PROCESS_CACHE.clear()  # the token was issued to the old certificate
    with server_trusting(rotated.ca_cert, ports) as after:
        event = trigger_event(after, MTLS_CLIENT, None, **extra)
    assert whoami(event)["client_id"] == MTLS_CLIENT


@pytest.fixture
def proxy() -> Iterator[HttpProxy]:
    with HttpProxy() as running:
        yield running


def port_of(url: str) -> int:
    return int(urlsplit(url).port or 0)


def origin_of(url: str) -> str:
    return url.split("://", 1)[1]


def test_http_proxy_carries_the_token_request_and_the_api_call(proxy: HttpProxy) -> None:
    with DevServer() as plain:
        plain.add_client("app", secret=SECRET, scope="read")
        # Plain http through a proxy needs the connection's opt-in to plain http (see below).
        event = trigger_event(plain, proxies={"http": proxy.url}, allow_insecure_http=True)
        assert whoami(event)["client_id"] == "app"
        assert proxy.targets() == [origin_of(plain.issuer), origin_of(plain.api_url)]


@pytest.mark.parametrize("configured", [True, False])
def test_plain_http_to_loopback_never_goes_through_a_proxy(
    proxy: HttpProxy, monkeypatch: pytest.MonkeyPatch, configured: bool
) -> None:
    """The triggerer's token request and API call to a plain-http loopback address go direct:
    a proxy (the connection's, or HTTP_PROXY without NO_PROXY) would read the client secret
    and the token in clear."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with DevServer() as plain:
        plain.add_client("app", secret=SECRET, scope="read")
        if configured:
            event = trigger_event(plain, proxies={"http": proxy.url})
        else:
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
            monkeypatch.setenv("http_proxy", proxy.url)
            event = trigger_event(plain)
        assert whoami(event)["client_id"] == "app"
    assert proxy.log == []


def test_https_through_the_proxy_tunnels_with_connect(
    server: DevServer, pki: DevPKI, proxy: HttpProxy
) -> None:
    event = trigger_event(server, verify=str(pki.ca_cert), proxies={"https": proxy.url})
    assert whoami(event)["client_id"] == "app"
    assert [(e.method, e.target) for e in proxy.log] == [
        ("CONNECT", origin_of(server.issuer)),
        ("CONNECT", origin_of(server.api_url)),
    ]


@pytest.mark.parametrize("trust_env", [True, False])
def test_trust_env_decides_whether_environment_proxies_apply(
    proxy: HttpProxy, monkeypatch: pytest.MonkeyPatch, trust_env: bool
) -> None:
    """As the sync hook's session: with trust_env false the API call ignores HTTP_PROXY."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("http_proxy", proxy.url)
    with DevServer() as plain:
        plain.add_client("app", secret=SECRET, scope="read")
        whoami(trigger_event(plain, trust_env=trust_env, allow_insecure_http=True))
        api_through_proxy = origin_of(plain.api_url) in proxy.targets()
    assert api_through_proxy is trust_env


def test_a_connect_read_timeout_pair_bounds_each_phase_separately() -> None:
    """(connect 30 s, read 1 s) against an API that answers after 10 s: the read bound fails
    it; (connect 1 s, read 30 s) against one that answers after 3 s: it waits and succeeds."""
    with DevServer() as plain:
        plain.add_client("app", secret=SECRET, scope="read")
        plain.api_faults.add(delay=10.0)
        event = trigger_event(plain, extra_options={"timeout": [30, 1]})
        assert event["status"] == events.ERROR
        assert event["error"]["type"] == "ApiConnectionError"
        assert "did not answer within [30, 1] s" in event["error"]["message"]
        plain.api_faults.clear()
        plain.api_faults.add(delay=3.0)
        assert whoami(trigger_event(plain, extra_options={"timeout": [1, 30]}))


def test_triggers_over_tls_share_one_loop(server: DevServer, pki: DevPKI) -> None:
    """Many TLS triggers of one connection in one loop: one token, one context."""
    value = conn_json(
        server.api_url, "app", SECRET, auth_url=server.token_url, verify=str(pki.ca_cert)
    )
    with airflow_conn("tls_many", value):
        triggers = [OAuthHttpTrigger("tls_many", "/v1/whoami") for _ in range(20)]

        async def fire() -> list[Any]:
            return await asyncio.gather(*(first_event(t) for t in triggers))

        fired = asyncio.run(asyncio.wait_for(fire(), 60))
    assert [e.payload["status"] for e in fired] == [events.SUCCESS] * 20
    assert server.stats.token_requests == 1
