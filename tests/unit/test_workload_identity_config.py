"""The connection settings of workload identity and the JWT-bearer grant: what the Entra
environment fills in, what is refused, and what never shows in a message."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_oauthcc.auth.assertion_file import read_assertion
from airflow_provider_oauthcc.auth.config import JWT_BEARER, ClientConfig
from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError

TOKEN_URL = "https://idp.example.com/oauth/token"


def unsigned_jwt(**claims: Any) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk"


def config(client_id: str | None = "app", **extra: Any) -> ClientConfig:
    return ClientConfig.from_connection(client_id=client_id, client_secret=None, extra=extra)


@pytest.fixture
def assertion_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(unsigned_jwt(iss="https://k8s", sub="sa:etl", aud="api://x", exp=2**40))
    return path


def test_an_assertion_file_alone_selects_workload_identity(assertion_file: Path) -> None:
    made = config(auth_url=TOKEN_URL, client_assertion_file=str(assertion_file))
    assert made.auth_method == "federated_assertion" and made.client_secret is None


def test_the_entra_environment_fills_what_the_connection_leaves_empty(
    assertion_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(assertion_file))
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555")
    monkeypatch.setenv("AZURE_TENANT_ID", "contoso.onmicrosoft.com")
    made = config(None, auth_method="federated_assertion")
    assert made.client_id == "11111111-2222-3333-4444-555555555555"
    assert made.client_assertion_file == str(assertion_file)
    assert made.token_url == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )
    # The connection's own values win.
    mine = config("mine", auth_method="federated_assertion", auth_url=TOKEN_URL)
    assert (mine.client_id, mine.token_url) == ("mine", TOKEN_URL)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/")
    assert config(None, auth_method="federated_assertion").token_url == (
        "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )


@pytest.mark.parametrize(
    ("env", "field", "message"),
    [
        ({}, "client_assertion_file", "AZURE_FEDERATED_TOKEN_FILE"),
        ({"AZURE_FEDERATED_TOKEN_FILE": "/f"}, "login", "AZURE_CLIENT_ID"),
        ({"AZURE_FEDERATED_TOKEN_FILE": "/f", "AZURE_CLIENT_ID": "c"}, "auth_url", "TENANT"),
        (
            {"AZURE_FEDERATED_TOKEN_FILE": "/f", "AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": "a/b"},
            "auth_url",
            "not a tenant ID",
        ),
    ],
)
def test_what_is_missing_is_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], field: str, message: str
) -> None:
    for name in ("AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(OAuthCCConfigError, match=message) as err:
        config(None, auth_method="federated_assertion")
    assert err.value.field == field


def test_an_assertion_without_exp_is_sent_and_an_expired_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(unsigned_jwt(sub="sa"))
    assert read_assertion(str(path))[1] == {"sub": "sa"}
    path.write_text(unsigned_jwt(sub="sa", exp=time.time() - 5))
    with pytest.raises(OAuthCCConfigError, match="expired"):
        read_assertion(str(path))
    path.write_bytes(b"\xff" * 10)
    with pytest.raises(OAuthCCConfigError, match="not ASCII"):
        read_assertion(str(path))
    path.write_text("x" * (64 * 1024 + 1))
    with pytest.raises(OAuthCCConfigError, match="larger than an assertion"):
        read_assertion(str(path))


@pytest.mark.parametrize("name", ["jwt_bearer", JWT_BEARER])
def test_the_jwt_bearer_grant_by_either_name(name: str) -> None:
    from devserver.keys import generate_private_key_pem

    pem, _ = generate_private_key_pem("ES256")
    made = config(auth_url=TOKEN_URL, grant_type=name, private_key=pem)
    assert made.grant_type == JWT_BEARER
    assert made.auth_method == "private_key_jwt" and made.signing_algorithm == "ES256"


def test_client_credentials_keys_are_unchanged_by_the_new_settings() -> None:
    """Existing shared caches keep their entries: the grant's parts join the key only for it."""
    made = ClientConfig.from_connection(
        client_id="app", client_secret="s", extra={"auth_url": TOKEN_URL}
    )
    assert "client_credentials" not in made.cache_key and "jwt-bearer" not in made.cache_key
