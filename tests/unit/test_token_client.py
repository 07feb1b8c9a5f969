"""TokenClient against a real socket with canned answers: retries, errors, redirects, discovery."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from airflow_provider_oauthcc.auth import masking
from airflow_provider_oauthcc.auth.client import TokenClient
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError, TokenRequestError
from tests.support.canned_http import Canned, CannedServer

SECRET = "s3cret-Value-9f8e7d"
OK = '{"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600, "scope": "read"}'


def client_for(server: CannedServer, **extra: object) -> TokenClient:
    config = ClientConfig.from_connection(
        client_id="app",
        client_secret=SECRET,
        extra={"auth_url": f"{server.url}/oauth/token", **extra},
    )
    return TokenClient(config, backoff=0.01, max_backoff=0.05)


def form(server: CannedServer, index: int = -1) -> dict[str, list[str]]:
    return parse_qs(server.requests[index].body.decode())


def test_basic_auth_and_form(canned: CannedServer) -> None:
    canned.add_json(200, OK)
    token = client_for(
        canned,
        scope="read",
        audience="https://api",
        resource=["https://r1", "https://r2"],
        request_params={"tenant": "acme"},
    ).fetch_token()
    assert token.access_token == "tok-1" and token.scope == "read"
    seen = canned.requests[0]
    assert seen.method == "POST" and seen.path == "/oauth/token"
    assert (
        seen.headers["Authorization"]
        == "Basic " + base64.b64encode(f"app:{SECRET}".encode()).decode()
    )
    assert form(canned) == {
        "grant_type": ["client_credentials"],
        "scope": ["read"],
        "audience": ["https://api"],
        "resource": ["https://r1", "https://r2"],
        "tenant": ["acme"],
    }


def test_client_secret_post_puts_credentials_in_body(canned: CannedServer) -> None:
    canned.add_json(200, OK)
    client_for(canned, auth_method="client_secret_post").fetch_token()
    assert "Authorization" not in canned.requests[0].headers
    assert form(canned)["client_secret"] == [SECRET]
    assert form(canned)["client_id"] == ["app"]


def test_client_secret_jwt_assertion_is_signed_fresh_each_time(canned: CannedServer) -> None:
    masked: list[str] = []
    masking.set_masker(masked.append)
    try:
        canned.add_json(200, OK)
        canned.add_json(200, OK)
        client = client_for(canned, auth_method="client_secret_jwt")
        client.fetch_token()
        client.fetch_token()
    finally:
        masking.set_masker(None)
    assertions = [form(canned, i)["client_assertion"][0] for i in (0, 1)]
    assert form(canned, 0)["client_assertion_type"] == [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    ]
    claims = [
        jwt.decode(a, OctKey.import_key(SECRET), algorithms=["HS256"]).claims for a in assertions
    ]
    assert claims[0]["iss"] == claims[0]["sub"] == "app"
    assert claims[0]["aud"] == f"{canned.url}/oauth/token"
    assert claims[0]["jti"] != claims[1]["jti"]
    assert 0 < claims[0]["exp"] - time.time() <= 300
    assert SECRET not in canned.requests[0].body.decode()
    assert "Authorization" not in canned.requests[0].headers
    # A JWT is masked by its signature: the rest is readable claims, useless without it.
    assert all(a.split(".")[2] in masked for a in assertions)
    assert "tok-1" in masked and SECRET in masked


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried(canned: CannedServer, status: int) -> None:
    canned.add(Canned(status, "busy"), Canned(status, "busy"))
    canned.add_json(200, OK)
    assert client_for(canned).fetch_token().access_token == "tok-1"
    assert len(canned.requests) == 3


def test_429_honours_retry_after(canned: CannedServer) -> None:
    canned.add_json(429, '{"error": "slow_down"}', **{"Retry-After": "1"})
    canned.add_json(200, OK)
    started = time.monotonic()
    client_for(canned).fetch_token()
    assert time.monotonic() - started >= 0.95
    assert len(canned.requests) == 2


def test_retry_after_is_bounded(canned: CannedServer) -> None:
    canned.add_json(429, "{}", **{"Retry-After": "3600"})
    canned.add_json(200, OK)
    client = client_for(canned)
    client.max_retry_after = 0.1
    started = time.monotonic()
    client.fetch_token()
    assert time.monotonic() - started < 5


def test_retries_are_bounded_and_error_is_clear(canned: CannedServer) -> None:
    canned.default = Canned(503, "down")
    with pytest.raises(TokenRequestError) as info:
        client_for(canned).fetch_token()
    assert len(canned.requests) == 4
    assert info.value.status == 503 and "gave up after 4 attempts" in str(info.value)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, '{"error": "invalid_client", "error_description": "bad secret"}'),
        (400, '{"error": "invalid_scope"}'),
        (400, '{"error": "unauthorized_client"}'),
    ],
)
def test_client_errors_are_not_retried(canned: CannedServer, status: int, body: str) -> None:
    canned.add_json(status, body)
    canned.add_json(200, OK)
    with pytest.raises(TokenRequestError) as info:
        client_for(canned).fetch_token()
    assert len(canned.requests) == 1
    assert info.value.status == status and info.value.error == json.loads(body)["error"]


def test_dropped_connection_is_retried(canned: CannedServer) -> None:
    canned.add(Canned(drop=True))
    canned.add_json(200, OK)
    assert client_for(canned).fetch_token().access_token == "tok-1"


def test_unreachable_host_is_named() -> None:
    config = ClientConfig.from_connection(
        client_id="app", client_secret=SECRET, extra={"auth_url": "http://127.0.0.1:9/token"}
    )
    with pytest.raises(
        TokenRequestError,
        match=r"cannot reach the token endpoint http://127.0.0.1:9 \(connection refused\)",
    ):
        TokenClient(config, max_attempts=2, backoff=0.01).fetch_token()


def test_timeout_is_named(canned: CannedServer) -> None:
    canned.default = Canned(200, OK, {"Content-Type": "application/json"}, delay=1.0)
    with pytest.raises(TokenRequestError, match=r"did not answer within 0\.2 s"):
        client = client_for(canned, timeout=0.2)
        client.max_attempts = 1
        client.fetch_token()


def test_redirect_is_not_followed_and_credentials_not_resent(canned: CannedServer) -> None:
    other = CannedServer()
    try:
        other.add_json(200, OK)
        canned.add(Canned(307, "", {"Location": f"{other.url}/steal"}))
        with pytest.raises(TokenRequestError, match="redirected"):
            client_for(canned).fetch_token()
        assert other.requests == []
    finally:
        other.close()


def test_server_echoing_the_secret_does_not_leak_it(canned: CannedServer) -> None:
    canned.add_json(
        401,
        json.dumps({"error": "invalid_client", "error_description": f"secret {SECRET} is wrong"}),
    )
    with pytest.raises(TokenRequestError) as info:
        client_for(canned).fetch_token()
    assert SECRET not in str(info.value) and SECRET not in (info.value.error_description or "")


def test_discovery_prefers_openid_configuration_then_rfc8414(canned: CannedServer) -> None:
    issuer = f"{canned.url}/realms/demo"
    canned.add(Canned(404, "nope"))
    canned.add_json(
        200, json.dumps({"issuer": issuer, "token_endpoint": f"{canned.url}/realms/demo/token"})
    )
    canned.add_json(200, OK)
    config = ClientConfig.from_connection(
        client_id="app", client_secret=SECRET, extra={"issuer": issuer}
    )
    assert TokenClient(config).fetch_token().access_token == "tok-1"
    assert [r.path for r in canned.requests] == [
        "/realms/demo/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server/realms/demo",
        "/realms/demo/token",
    ]


def test_discovery_rejects_a_foreign_issuer(canned: CannedServer) -> None:
    canned.add_json(
        200, json.dumps({"issuer": "https://evil.example", "token_endpoint": f"{canned.url}/t"})
    )
    config = ClientConfig.from_connection(
        client_id="app", client_secret=SECRET, extra={"issuer": canned.url}
    )
    with pytest.raises(OAuthCCConfigError, match="belongs to issuer"):
        TokenClient(config).fetch_token()


def test_private_key_jwt_with_ed25519(canned: CannedServer) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from joserfc.jwk import OKPKey

    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    config = ClientConfig.from_connection(
        client_id="app",
        client_secret=None,
        extra={
            "auth_url": f"{canned.url}/t",
            "auth_method": "private_key_jwt",
            "private_key": pem,
            "key_id": "k1",
        },
    )
    assert config.signing_algorithm == "EdDSA"
    canned.add_json(200, OK)
    TokenClient(config).fetch_token()
    assertion = form(canned)["client_assertion"][0]
    token = jwt.decode(assertion, OKPKey.import_key(pem), algorithms=["EdDSA"])
    assert token.header["kid"] == "k1" and token.claims["sub"] == "app"


def test_private_key_jwt_with_certificate_sends_its_thumbprints(
    canned: CannedServer, tmp_path: Path
) -> None:
    """Entra ID finds a certificate credential by the assertion's x5t header."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "airflow-etl")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / "cert.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    config = ClientConfig.from_connection(
        client_id="app",
        client_secret=None,
        extra={
            "auth_url": f"{canned.url}/t",
            "auth_method": "private_key_jwt",
            "private_key": pem,
            "client_cert": str(cert_path),
        },
    )
    canned.add_json(200, OK)
    TokenClient(config).fetch_token()
    header = jwt.decode(form(canned)["client_assertion"][0], RSAKey.import_key(pem)).header

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    assert header["x5t"] == b64(cert.fingerprint(hashes.SHA1()))
    assert header["x5t#S256"] == b64(cert.fingerprint(hashes.SHA256()))
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("hello")
    with pytest.raises(OAuthCCConfigError, match="client_cert"):
        TokenClient(
            ClientConfig.from_connection(
                client_id="app",
                client_secret=None,
                extra={**config_extra(canned, pem), "client_cert": str(bad)},
            )
        )


def config_extra(server: CannedServer, pem: str) -> dict[str, str]:
    return {"auth_url": f"{server.url}/t", "auth_method": "private_key_jwt", "private_key": pem}
