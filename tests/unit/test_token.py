"""Token-response parsing (RFC 6749 §5.1/§5.2) and the early-refresh policy."""

from __future__ import annotations

import base64
import json

import pytest

from airflow_provider_oauthcc.auth.errors import TokenRequestError, TokenResponseError
from airflow_provider_oauthcc.auth.token import Token, jwt_expiry, parse_token_response

NOW = 1_800_000_000.0


def parse(
    body: object, status: int = 200, content_type: str = "application/json", default: float = 300
) -> Token:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_token_response(
        status=status, content_type=content_type, body=raw, sent_at=NOW, default_expires_in=default
    )


def jwt_with(claims: dict[str, object]) -> str:
    def b64(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'RS256'})}.{b64(claims)}.c2ln"


def test_standard_response() -> None:
    token = parse(
        {"access_token": "abc", "token_type": "Bearer", "expires_in": 3600, "scope": "read"}
    )
    assert token.access_token == "abc"
    assert token.expires_at == NOW + 3600
    assert token.scope == "read"
    assert "abc" not in repr(token)


@pytest.mark.parametrize("token_type", ["bearer", "BEARER", "Bearer"])
def test_token_type_any_case(token_type: str) -> None:
    assert (
        parse({"access_token": "a", "token_type": token_type, "expires_in": 60}).token_type
        == "Bearer"
    )


@pytest.mark.parametrize("expires_in", ["3600", " 3600 ", 3600.0])
def test_expires_in_number_or_numeric_string(expires_in: object) -> None:
    assert (
        parse({"access_token": "a", "token_type": "Bearer", "expires_in": expires_in}).lifetime
        == 3600
    )


def test_missing_expires_in_uses_jwt_exp_then_default() -> None:
    jwt = jwt_with({"exp": NOW + 120})
    assert parse({"access_token": jwt, "token_type": "Bearer"}).lifetime == 120
    assert parse({"access_token": "opaque", "token_type": "Bearer"}, default=77).lifetime == 77
    expired_jwt = jwt_with({"exp": NOW - 5})
    assert parse({"access_token": expired_jwt, "token_type": "Bearer"}, default=77).lifetime == 77


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"token_type": "Bearer"}, "no access_token"),
        ({"access_token": "", "token_type": "Bearer"}, "no access_token"),
        ({"access_token": "a", "token_type": "mac"}, "'mac'"),
        ({"access_token": "a"}, "missing"),
        ({"access_token": "a", "token_type": "Bearer", "expires_in": "soon"}, "invalid expires_in"),
        ({"access_token": "a", "token_type": "Bearer", "expires_in": -5}, "invalid expires_in"),
        ([1, 2, 3], "not a JSON token response"),
    ],
)
def test_malformed_success_responses(body: object, fragment: str) -> None:
    with pytest.raises(TokenResponseError, match=fragment):
        parse(body)


def test_html_from_a_proxy_is_named_with_status_and_content_type() -> None:
    with pytest.raises(TokenResponseError) as info:
        parse(b"<html>Sign in</html>", content_type="text/html; charset=utf-8")
    assert "HTTP 200" in str(info.value) and "text/html" in str(info.value)
    with pytest.raises(TokenRequestError) as failed:
        parse(b"<html>Bad gateway</html>", status=502, content_type="text/html")
    assert failed.value.status == 502 and "text/html" in str(failed.value)


def test_rfc6749_error_response_carries_error_fields() -> None:
    with pytest.raises(TokenRequestError) as info:
        parse(
            {"error": "invalid_client", "error_description": "Client authentication failed"},
            status=401,
        )
    error = info.value
    assert (error.status, error.error, error.error_description) == (
        401,
        "invalid_client",
        "Client authentication failed",
    )
    assert "invalid_client" in str(error) and "HTTP 401" in str(error)


def test_jwt_exp_earlier_than_expires_in_wins_unless_clocks_disagree() -> None:
    rounded_down = jwt_with({"exp": NOW + 1.2})
    assert parse(
        {"access_token": rounded_down, "token_type": "Bearer", "expires_in": 2}
    ).lifetime == pytest.approx(1.2)
    later = jwt_with({"exp": NOW + 50})
    assert parse({"access_token": later, "token_type": "Bearer", "expires_in": 2}).lifetime == 2
    skewed = jwt_with({"exp": NOW - 30})
    assert parse({"access_token": skewed, "token_type": "Bearer", "expires_in": 60}).lifetime == 60


def test_jwt_expiry_ignores_non_jwts() -> None:
    assert jwt_expiry("not.a.jwt!") is None
    assert jwt_expiry("opaque") is None
    assert jwt_expiry(jwt_with({"exp": "tomorrow"})) is None
    assert jwt_expiry(jwt_with({"exp": 123})) == 123.0


@pytest.mark.parametrize(
    ("lifetime", "margin"),
    [(3600, 300), (60, 6), (5, 1), (2, 1), (1, 0.5), (86400, 300)],
)
def test_early_refresh_margin_suits_long_and_short_tokens(lifetime: float, margin: float) -> None:
    token = Token("a", "Bearer", expires_at=NOW + lifetime, obtained_at=NOW)
    assert token.refresh_at == pytest.approx(NOW + lifetime - margin)
    assert token.is_fresh(NOW + lifetime - margin - 0.01)
    assert not token.is_fresh(NOW + lifetime - margin)
    assert not token.is_fresh(NOW + lifetime + 1)


def test_round_trip_dict() -> None:
    token = Token("a", "Bearer", expires_at=NOW + 5, obtained_at=NOW, scope="s")
    assert Token.from_dict(token.to_dict()) == token
