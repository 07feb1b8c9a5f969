"""The leak scanner (tests/support/leak_scan.py) finds tokens by shape, not only by value: a
JWT nobody told it about, a token's payload alone, whoever issued them; dotted text that is
not a JWT (versions, module paths, host names) is left alone."""

from __future__ import annotations

import base64
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from tests.support.leak_scan import Secret, find_leaks


def _token(claims: dict[str, object], *, rsa: bool = True) -> str:
    if rsa:
        return jwt.encode({"alg": "RS256", "typ": "at+jwt"}, claims, RSAKey.generate_key(2048))
    return jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(b"k" * 32))


def _segment(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


NOW = int(time.time())


@pytest.mark.parametrize("rsa", [True, False])
def test_a_jwt_nobody_listed_is_found_by_its_shape(rsa: bool) -> None:
    token = _token({"iss": "https://idp.elsewhere.example", "exp": NOW + 60}, rsa=rsa)
    texts = {"task.log": f"INFO sent Authorization: Bearer {token} to the API"}
    leaks = find_leaks(texts, secrets=[], issuers=[])
    assert [(leak.line, leak.kind) for leak in leaks] == [(1, "a JWT (by shape)")]


def test_a_token_whose_payload_is_not_json_still_counts() -> None:
    header = _segment({"alg": "RS256", "kid": "k1"})
    texts = {"out": f"token={header}.c29tZSBvcGFxdWUgcGF5bG9hZA.c2lnbmF0dXJl"}
    assert [leak.kind for leak in find_leaks(texts, [])] == ["a JWT (by shape)"]


def test_a_payload_cut_from_its_token_is_found_by_its_issuer() -> None:
    issuer = "http://127.0.0.1:40123"
    payload = _token({"iss": issuer, "sub": "app", "exp": NOW}).split(".")[1]
    texts = {"err": f"could not parse claims {payload} (truncated)"}
    leaks = find_leaks(texts, [], issuers=[issuer])
    assert {leak.kind for leak in leaks} == {f"JWT payload issued by or for {issuer} (by shape)"}
    # ... and a payload from someone else's token alone is not a finding.
    assert find_leaks(texts, [], issuers=["http://other"]) == []


def test_the_value_list_and_the_shape_rule_both_report() -> None:
    token = _token({"iss": "x"})
    leaks = find_leaks({"a": f"{token}\nclean line\n{token[:40]}"}, [Secret("access token", token)])
    assert {(leak.line, leak.kind) for leak in leaks} == {
        (1, "access token"),
        (1, "a JWT (by shape)"),
    }


def test_allow_jwt_sets_aside_a_token_by_its_claims() -> None:
    ours, theirs = _token({"iss": "ours"}), _token({"aud": "urn:airflow.apache.org:task"})
    texts = {"log": f"{ours}\n{theirs}"}
    leaks = find_leaks(texts, [], allow_jwt=lambda c: c.get("aud") == "urn:airflow.apache.org:task")
    assert [leak.line for leak in leaks] == [1]


@pytest.mark.parametrize(
    "line",
    [
        "Airflow 3.3.2 on Python 3.12.4",
        "airflow_provider_oauthcc.auth.client.fetch_token took 0.25 s",
        "GET http://api.internal.example.com/v1/items?cursor=eyJpZCI6IDQwfQ 200",
        "loaded plugins.leak_scan_debug_logging.module",
        "sha256 of the body: 3fa9c1e0.77d2b3a4.99e1f0aa",
    ],
)
def test_dotted_text_that_is_no_jwt_is_left_alone(line: str) -> None:
    assert find_leaks({"log": line}, [], issuers=["http://127.0.0.1:40123"]) == []
