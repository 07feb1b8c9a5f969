"""Workload identity against the real authorization server: the connection names a file the
platform writes (a Kubernetes service-account token, Entra's AZURE_FEDERATED_TOKEN_FILE); each
token request reads it again and sends it as the client assertion. The server trusts the
platform's own key (a JWKS separate from its own), as Entra ID trusts an AKS cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError, TokenRequestRejected
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from airflow_provider_oauthcc.hooks.oauth_cc_async import OAuthCCAsyncHook
from devserver import DevServer
from devserver.clients import build_federated_client
from devserver.federation import PlatformIssuer
from tests.support.connections import airflow_conn, conn_json

pytestmark = pytest.mark.integration

SUBJECT = "system:serviceaccount:etl:puller"
CLIENT = "wl-app"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def platform() -> PlatformIssuer:
    return PlatformIssuer()


@pytest.fixture(scope="module")
def server(platform: PlatformIssuer) -> Iterator[DevServer]:
    with DevServer() as srv:
        srv.clients.add(
            build_federated_client(CLIENT, federation=platform.federation(SUBJECT), scope="read")
        )
        yield srv


@pytest.fixture(autouse=True)
def _reset(server: DevServer) -> None:
    server.reset()


@pytest.fixture
def token_file(tmp_path: Path, platform: PlatformIssuer) -> Path:
    path = tmp_path / "azure-identity-token"
    platform.write(path, SUBJECT)
    return path


def hook(server: DevServer, token_file: Path, **extra: Any) -> OAuthCCHook:
    extra = {"auth_url": server.token_url, "client_assertion_file": str(token_file), **extra}
    with airflow_conn("wl", conn_json(server.api_url, CLIENT, None, **extra)):
        made = OAuthCCHook(oauth_conn_id="wl")
        made.oauth_config  # noqa: B018  (reads the connection while it is set)
    return made


def test_the_platforms_assertion_is_the_only_credential(
    server: DevServer, token_file: Path
) -> None:
    claims = hook(server, token_file).run("/v1/whoami").json()
    assert claims["client_id"] == CLIENT
    captured = server.stats.token_captures[0]
    assert captured.form["client_assertion_type"] == ASSERTION_TYPE
    assert captured.form["client_assertion"] == token_file.read_text()
    assert captured.form["client_id"] == CLIENT
    assert "client_secret" not in captured.form and "Authorization" not in captured.headers


def test_a_rotated_file_is_read_for_the_next_token_without_a_restart(
    server: DevServer, token_file: Path, platform: PlatformIssuer
) -> None:
    api = hook(server, token_file)
    assert api.run("/v1/whoami").status_code == 200
    rotated = platform.write(token_file, SUBJECT)
    server.revoke_all_tokens()  # the next call gets 401: the hook fetches a new token
    assert api.run("/v1/whoami").status_code == 200
    sent = [c.form["client_assertion"] for c in server.stats.token_captures]
    assert len(sent) == 2 and sent[1] == rotated != sent[0]


def test_an_expired_file_is_a_configuration_error_before_any_request(
    server: DevServer, token_file: Path, platform: PlatformIssuer
) -> None:
    stale = platform.write(token_file, SUBJECT, lifetime=600, issued_at=1_700_000_000)
    with pytest.raises(OAuthCCConfigError, match=r"client_assertion_file.*expired at 2023") as err:
        hook(server, token_file).get_token()
    assert str(token_file) in str(err.value)
    assert stale not in str(err.value) and stale.split(".")[1] not in str(err.value)
    assert server.stats.token_requests == 0


def test_an_unreadable_file_is_a_configuration_error(server: DevServer, tmp_path: Path) -> None:
    with pytest.raises(OAuthCCConfigError, match=r"cannot read the assertion file .*missing"):
        hook(server, tmp_path / "missing").get_token()
    garbage = tmp_path / "garbage"
    garbage.write_text("not-a-jwt")
    with pytest.raises(OAuthCCConfigError, match="does not hold a JWT") as err:
        hook(server, garbage).get_token()
    assert "not-a-jwt" not in str(err.value)
    assert server.stats.token_requests == 0


def test_an_assertion_from_another_platform_is_refused_without_echoing_it(
    server: DevServer, token_file: Path
) -> None:
    forged = PlatformIssuer().write(token_file, SUBJECT)  # same issuer name, another key
    with pytest.raises(TokenRequestRejected) as err:
        hook(server, token_file).get_token()
    assert err.value.error == "invalid_client"
    assert forged not in str(err.value) and forged.split(".")[2] not in str(err.value)


def test_two_workloads_never_share_a_token(
    server: DevServer, platform: PlatformIssuer, token_file: Path
) -> None:
    """The identity is who the platform vouches for, not the file's bytes (they rotate)."""
    first = hook(server, token_file).oauth_config.cache_key
    platform.write(token_file, "system:serviceaccount:bi:reporter")
    assert hook(server, token_file).oauth_config.cache_key != first
    platform.write(token_file, SUBJECT)  # rotated: the same workload, the same token
    assert hook(server, token_file).oauth_config.cache_key == first


def test_the_environment_form_of_entra_workload_identity(
    server: DevServer, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    value = conn_json(server.api_url, "", None, auth_method="federated_assertion")
    extra_with_url = {"auth_method": "federated_assertion", "auth_url": server.token_url}
    with airflow_conn("wl_env", conn_json(server.api_url, "", None, **extra_with_url)):
        assert OAuthCCHook(oauth_conn_id="wl_env").run("/v1/whoami").json()["client_id"] == CLIENT
    assert server.stats.token_captures[0].form["client_assertion"] == token_file.read_text()
    monkeypatch.setenv("AZURE_TENANT_ID", "contoso.onmicrosoft.com")
    with airflow_conn("wl_env", value):
        config = OAuthCCHook(oauth_conn_id="wl_env").oauth_config
    assert config.token_url == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )
    assert config.client_id == CLIENT and config.client_assertion_file == str(token_file)


def test_the_triggerer_reads_the_file_too(server: DevServer, token_file: Path) -> None:
    extra = {"auth_url": server.token_url, "client_assertion_file": str(token_file)}

    async def token() -> str:
        provider = await OAuthCCAsyncHook("wl_async").token_provider()
        return (await provider.get_token()).access_token

    with airflow_conn("wl_async", conn_json(server.api_url, CLIENT, None, **extra)):
        assert asyncio.run(token())
    assert server.stats.token_captures[0].form["client_assertion"] == token_file.read_text()
