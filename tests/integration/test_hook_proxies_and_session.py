"""The sync hook through a real forward proxy (token endpoint and API, plain and CONNECT), and
the session options it honours as HttpHook does: verify_ssl, max_redirects, trust_env, cert,
tcp_keep_alive."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import certifi
import pytest
import requests
from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter

from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from devserver import DevServer
from devserver.pki import DevPKI, make_dev_pki
from tests.support.connections import airflow_conn, conn_json
from tests.support.http_proxy import HttpProxy

from .conftest import SECRET

pytestmark = pytest.mark.integration

PROXY_USER = "proxy-user"
PROXY_PASSWORD = "pr0xy-Pass-4u7h"  # must never show in an error or a log line


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPKI:
    return make_dev_pki(tmp_path_factory.mktemp("pki"), client_ids=["mtls-app"])


@pytest.fixture
def tls_server(pki: DevPKI) -> Iterator[DevServer]:
    with DevServer(tls=pki.server_tls(client_auth=True)) as srv:
        srv.add_client("app", secret=SECRET, scope="read")
        yield srv


@pytest.fixture
def proxy() -> Iterator[HttpProxy]:
    with HttpProxy() as running:
        yield running


@pytest.fixture
def no_env_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def hook_for(
    server: DevServer,
    hook_kwargs: dict[str, Any] | None = None,
    api_url: str | None = None,
    **extra: Any,
) -> OAuthCCHook:
    extra.setdefault("auth_url", server.token_url)
    extra.setdefault("scope", "read")
    extra.setdefault("timeout", 30)
    value = conn_json(api_url or server.api_url, "app", SECRET, **extra)
    with airflow_conn("px_api", value):
        hook = OAuthCCHook(oauth_conn_id="px_api", **(hook_kwargs or {}))
        hook.oauth_config  # noqa: B018  (reads the connection while the env var is set)
    return hook


def origin_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


# -- proxies --------------------------------------------------------------------------------------


def test_http_proxy_carries_the_token_request_and_the_api_call(
    server: DevServer, proxy: HttpProxy, no_env_proxies: None
) -> None:
    # Plain http through a proxy needs the connection's opt-in to plain http (see below).
    hook = hook_for(server, proxies={"http": proxy.url}, allow_insecure_http=True)
    assert hook.run("/v1/whoami").json()["client_id"] == "app"
    assert proxy.targets() == [origin_of(server.issuer), origin_of(server.api_url)]
    assert [e.status for e in proxy.log] == [200, 200]
    # The token went to the API through the proxy, but not to the proxy as a credential.
    assert all(e.proxy_authorization is None for e in proxy.log)


def test_https_through_the_proxy_tunnels_with_connect(
    tls_server: DevServer, pki: DevPKI, proxy: HttpProxy, no_env_proxies: None
) -> None:
    hook = hook_for(tls_server, verify=str(pki.ca_cert), proxies={"https": proxy.url})
    assert hook.run("/v1/whoami").json()["client_id"] == "app"
    assert [(e.method, e.target) for e in proxy.log] == [
        ("CONNECT", origin_of(tls_server.issuer)),
        ("CONNECT", origin_of(tls_server.api_url)),
    ]


def test_proxy_credentials_in_the_url_are_sent_to_the_proxy(
    server: DevServer, no_env_proxies: None
) -> None:
    with HttpProxy(credentials=(PROXY_USER, PROXY_PASSWORD)) as proxy:
        hook = hook_for(
            server, proxies={"http": proxy.url_with_credentials}, allow_insecure_http=True
        )
        assert hook.run("/v1/whoami").status_code == 200
        assert [e.authorized for e in proxy.log] == [True, True]


@pytest.mark.parametrize("failure", ["refused", "unreachable", "malformed", "tunnel_refused"])
def test_proxy_password_is_in_no_error_or_log(
    server: DevServer,
    tls_server: DevServer,
    pki: DevPKI,
    no_env_proxies: None,
    caplog: pytest.LogCaptureFixture,
    failure: str,
) -> None:
    """A request through a proxy that fails: the failure never shows the proxy's password."""
    caplog.set_level(logging.DEBUG)
    target, scheme = server, "http"
    extra: dict[str, Any] = {"allow_insecure_http": True}
    with HttpProxy(credentials=(PROXY_USER, PROXY_PASSWORD), refuse_with=502) as proxy:
        proxy_url = proxy.url_with_credentials
    if failure == "malformed":  # a typo in the port: the URL lands in parse errors
        proxy_url = proxy_url.rsplit(":", 1)[0] + ":80o0"
    with HttpProxy(credentials=(PROXY_USER, PROXY_PASSWORD), refuse_with=502) as proxy:
        if failure in ("refused", "tunnel_refused"):
            proxy_url = proxy.url_with_credentials
        if failure == "tunnel_refused":
            target, scheme, extra = tls_server, "https", {"verify": str(pki.ca_cert)}
        hook = hook_for(target, proxies={scheme: proxy_url}, **extra)
        with pytest.raises(Exception) as info:
            hook.run("/v1/whoami")
        ok, message = hook_for(target, proxies={scheme: proxy_url}, **extra).test_connection()
    assert not ok
    texts = [str(info.value), repr(info.value), message, caplog.text]
    cause: BaseException | None = info.value.__cause__ or info.value.__context__
    while cause is not None:
        texts.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    leaked = [text[:300] for text in texts if PROXY_PASSWORD in text]
    assert leaked == []
    # Registered with the masker like the client secret, for whatever Airflow logs itself.
    assert PROXY_PASSWORD in hook.oauth_config.secrets


