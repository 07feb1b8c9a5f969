"""DPoP pieces without a network: proofs, the key in the cache entry, the token type rules."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace

import pytest

from airflow_provider_oauthcc.auth.cache.crypto import TokenCipher
from airflow_provider_oauthcc.auth.client import sender_constrained
from airflow_provider_oauthcc.auth.config import DPOP_ALGORITHMS, ClientConfig
from airflow_provider_oauthcc.auth.dpop import (
    DPoPBinding,
    DPoPKey,
    NonceStore,
    authorization,
    htu,
    token_hash,
)
from airflow_provider_oauthcc.auth.errors import (
    OAuthCCConfigError,
    TokenRequestError,
    TokenResponseError,
)
from airflow_provider_oauthcc.auth.token import Token
from devserver.dpop import DPoPError, DPoPVerifier

URL = "https://api.example.com/v1/items"


def config(**extra: object) -> ClientConfig:
    return ClientConfig.from_connection(
        client_id="app",
        client_secret="s3cret-Value",
        extra={"auth_url": "https://idp.example.com/token", **extra},
    )


def token(token_type: str = "Bearer") -> Token:
    now = time.time()
    return Token("at-123", token_type, expires_at=now + 3600, obtained_at=now)


def claims_of(proof: str) -> tuple[dict[str, object], dict[str, object]]:
    parts = [json.loads(base64.urlsafe_b64decode(p + "===")) for p in proof.split(".")[:2]]
    return parts[0], parts[1]


@pytest.mark.parametrize("alg", DPOP_ALGORITHMS)
def test_each_algorithm_signs_proofs_a_server_accepts(alg: str) -> None:
    key = DPoPKey.generate(alg)
    proof = key.proof("get", f"{URL}?after=40#frag", nonce="n-1", access_token="at-123")
    header, claims = claims_of(proof)
    assert header["typ"] == "dpop+jwt" and header["alg"] == alg
    assert "d" not in header["jwk"]  # type: ignore[operator]
    assert claims["htm"] == "GET" and claims["htu"] == URL
    assert claims["nonce"] == "n-1" and claims["ath"] == token_hash("at-123")
    verifier = DPoPVerifier()
    assert verifier.verify(proof, "GET", URL, access_token="at-123") == key.thumbprint


def test_the_server_refuses_what_is_wrong() -> None:
    key = DPoPKey.generate()
    verifier = DPoPVerifier()
    cases = {
        "htm mismatch": key.proof("POST", URL),
        "htu mismatch": key.proof("GET", "https://api.example.com/v1/other"),
        "ath does not match": key.proof("GET", URL, access_token="another"),
    }
    for reason, proof in cases.items():
        with pytest.raises(DPoPError, match=reason):
            verifier.verify(proof, "GET", URL, access_token="at-123")
    with pytest.raises(DPoPError, match=r"cnf\.jkt"):
        verifier.verify(key.proof("GET", URL), "GET", URL, jkt=DPoPKey.generate().thumbprint)
    verifier.require_nonce = True
    with pytest.raises(DPoPError, match="nonce"):
        verifier.verify(key.proof("GET", URL), "GET", URL)


def test_the_key_round_trips_and_never_shows() -> None:
    key = DPoPKey.generate()
    again = DPoPKey.from_jwk(key.to_jwk())
    assert again.thumbprint == key.thumbprint and again.alg == "ES256"
    private = json.loads(key.to_jwk())["d"]
    bound = replace(token("DPoP"), dpop_jwk=key.to_jwk())
    assert private not in repr(key) and private not in repr(bound)
    assert Token.from_dict(bound.to_dict()) == bound


def test_the_cache_entry_seals_the_key_with_the_token() -> None:
    key = DPoPKey.generate()
    bound = replace(token("DPoP"), dpop_jwk=key.to_jwk())
    blob = TokenCipher(b"credential").seal("k", bound)
    assert json.loads(key.to_jwk())["d"].encode() not in blob and b"dpop_jwk" not in blob
    assert TokenCipher(b"credential").open("k", blob) == bound
    # Another credential cannot open it: that process fetches its own token (and key).
    assert TokenCipher(b"another").open("k", blob) is None


def test_a_bound_token_is_never_sent_as_bearer() -> None:
    key = DPoPKey.generate()
    assert authorization(replace(token("DPoP"), dpop_jwk=key.to_jwk())).startswith("DPoP ")
    assert authorization(token("DPoP")).startswith("DPoP ")  # even without its key
    assert authorization(token()).startswith("Bearer ")


def test_token_type_must_match_the_setting() -> None:
    with pytest.raises(TokenResponseError, match="issued a Bearer token"):
        sender_constrained(config(dpop=True), DPoPBinding("ES256"), token("Bearer"))
    with pytest.raises(TokenRequestError, match="set the connection's extra dpop"):
        sender_constrained(config(), None, token("DPoP"))
    bound = sender_constrained(config(dpop=True), DPoPBinding("ES256"), token("DPoP"))
    assert bound.dpop_jwk is not None


def test_settings_are_checked_and_part_of_the_identity() -> None:
    assert config(dpop="true").dpop and config(dpop=True, dpop_alg="PS256").dpop_alg == "PS256"
    with pytest.raises(OAuthCCConfigError, match=r"dpop_alg.*unknown value 'HS256'"):
        config(dpop=True, dpop_alg="HS256")
    with pytest.raises(OAuthCCConfigError, match="dpop is off"):
        config(dpop_alg="ES256")
    assert config(dpop=True).cache_key != config().cache_key


def test_nonces_are_kept_per_server() -> None:
    nonces = NonceStore()
    nonces.note("https://a.example.com/x", {"DPoP-Nonce": "n-a"})
    assert nonces.get("https://a.example.com/y?q=1") == "n-a"
    assert nonces.get("https://b.example.com/x") is None
    assert htu("https://a.example.com/x?q=1#f") == "https://a.example.com/x"
