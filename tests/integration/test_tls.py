"""TLS and redirects against the real devserver over HTTPS, with a CA each test run makes.

What users trust us with: the client credentials go only to a token endpoint whose
certificate checks out, the access token only to the API host, and every refusal says
which setting fixes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest
from urllib3.exceptions import InsecureRequestWarning

from airflow_provider_oauthcc.auth.errors import OriginNotAllowedError, TokenRequestError
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from devserver import DevServer
from devserver.pki import DevPKI, make_dev_pki
from devserver.tls import ServerTLS
from tests.support.connections import airflow_conn, conn_json

from .conftest import SECRET

MTLS_CLIENT = "etl-mtls"
TLS_LOGGER = "airflow_provider_oauthcc.auth.tls"

_AIRFLOW_3_1 = (
    __import__("importlib.metadata").metadata.version("apache-airflow").startswith("3.1.")
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPKI:
    return make_dev_pki(tmp_path_factory.mktemp("pki"), client_ids=[MTLS_CLIENT])


def https_server(tls: ServerTLS) -> DevServer:
    """Not started yet: use it as a context manager."""
    server = DevServer(tls=tls)
    server.add_client("app", secret=SECRET, scope="read")
    server.add_client(MTLS_CLIENT, auth_methods=["tls_client_auth"], scope="read")
    return server


@pytest.fixture
def server(pki: DevPKI) -> Iterator[DevServer]:
    """HTTPS; the authorization server asks for client certificates but does not require one."""
    with https_server(pki.server_tls(client_auth=True)) as srv:
        yield srv


def hook_for(
    server: DevServer, client_id: str = "app", secret: str | None = SECRET, **extra: Any
) -> OAuthCCHook:
    extra.setdefault("auth_url", server.token_url)
    extra.setdefault("timeout", 5)
    with airflow_conn("tls_api", conn_json(server.api_url, client_id, secret, **extra)):
        hook = OAuthCCHook(oauth_conn_id="tls_api")
        hook.oauth_config  # noqa: B018  (reads the connection while the env var is set)
    return hook


def mtls_hook(
    server: DevServer, pki: DevPKI, client_id: str = MTLS_CLIENT, **extra: Any
) -> OAuthCCHook:
    """A tls_client_auth connection presenting the certificate issued to MTLS_CLIENT."""
    files = pki.clients[MTLS_CLIENT]
    return hook_for(
        server,
        client_id=client_id,
        secret=None,
        auth_method="tls_client_auth",
        client_cert=str(files.cert),
        client_cert_key=str(files.key),
        **extra,
    )


def token_error(hook: OAuthCCHook) -> TokenRequestError:
    with pytest.raises(TokenRequestError) as info:
        hook.get_token()
    return info.value


# -- (a) a CA this machine does not trust ---------------------------------------------------


def test_unknown_ca_is_rejected_by_default_and_names_verify(server: DevServer) -> None:
    hook = hook_for(server)
    message = str(token_error(hook))
    assert message.startswith(
        f"TLS handshake with the token endpoint {server.issuer} failed: its certificate is "
        "not signed by a CA this machine trusts (certificate verify failed: "
    )
    assert "set 'verify' to the path of the CA bundle (PEM) that signed it" in message
    assert SECRET not in message
    # Refused before a byte of the request was sent, and not retried.
    assert server.stats.token_requests == 0


def test_test_button_shows_the_tls_reason(server: DevServer) -> None:
    ok, message = hook_for(server).test_connection()
    assert not ok
    assert "TLS handshake with the token endpoint" in message and "'verify'" in message
    assert SECRET not in message


def test_hostname_mismatch_says_verify_cannot_fix_it(tmp_path: Path) -> None:
    elsewhere = make_dev_pki(tmp_path, server_names=["idp.example.test"])
    with https_server(elsewhere.server_tls()) as srv:
        message = str(token_error(hook_for(srv, verify=str(elsewhere.ca_cert))))
    assert "its certificate is not issued for this host name" in message
    assert "IP address mismatch, certificate is not valid for '127.0.0.1'" in message
    assert "'verify' cannot fix a name mismatch" in message


# -- (b) the CA bundle configured ----------------------------------------------------------


def test_ca_bundle_in_verify_is_trusted_for_token_and_api(server: DevServer, pki: DevPKI) -> None:
    hook = hook_for(server, verify=str(pki.ca_cert))
    assert hook.run("/v1/whoami").json()["client_id"] == "app"
    assert hook.test_connection()[0]
    assert server.stats.token_requests_ok == 2
    assert server.stats.api_requests_by_status == {200: 1}


@pytest.mark.parametrize("setting", ["ca_bundle", "off"])
def test_verify_wins_over_requests_ca_bundle_in_the_environment(
    server: DevServer, pki: DevPKI, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    """requests lets REQUESTS_CA_BUNDLE override a session's verify (psf/requests#3829);
    the connection's setting must win, for discovery and the token request alike."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", certifi.where())
    verify: str | bool = str(pki.ca_cert) if setting == "ca_bundle" else False
    hook = hook_for(server, auth_url=None, issuer=server.issuer, verify=verify)
    assert hook.run("/v1/whoami").status_code == 200
    assert server.stats.token_requests_ok == 1


def test_discovery_over_untrusted_tls_names_verify(server: DevServer) -> None:
    with pytest.raises(TokenRequestError) as info:
        hook_for(server, auth_url=None, issuer=server.issuer).get_token()
    message = str(info.value)
    assert message.startswith(f"TLS handshake with the issuer at {server.issuer}/.well-known/")
    assert "'verify'" in message


