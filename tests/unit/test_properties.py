"""Property-based tests: any input parses to a valid result or one of our errors, never another
exception, never with a secret in the message."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError, TokenRequestError
from airflow_provider_oauthcc.auth.token import Token, parse_token_response

SECRET = "hyp0-Secret-Value"
settings.register_profile(
    "suite", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("suite")

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
token_fields = st.fixed_dictionaries(
    {},
    optional={
        "access_token": st.one_of(st.text(max_size=60), json_values),
        "token_type": st.one_of(
            st.sampled_from(["Bearer", "bearer", "BEARER", "mac", "DPoP", ""]), json_values
        ),
        "expires_in": st.one_of(
            st.integers(-10, 10**9),
            st.floats(allow_nan=True, allow_infinity=True),
            st.text(max_size=12),
            json_values,
        ),
        "scope": json_values,
        "error": json_values,
        "error_description": json_values,
        "refresh_token": json_values,
    },
)


@given(
    status=st.sampled_from([200, 201, 204, 400, 401, 403, 429, 500, 502, 503]),
    content_type=st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "text/html", "", "text/plain"]
    ),
    body=st.one_of(
        token_fields.map(lambda d: json.dumps(d).encode()),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200),
        st.text(max_size=200).map(str.encode),
    ),
)
@example(
    status=200,
    content_type="application/json",
    body=b'{"access_token": "a", "token_type": "Bearer", "expires_in": 1e999}',
)
@example(
    status=200,
    content_type="application/json",
    body=b'{"access_token": "a", "token_type": "Bearer", "expires_in": NaN}',
)
def test_any_token_response_parses_or_raises_our_error(
    status: int, content_type: str, body: bytes
) -> None:
    try:
        token = parse_token_response(
            status=status, content_type=content_type, body=body, sent_at=1e9, default_expires_in=300
        )
    except TokenRequestError as exc:
        assert str(exc)
        assert len(str(exc)) < 1000
        return
    assert 200 <= status < 300
    assert isinstance(token, Token)
    assert token.access_token and token.token_type == "Bearer"
    assert token.expires_at > token.obtained_at
    assert token.refresh_at <= token.expires_at


connection_extras = st.fixed_dictionaries(
    {},
    optional={
        "auth_url": st.one_of(
            st.sampled_from(
                [
                    "https://idp.example.com/token",
                    "http://127.0.0.1:1/t",
                    "http://idp.example/t",
                    "ftp://x/y",
                    "",
                    "no url",
                ]
            ),
            json_values,
        ),
        "issuer": st.one_of(
            st.sampled_from(["https://idp.example.com", "http://localhost:8080/realms/x"]),
            json_values,
        ),
        "auth_method": st.one_of(
            st.sampled_from(
                [
                    "client_secret_basic",
                    "client_secret_post",
                    "client_secret_jwt",
                    "private_key_jwt",
                    "tls_client_auth",
                    "x",
                ]
            ),
            json_values,
        ),
        "scope": json_values,
        "audience": json_values,
        "resource": json_values,
        "private_key": st.one_of(
            st.just(f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----"),
            json_values,
        ),
        "signing_algorithm": json_values,
        "request_params": json_values,
        "verify": json_values,
        "timeout": json_values,
        "proxies": json_values,
        "headers": json_values,
        "allow_insecure_http": json_values,
        "default_expires_in": json_values,
        "cache_backend": st.one_of(st.sampled_from(["memory", "file", "redis"]), json_values),
        "cache_dir": json_values,
        "client_cert": json_values,
    },
)


@given(
    extra=st.one_of(
        connection_extras, connection_extras.map(json.dumps), st.text(max_size=80), json_values
    ),
    client_id=st.one_of(st.none(), st.text(max_size=20)),
    secret=st.one_of(st.none(), st.just(SECRET)),
)
def test_any_connection_parses_or_raises_config_error(
    extra: Any, client_id: str | None, secret: str | None
) -> None:
    try:
        config = ClientConfig.from_connection(
            client_id=client_id, client_secret=secret, extra=extra
        )
    except OAuthCCConfigError as exc:
        assert exc.field
        assert SECRET not in str(exc)
        return
    assert config.client_id.strip()
    assert config.token_url or config.issuer
    assert config.timeout > 0
    assert SECRET not in repr(config)
