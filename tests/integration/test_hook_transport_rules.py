"""OAuthCCHook's own transport rules (issue 10 item 2 and the extras it reads as flags)."""

from __future__ import annotations

import pytest

from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from tests.support.connections import airflow_conn, conn_json

TOKEN_URL = "https://idp.example.com/oauth/token"


def hook_with(host: str, conn_id: str = "rules", **extra: object) -> OAuthCCHook:
    with airflow_conn(
        conn_id, conn_json(host, "app", "pw-rules-0001", auth_url=TOKEN_URL, **extra)
    ):
        hook = OAuthCCHook(oauth_conn_id=conn_id)
        hook.oauth_config  # noqa: B018
        return hook


def test_a_host_without_scheme_means_https() -> None:
    assert hook_with("api.example.com").base_url == "https://api.example.com"
    assert hook_with("https://api.example.com").base_url == "https://api.example.com"
    assert hook_with("http://127.0.0.1:8080").base_url == "http://127.0.0.1:8080"


def test_plain_http_api_host_is_refused_before_any_request() -> None:
    with pytest.raises(OAuthCCConfigError) as caught:
        hook_with("http://api.example.com")
    assert caught.value.field == "host"
    assert hook_with("http://api.example.com", allow_insecure_http=True).base_url.startswith(
        "http://"
    )


@pytest.mark.parametrize(("value", "expected"), [("false", False), ("true", True), (False, False)])
def test_session_flags_are_read_as_booleans(value: object, expected: bool) -> None:
    hook = hook_with("https://api.example.com", trust_env=value, stream=value)
    session = hook.get_conn()
    assert session.trust_env is expected
    assert session.stream is expected
