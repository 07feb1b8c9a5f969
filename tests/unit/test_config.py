"""ClientConfig: every misconfiguration is one clear error naming the field, with no secret in it."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError

SECRET = "s3cret-Value-9f8e7d"
TOKEN_URL = "https://idp.example.com/oauth/token"


def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def ec_pem(curve: ec.EllipticCurve | None = None) -> str:
    key = ec.generate_private_key(curve or ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def build(
    extra: object, *, client_id: str | None = "app", secret: str | None = SECRET
) -> ClientConfig:
    return ClientConfig.from_connection(
        client_id=client_id,
        client_secret=secret,
        extra=extra,
        api_base_url="https://api.example.com",
    )


def config_error(extra: object, **kwargs: object) -> OAuthCCConfigError:
    with pytest.raises(OAuthCCConfigError) as info:
        build(extra, **kwargs)  # type: ignore[arg-type]
    assert SECRET not in str(info.value)
    return info.value


def test_minimal_connection_defaults() -> None:
    config = build({"auth_url": TOKEN_URL})
    assert config.token_url == TOKEN_URL
    assert config.auth_method == "client_secret_basic"
    assert config.timeout == 30
    assert config.verify is True
    assert SECRET not in repr(config)
    assert config.secrets == (SECRET,)


def test_extra_as_json_text_and_all_fields() -> None:
    config = build(
        json.dumps(
            {
                "auth_url": TOKEN_URL,
                "scope": ["read", "write"],
                "audience": "https://api.example.com/",
                "resource": ["https://a.example", "https://b.example"],
                "auth_method": "client_secret_post",
                "request_params": {"tenant": "acme", "flag": True},
                "timeout": "12.5",
                "verify": "false",
                "headers": {"X-Team": "data"},
                "stream": True,
            }
        )
    )
    assert config.scope == "read write"
    assert config.resource == ("https://a.example", "https://b.example")
    assert config.request_params == {"tenant": "acme", "flag": "true"}
    assert config.timeout == 12.5
    assert config.verify is False
    assert config.api_headers == {"X-Team": "data"}
    assert config.session_options == {"stream": True}


def test_empty_form_values_are_not_set() -> None:
    config = build({"auth_url": TOKEN_URL, "scope": "", "audience": None, "timeout": ""})
    assert config.scope is None and config.audience is None and config.timeout == 30


def test_unknown_extras_are_reported_not_used() -> None:
    config = build({"auth_url": TOKEN_URL, "scopes": "typo", "X-Api-Key": "abc"})
    assert config.unknown_keys == ("X-Api-Key", "scopes")


@pytest.mark.parametrize(
    ("extra", "field", "fragment"),
    [
        ("{not json", "extra", "not valid JSON"),
        ("[1, 2]", "extra", "JSON object"),
        ({}, "auth_url", "no token endpoint"),
        ({"auth_url": "idp.example.com/token"}, "auth_url", "absolute http(s) URL"),
        ({"auth_url": "ftp://idp.example.com/token"}, "auth_url", "absolute http(s) URL"),
        ({"auth_url": "http://idp.example.com/token"}, "auth_url", "plain http"),
        ({"issuer": "http://idp.example.com"}, "issuer", "plain http"),
        ({"auth_url": TOKEN_URL, "auth_method": "magic"}, "auth_method", "client_secret_basic"),
        ({"auth_url": TOKEN_URL, "auth_method": "private_key_jwt"}, "private_key", "PEM"),
        (
            {"auth_url": TOKEN_URL, "auth_method": "private_key_jwt", "private_key": "garbage"},
            "private_key",
            "cannot be parsed",
        ),
        ({"auth_url": TOKEN_URL, "auth_method": "tls_client_auth"}, "client_cert", "certificate"),
        (
            {
                "auth_url": TOKEN_URL,
                "auth_method": "tls_client_auth",
                "client_cert": "/no/such.pem",
            },
            "client_cert",
            "file not found",
        ),
        (
            {"auth_url": TOKEN_URL, "request_params": {"grant_type": "x"}},
            "request_params",
            "grant_type",
        ),
        ({"auth_url": TOKEN_URL, "request_params": "[1]"}, "request_params", "JSON object"),
        ({"auth_url": TOKEN_URL, "timeout": "soon"}, "timeout", "number"),
        ({"auth_url": TOKEN_URL, "timeout": -1}, "timeout", "positive"),
        ({"auth_url": TOKEN_URL, "verify": "/no/ca.pem"}, "verify", "file not found"),
        ({"auth_url": TOKEN_URL, "scope": 5}, "scope", "space-separated"),
        (
            {"auth_url": TOKEN_URL, "allow_insecure_http": "maybe"},
            "allow_insecure_http",
            "true or false",
        ),
        ({"auth_url": TOKEN_URL, "cache_backend": "memcached"}, "cache_backend", "memory"),
    ],
)
def test_each_misconfiguration_names_field_and_fix(
    extra: object, field: str, fragment: str
) -> None:
    error = config_error(extra)
    assert error.field == field
    assert fragment in str(error)


def test_missing_client_id() -> None:
    assert config_error({"auth_url": TOKEN_URL}, client_id="  ").field == "login"


def test_secret_methods_need_the_secret_and_hint_at_private_key() -> None:
    error = config_error({"auth_url": TOKEN_URL, "private_key": rsa_pem()}, secret=None)
    assert error.field == "password"
    assert "private_key_jwt" in str(error)


def test_plain_http_allowed_for_loopback_or_when_asked() -> None:
    assert build({"auth_url": "http://127.0.0.1:8080/token"}).token_url
    assert build({"auth_url": "http://localhost/token"}).token_url
    assert build({"auth_url": "http://[::1]:9/token"}).token_url
    assert build({"auth_url": "http://idp.internal/token", "allow_insecure_http": "true"}).token_url


def test_private_key_algorithm_follows_key_type() -> None:
    rsa_config = build(
        {"auth_url": TOKEN_URL, "auth_method": "private_key_jwt", "private_key": rsa_pem()},
        secret=None,
    )
    assert rsa_config.signing_algorithm == "RS256"
    ec_config = build(
        {"auth_url": TOKEN_URL, "auth_method": "private_key_jwt", "private_key": ec_pem()},
        secret=None,
    )
    assert ec_config.signing_algorithm == "ES256"
    p384 = {
        "auth_url": TOKEN_URL,
        "auth_method": "private_key_jwt",
        "private_key": ec_pem(ec.SECP384R1()),
    }
    assert build(p384, secret=None).signing_algorithm == "ES384"
    error = config_error(
        {
            "auth_url": TOKEN_URL,
            "auth_method": "private_key_jwt",
            "private_key": ec_pem(),
            "signing_algorithm": "RS256",
        },
        secret=None,
    )
    assert error.field == "signing_algorithm"


def test_private_key_never_in_error_or_repr() -> None:
    pem = rsa_pem()
    config = build(
        {"auth_url": TOKEN_URL, "auth_method": "private_key_jwt", "private_key": pem}, secret=None
    )
    assert pem not in repr(config)
    assert pem.strip() in config.secrets
    broken = pem.replace("A", "B", 40)
    error = config_error(
        {"auth_url": TOKEN_URL, "auth_method": "private_key_jwt", "private_key": broken},
        secret=None,
    )
    assert broken[40:80] not in str(error)


def test_cache_key_separates_what_changes_the_token() -> None:
    base = build({"auth_url": TOKEN_URL, "scope": "read"})
    assert base.cache_key == build({"auth_url": TOKEN_URL, "scope": "read"}).cache_key
    for change in (
        {"scope": "write"},
        {"audience": "x"},
        {"resource": "https://r"},
        {"auth_method": "client_secret_post"},
    ):
        assert build({"auth_url": TOKEN_URL, "scope": "read", **change}).cache_key != base.cache_key
    assert (
        build({"auth_url": TOKEN_URL, "scope": "read"}, client_id="other").cache_key
        != base.cache_key
    )
