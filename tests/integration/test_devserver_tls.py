"""The dev server over HTTPS: tls_client_auth (RFC 8705 §2.1.1), discovery, redirect faults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devserver import DevServer
from devserver.clients import build_client
from devserver.pki import DevPKI, make_dev_pki
from devserver.tls import ServerTLS

CLIENT = "etl"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPKI:
    return make_dev_pki(tmp_path_factory.mktemp("pki"), client_ids=[CLIENT, "intruder"])


@pytest.fixture
def server(pki: DevPKI) -> Iterator[DevServer]:
    with DevServer(tls=pki.server_tls(client_auth=True)) as srv:
        srv.add_client(CLIENT, auth_methods=["tls_client_auth"], scope="read")
        yield srv


def post_token(
    server: DevServer, pki: DevPKI, cert_of: str | None = CLIENT, client_id: str = CLIENT
) -> requests.Response:
    files = pki.clients[cert_of] if cert_of else None
    return requests.post(
        server.token_url,
        data={"grant_type": "client_credentials", "client_id": client_id},
        verify=str(pki.ca_cert),
        cert=(str(files.cert), str(files.key)) if files else None,
        timeout=5,
    )


def test_urls_are_https(server: DevServer) -> None:
    assert server.issuer.startswith("https://127.0.0.1:")
    assert server.token_url.startswith("https://") and server.api_url.startswith("https://")


def test_certificate_with_the_clients_cn_gets_a_token(server: DevServer, pki: DevPKI) -> None:
    response = post_token(server, pki)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    claims = requests.get(
        f"{server.api_url}/v1/whoami",
        headers={"Authorization": f"Bearer {token}"},
        verify=str(pki.ca_cert),
        timeout=5,
    ).json()
    assert claims["client_id"] == CLIENT
    assert server.stats.token_requests_ok_by_client == {CLIENT: 1}


@pytest.mark.parametrize(
    ("cert_of", "description"),
    [
        (None, "tls_client_auth: no client certificate presented"),
        ("intruder", "tls_client_auth: the client certificate does not belong to this client"),
    ],
)
def test_missing_or_foreign_certificate_is_invalid_client(
    server: DevServer, pki: DevPKI, cert_of: str | None, description: str
) -> None:
    response = post_token(server, pki, cert_of=cert_of)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client", "error_description": description}


def test_over_plain_http_tls_client_auth_never_succeeds() -> None:
    with DevServer() as srv:
        srv.add_client(CLIENT, auth_methods=["tls_client_auth"])
        response = requests.post(
            srv.token_url, data={"grant_type": "client_credentials", "client_id": CLIENT}, timeout=5
        )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(("subject_dn", "status"), [("CN=etl", 200), ("CN=etl,O=Acme", 401)])
def test_registered_subject_dn_must_match_exactly(
    server: DevServer, pki: DevPKI, subject_dn: str, status: int
) -> None:
    server.add_client(
        "by-dn", auth_methods=["tls_client_auth"], tls_client_auth_subject_dn=subject_dn
    )
    assert post_token(server, pki, cert_of=CLIENT, client_id="by-dn").status_code == status


def test_discovery_advertises_tls_client_auth_only_when_it_can_work(
    server: DevServer, pki: DevPKI
) -> None:
    def methods(srv: DevServer) -> list[str]:
        meta = requests.get(srv.openid_configuration_url, verify=str(pki.ca_cert), timeout=5)
        result: list[str] = meta.json()["token_endpoint_auth_methods_supported"]
        return result

    assert "tls_client_auth" in methods(server)
    with DevServer(tls=pki.server_tls()) as no_client_certs:
        assert "tls_client_auth" not in methods(no_client_certs)


def test_required_client_certificate_is_for_the_token_endpoint_only(pki: DevPKI) -> None:
    with DevServer(tls=pki.server_tls(require_client_cert=True)) as srv:
        with pytest.raises(requests.exceptions.SSLError, match="certificate required"):
            requests.post(srv.token_url, verify=str(pki.ca_cert), timeout=5)
        api = requests.get(f"{srv.api_url}/v1/whoami", verify=str(pki.ca_cert), timeout=5)
        assert api.status_code == 401  # reached the app: no token, but no TLS refusal


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="client_ca_file"):
        ServerTLS(certfile=tmp_path / "c.pem", keyfile=tmp_path / "k.pem", require_client_cert=True)
    with pytest.raises(ValueError, match="RFC 4514"):
        build_client("x", auth_methods=["tls_client_auth"], tls_client_auth_subject_dn="nonsense")
    with pytest.raises(ValueError, match="only for tls_client_auth"):
        build_client("x", secret="s", tls_client_auth_subject_dn="CN=x")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_fault(server: DevServer, pki: DevPKI, status: int) -> None:
    server.token_faults.add(status=status, headers={"Location": "https://elsewhere.example/t"})
    response = requests.post(
        server.token_url, verify=str(pki.ca_cert), allow_redirects=False, timeout=5
    )
    assert response.status_code == status
    assert response.headers["Location"] == "https://elsewhere.example/t"
    assert server.stats.token_requests == 1


def test_redirect_fault_needs_a_location(server: DevServer, pki: DevPKI) -> None:
    with pytest.raises(ValueError, match="Location"):
        server.api_faults.add(status=302)
    body: dict[str, Any] = {"target": "api", "status": 307, "headers": {"Location": "/v1/whoami"}}
    armed = requests.post(
        f"{server.control_url}/faults", json=body, verify=str(pki.ca_cert), timeout=5
    )
    assert armed.status_code == 201 and armed.json()["status"] == 307
