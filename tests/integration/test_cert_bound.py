"""Certificate-bound tokens (RFC 8705 §3) against the real devserver over mutual TLS: the token
carries the client certificate's thumbprint (cnf.x5t#S256), the API refuses it without that
certificate, and the provider presents it to the API with no extra_options["cert"]."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from devserver import DevServer
from devserver.mtls import certificate_thumbprint
from devserver.pki import DevPKI, client_trust_bundle, make_dev_pki, make_self_signed_client
from devserver.tls import ServerTLS
from tests.support.connections import airflow_conn, conn_json

pytestmark = pytest.mark.integration

MTLS_CLIENT = "etl-bound"
SELF_SIGNED_CLIENT = "etl-self-signed"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPKI:
    return make_dev_pki(tmp_path_factory.mktemp("pki"), client_ids=[MTLS_CLIENT])


@pytest.fixture
def server(pki: DevPKI, tmp_path: Path) -> Iterator[DevServer]:
    """HTTPS; client certificates from the CA, or the registered self-signed one."""
    self_signed = make_self_signed_client(tmp_path, SELF_SIGNED_CLIENT)
    bundle = client_trust_bundle(tmp_path / "clients.pem", pki.ca_cert, self_signed.cert)
    tls = ServerTLS(certfile=pki.server.cert, keyfile=pki.server.key, client_ca_file=bundle)
    srv = DevServer(tls=tls)
    srv.add_client(MTLS_CLIENT, auth_methods=["tls_client_auth"], scope="read")
    srv.add_client(SELF_SIGNED_CLIENT, auth_methods=["self_signed_tls_client_auth"], scope="read")
    srv.register_self_signed_certificate(SELF_SIGNED_CLIENT, self_signed.cert.read_text())
    srv.bind_to_certificate(MTLS_CLIENT)
    srv.bind_to_certificate(SELF_SIGNED_CLIENT)
    srv.self_signed_files = self_signed  # type: ignore[attr-defined]
    with srv:
        yield srv


def hook_for(server: DevServer, pki: DevPKI, client_id: str, **extra: Any) -> OAuthCCHook:
    extra.setdefault("auth_url", server.token_url)
    extra.setdefault("verify", str(pki.ca_cert))
    extra.setdefault("timeout", 5)
    with airflow_conn("bound", conn_json(server.api_url, client_id, None, **extra)):
        hook = OAuthCCHook(oauth_conn_id="bound")
        hook.oauth_config  # noqa: B018  (reads the connection while the env var is set)
    return hook


def test_a_certificate_bound_token_works_and_fails_without_the_certificate(
    server: DevServer, pki: DevPKI
) -> None:
    files = pki.clients[MTLS_CLIENT]
    hook = hook_for(
        server,
        pki,
        MTLS_CLIENT,
        auth_method="tls_client_auth",
        client_cert=str(files.cert),
        client_cert_key=str(files.key),
    )
    answer = hook.run("/v1/whoami")
    assert answer.status_code == 200
    assert answer.json()["cnf"] == {"x5t#S256": certificate_thumbprint(files.cert.read_text())}

    token = hook.get_token()
    url = f"{server.api_url}/v1/whoami"
    auth = {"Authorization": f"Bearer {token}"}
    stolen = requests.get(url, headers=auth, verify=str(pki.ca_cert), timeout=5)
    assert stolen.status_code == 401
    assert "without its client certificate" in stolen.json()["error_description"]
    held = requests.get(
        url, headers=auth, verify=str(pki.ca_cert), cert=(files.cert, files.key), timeout=5
    )
    assert held.status_code == 200


def test_inline_pem_certificate_and_key(server: DevServer, pki: DevPKI) -> None:
    files = pki.clients[MTLS_CLIENT]
    hook = hook_for(
        server,
        pki,
        MTLS_CLIENT,
        auth_method="tls_client_auth",
        client_cert=files.cert.read_text(),
        private_key=files.key.read_text(),  # the TLS key, in a field Airflow masks
    )
    assert hook.run("/v1/whoami").status_code == 200
    assert files.key.read_text() not in repr(hook.oauth_config)


def test_self_signed_tls_client_auth_gets_a_bound_token(server: DevServer, pki: DevPKI) -> None:
    files = server.self_signed_files  # type: ignore[attr-defined]
    hook = hook_for(
        server,
        pki,
        SELF_SIGNED_CLIENT,
        auth_method="self_signed_tls_client_auth",
        client_cert=str(files.cert),
        client_cert_key=str(files.key),
    )
    answer = hook.run("/v1/whoami")
    assert answer.status_code == 200
    assert answer.json()["cnf"] == {"x5t#S256": certificate_thumbprint(files.cert.read_text())}
    assert server.stats.token_requests == 1