@pytest.mark.parametrize("configured", [True, False])
def test_plain_http_to_loopback_never_goes_through_a_proxy(
    server: DevServer,
    proxy: HttpProxy,
    no_env_proxies: None,
    monkeypatch: pytest.MonkeyPatch,
    configured: bool,
) -> None:
    """Plain http is allowed to a loopback address because it never leaves the machine; a
    proxy would read the client secret (Basic) and the token in clear. With the proxy named by
    the connection or by the environment, and no NO_PROXY: the proxy sees nothing."""
    if configured:
        hook = hook_for(server, proxies={"http": proxy.url, "https": proxy.url})
    else:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("http_proxy", proxy.url)
        hook = hook_for(server)
    assert hook.run("/v1/whoami").json()["client_id"] == "app"
    assert hook.test_connection()[0]
    assert proxy.log == []


# -- session options ------------------------------------------------------------------------------


@pytest.mark.parametrize("verify_ssl", [False, True])
def test_get_conn_verify_ssl_decides_for_the_api(
    tls_server: DevServer, pki: DevPKI, verify_ssl: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As many deployments do, REQUESTS_CA_BUNDLE names the system bundle (without the dev CA)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    hook = hook_for(tls_server, verify=str(pki.ca_cert))
    session = hook.get_conn(extra_options={"verify_ssl": verify_ssl})
    if verify_ssl:
        with pytest.raises(requests.exceptions.SSLError):
            session.get(f"{tls_server.api_url}/v1/whoami", timeout=30)
    else:
        assert session.get(f"{tls_server.api_url}/v1/whoami", timeout=30).status_code == 200


def test_get_conn_session_trusts_the_configured_ca(
    tls_server: DevServer, pki: DevPKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    session = hook_for(tls_server, verify=str(pki.ca_cert)).get_conn()
    assert session.get(f"{tls_server.api_url}/v1/whoami", timeout=30).status_code == 200


@pytest.mark.parametrize("env_bundle", [True, False])
def test_verify_ssl_extra_turns_verification_off_for_the_api(
    tls_server: DevServer, monkeypatch: pytest.MonkeyPatch, env_bundle: bool
) -> None:
    if env_bundle:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    else:
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    hook = hook_for(tls_server, verify_ssl=False)
    assert hook.run("/v1/whoami").json()["client_id"] == "app"


def test_max_redirects_is_honoured(server: DevServer) -> None:
    target = f"{server.api_url}/v1/whoami"
    hook = hook_for(server, max_redirects=1)
    server.api_faults.add(status=307, headers={"Location": target}, times=2)
    with pytest.raises(requests.exceptions.TooManyRedirects):
        hook.run("/v1/whoami")
    # With the default (30) the same two redirects are followed.
    server.api_faults.add(status=307, headers={"Location": target}, times=2)
    assert hook_for(server).run("/v1/whoami").json()["client_id"] == "app"


@pytest.mark.parametrize("trust_env", [True, False])
def test_trust_env_decides_whether_environment_proxies_apply(
    server: DevServer,
    proxy: HttpProxy,
    no_env_proxies: None,
    monkeypatch: pytest.MonkeyPatch,
    trust_env: bool,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("http_proxy", proxy.url)
    hook = hook_for(server, trust_env=trust_env, allow_insecure_http=True)
    assert hook.run("/v1/whoami").status_code == 200
    assert (origin_of(server.api_url) in proxy.targets()) is trust_env


@pytest.mark.parametrize("with_cert", [True, False])
def test_cert_is_presented_by_the_session(
    tls_server: DevServer, pki: DevPKI, with_cert: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HttpHook's ``cert`` option reaches the TLS handshake: a tls_client_auth client is
    recognised by the certificate alone, so the token endpoint answers 200 only with it."""
    # Not the environment's CA bundle: the configured CA (see ENV_CA_BUG).
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    tls_server.add_client("mtls-app", auth_methods=["tls_client_auth"], scope="read")
    files = pki.clients["mtls-app"]
    # The session is the API's: here the API is the authorization server itself.
    hook = hook_for(tls_server, api_url=tls_server.issuer, verify=str(pki.ca_cert))
    options = {"cert": (str(files.cert), str(files.key))} if with_cert else {}
    session = hook.get_conn(extra_options=options)
    session.auth = None  # the token endpoint takes the certificate, not a bearer token
    response = session.post(
        tls_server.token_url,
        data={"grant_type": "client_credentials", "client_id": "mtls-app"},
        timeout=30,
    )
    assert (response.status_code == 200) is with_cert, response.text


@pytest.mark.parametrize("keep_alive", [True, False])
def test_tcp_keep_alive_sets_the_socket_options(server: DevServer, keep_alive: bool) -> None:
    hook = hook_for(server, hook_kwargs={"tcp_keep_alive": keep_alive, "tcp_keep_alive_idle": 77})
    session = hook.get_conn()
    adapter = session.get_adapter(server.api_url)
    assert isinstance(adapter, TCPKeepAliveAdapter) is keep_alive
    response = session.get(f"{server.api_url}/v1/whoami", stream=True, timeout=30)
    try:
        sock = response.raw.connection.sock
        assert bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)) is keep_alive
        if keep_alive:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 77
    finally:
        response.close()