# -- (c) verify off: works, and says so once -------------------------------------------------


def test_verify_false_works_with_one_warning_per_host(
    server: DevServer, caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    caplog.set_level(logging.WARNING, logger=TLS_LOGGER)
    hook = hook_for(server, verify=False)
    for _ in range(3):
        assert hook.run("/v1/whoami").status_code == 200
    hook.test_connection()

    lines = [r.getMessage() for r in caplog.records if r.name == TLS_LOGGER]
    assert lines == [
        f"TLS certificate verification is off for the token endpoint {server.issuer} "
        "('verify': false): anyone on the network path can pose as it. "
        "Set 'verify' to the CA bundle path instead.",
        f"TLS certificate verification is off for the API {server.api_url} "
        "('verify': false): anyone on the network path can pose as it. "
        "Set 'verify' to the CA bundle path instead.",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == TLS_LOGGER)
    # Our one line replaces urllib3's warning on every request.
    assert not [w for w in recwarn if issubclass(w.category, InsecureRequestWarning)]


# -- (d) tls_client_auth (mutual TLS) ---------------------------------------------------------


def test_tls_client_auth_with_a_client_certificate(server: DevServer, pki: DevPKI) -> None:
    hook = mtls_hook(server, pki, verify=str(pki.ca_cert))
    claims = hook.run("/v1/whoami").json()
    assert claims["client_id"] == MTLS_CLIENT and claims["scope"] == "read"
    (sent,) = server.stats.token_captures
    assert sent.form["client_id"] == MTLS_CLIENT and "client_secret" not in sent.form
    assert "Authorization" not in sent.headers


def test_server_requiring_a_client_certificate_names_client_cert(pki: DevPKI) -> None:
    with https_server(pki.server_tls(require_client_cert=True)) as srv:
        issuer = srv.issuer
        hook = hook_for(srv, verify=str(pki.ca_cert))
        message = str(token_error(hook))
        ok, shown = hook.test_connection()
        assert srv.stats.token_requests == 0
    assert message == (
        f"TLS handshake with the token endpoint {issuer} failed: the server asked for a "
        "client certificate and got none (tlsv13 alert certificate required); set "
        "'client_cert' (and 'client_cert_key') to the PEM files of a certificate issued by a "
        "CA the server trusts, with auth_method 'tls_client_auth'"
    )
    assert not ok and "client_cert" in shown


def test_client_certificate_from_another_ca_is_refused_clearly(pki: DevPKI, tmp_path: Path) -> None:
    rogue = make_dev_pki(tmp_path, client_ids=[MTLS_CLIENT], ca_name="rogue CA")
    with https_server(pki.server_tls(require_client_cert=True)) as srv:
        message = str(token_error(mtls_hook(srv, rogue, verify=str(pki.ca_cert))))
        assert srv.stats.token_requests == 0
    assert "the server rejected the client certificate (tlsv1 alert unknown ca)" in message
    assert "'client_cert' must be issued by a CA the server trusts" in message


def test_certificate_of_another_client_is_invalid_client(server: DevServer, pki: DevPKI) -> None:
    """The TLS layer accepts any certificate the CA signed; the server checks whose it is."""
    server.add_client("other", auth_methods=["tls_client_auth"], scope="read")
    error = token_error(mtls_hook(server, pki, client_id="other", verify=str(pki.ca_cert)))
    assert error.status == 401 and error.error == "invalid_client"
    assert "does not belong to this client" in str(error)


# -- (e) redirects never carry credentials to another host ------------------------------------


@pytest.fixture
def elsewhere() -> Iterator[DevServer]:
    """A second server, addressed as ``localhost``: another host name than 127.0.0.1."""
    with DevServer() as srv:
        srv.add_client("app", secret=SECRET, scope="read")
        yield srv


def on_localhost(url: str) -> str:
    return url.replace("://127.0.0.1:", "://localhost:")


@pytest.mark.parametrize("status", [302, 307])
def test_token_endpoint_redirect_sends_nothing_to_the_other_host(
    server: DevServer, pki: DevPKI, elsewhere: DevServer, status: int
) -> None:
    target = on_localhost(elsewhere.token_url)
    server.token_faults.add(status=status, headers={"Location": target})
    error = token_error(hook_for(server, verify=str(pki.ca_cert)))
    assert str(error) == (
        f"token endpoint {server.issuer} redirected (HTTP {status}) to "
        f"{on_localhost(elsewhere.issuer)}; the credentials were not sent there. "
        "Set auth_url to the final token endpoint URL"
    )
    assert error.status == status
    assert server.stats.token_requests == 1  # not retried
    assert elsewhere.stats.token_requests == 0 and elsewhere.stats.api_requests == 0


@pytest.mark.parametrize("status", [302, 307])
def test_api_redirect_never_takes_the_token_to_the_other_host(
    server: DevServer, pki: DevPKI, elsewhere: DevServer, status: int
) -> None:
    hook = hook_for(server, verify=str(pki.ca_cert))
    token = hook.get_token()
    server.api_faults.add(
        status=status, headers={"Location": on_localhost(f"{elsewhere.api_url}/v1/whoami")}
    )
    # https -> http on another host: not followed at all (the request's headers and, on a
    # 307, its body would go there, in clear).
    with pytest.raises(OriginNotAllowedError, match="redirects to http://localhost"):
        hook.run("/v1/whoami")
    assert elsewhere.stats.api_requests == 0
    # The other host's 401 did not make us drop the good token or fetch another one.
    assert server.stats.token_requests == 1 and hook.get_token() == token
