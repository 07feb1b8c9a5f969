"""DPoP (RFC 9449) against the real authorization server and API: both demand nonces, the API
checks every proof (signature by the embedded key, htm/htu, iat, jti replay, ath, cnf.jkt)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests

from airflow_provider_oauthcc.auth import dpop
from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE
from airflow_provider_oauthcc.auth.dpop import DPoPKey
from airflow_provider_oauthcc.auth.errors import TokenRequestError
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pull.pagination import LinkHeaderPaginator
from devserver import DevServer
from tests.support.connections import airflow_conn, conn_json
from tests.support.leak_scan import find_leaks, secrets_seen_by

from .conftest import SECRET

pytestmark = pytest.mark.integration

RECORDS = 250


@pytest.fixture
def bound(server: DevServer) -> Iterator[DevServer]:
    """The server with "app" DPoP-bound and nonces demanded by both servers."""
    server.require_dpop("app")
    server.demand_dpop_nonces()
    server.dataset_size = RECORDS
    dpop.NONCES.clear()
    yield server
    dpop.NONCES.clear()


def connection(server: DevServer, **extra: Any) -> str:
    extra.setdefault("auth_url", server.token_url)
    extra.setdefault("dpop", True)
    return conn_json(server.api_url, "app", SECRET, **extra)


def hook_for(server: DevServer, **extra: Any) -> OAuthCCHook:
    with airflow_conn("crm", connection(server, **extra)):
        hook = OAuthCCHook(oauth_conn_id="crm")
        hook.oauth_config  # noqa: B018  (reads the connection while the env var is set)
    return hook


def proofs(captures: list[Any]) -> list[str]:
    return [c.headers["Dpop"] for c in captures if "Dpop" in c.headers]


def test_pull_of_every_page_with_nonces_at_both_ends(
    bound: DevServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with airflow_conn("crm", connection(bound)):
        records = OAuthHttpOperator(
            task_id="pull",
            oauth_conn_id="crm",
            endpoint="/v1/link/items",
            data={"limit": 40},
            paginate=LinkHeaderPaginator(),
        ).execute({})

    assert [r["id"] for r in records] == list(range(1, RECORDS + 1))
    pages = -(-RECORDS // 40)
    # The token endpoint asked for a nonce once, then issued a DPoP-bound token.
    assert bound.token_dpop.refused == ["use_dpop_nonce"]
    assert bound.stats.token_requests == 2
    # The API asked for its own nonce once; every other proof was valid.
    assert bound.api_dpop.refused == ["use_dpop_nonce"]
    assert bound.api_dpop.accepted == pages
    api = bound.stats.api_captures
    assert all(c.headers["Authorization"].startswith("DPoP ") for c in api)
    assert len(set(proofs(api))) == len(api)  # a new proof for each request
    leaks = find_leaks({"log": caplog.text}, secrets_seen_by(bound), issuers=[bound.issuer])
    assert leaks == []
    (entry,) = [t for t in PROCESS_CACHE._tokens.values() if t.dpop_jwk]
    assert json.loads(entry.dpop_jwk)["d"] not in caplog.text  # the DPoP private key


def test_a_dpop_bound_token_is_refused_as_bearer(bound: DevServer) -> None:
    hook = hook_for(bound)
    assert hook.run("/v1/whoami").status_code == 200
    token = bound.stats.api_captures[-1].headers["Authorization"].split()[1]
    answer = requests.get(
        f"{bound.api_url}/v1/whoami", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert answer.status_code == 401
    assert "sent as Bearer" in answer.json()["error_description"]


def test_a_replayed_proof_is_refused_and_the_provider_recovers(
    bound: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = hook_for(bound)
    assert hook.run("/v1/whoami").status_code == 200
    sent = bound.stats.api_captures[-1]
    # Whoever copies a request (token and proof) cannot send it again.
    stolen = requests.get(
        f"{bound.api_url}/v1/whoami",
        headers={"Authorization": sent.headers["Authorization"], "DPoP": sent.headers["Dpop"]},
        timeout=5,
    )
    assert stolen.status_code == 401
    assert bound.api_dpop.refused[-1] == "DPoP proof replayed (jti seen before)"

    # A proof that goes out twice (here: the signer repeats one) is refused; the provider
    # drops the token and goes on with a new token and a fresh proof.
    real_proof = DPoPKey.proof
    repeated = iter([sent.headers["Dpop"]])
    monkeypatch.setattr(
        DPoPKey, "proof", lambda self, *a, **k: next(repeated, None) or real_proof(self, *a, **k)
    )
    token_requests = bound.stats.token_requests
    assert hook.run("/v1/whoami").status_code == 200
    assert bound.api_dpop.refused[-1] == "DPoP proof replayed (jti seen before)"
    assert bound.stats.token_requests == token_requests + 1


def test_a_token_with_the_wrong_key_is_refused_and_the_provider_recovers(
    bound: DevServer,
) -> None:
    hook = hook_for(bound)
    assert hook.run("/v1/whoami").status_code == 200
    key = hook.oauth_config.cache_key
    cached = PROCESS_CACHE.get(key)
    assert cached is not None and cached.token_type == "DPoP"
    # The entry now pairs the token with a key it is not bound to.
    PROCESS_CACHE.put(key, replace(cached, dpop_jwk=DPoPKey.generate().to_jwk()))
    hook = hook_for(bound)  # a new hook: nothing held from the last run

    assert hook.run("/v1/whoami").status_code == 200
    assert "DPoP key does not match the token's cnf.jkt" in bound.api_dpop.refused
    fresh = PROCESS_CACHE.get(key)
    assert fresh is not None and fresh.access_token != cached.access_token


def test_a_bound_client_without_dpop_gets_a_clear_refusal(bound: DevServer) -> None:
    hook = hook_for(bound, dpop=False)
    with pytest.raises(TokenRequestError, match="invalid_dpop_proof"):
        hook.run("/v1/whoami")


def test_a_nonce_is_retried_once_not_forever(
    bound: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = bound.token_dpop
    real_verify = verifier.verify

    def each_nonce_good_once(*args: Any, **kwargs: Any) -> str:
        verifier.rotate_nonce()
        verifier.rotate_nonce()  # the nonce handed out last is no longer accepted
        return real_verify(*args, **kwargs)

    monkeypatch.setattr(verifier, "verify", each_nonce_good_once)
    with pytest.raises(TokenRequestError, match="use_dpop_nonce") as info:
        hook_for(bound).run("/v1/whoami")
    assert bound.stats.token_requests == 2
    sent = [c.headers["Dpop"] for c in bound.stats.token_captures]
    assert not [p for p in sent if p.split(".")[2] in str(info.value)]


def test_a_cached_dpop_token_without_its_key_is_not_used(bound: DevServer) -> None:
    hook = hook_for(bound)
    assert hook.run("/v1/whoami").status_code == 200
    key = hook.oauth_config.cache_key
    cached = PROCESS_CACHE.get(key)
    assert cached is not None
    PROCESS_CACHE.put(key, replace(cached, dpop_jwk=None))  # an entry that lost its key
    bound.reset()

    assert hook_for(bound).run("/v1/whoami").status_code == 200
    assert bound.stats.token_requests >= 1  # a new token (and key), not the keyless one
    # Never sent without a proof: the keyless token was not used at all.
    assert all("Dpop" in c.headers for c in bound.stats.api_captures)
    assert bound.api_dpop.refused == []


def test_a_redirect_within_the_api_gets_a_proof_of_its_own(bound: DevServer) -> None:
    hook = hook_for(bound)
    assert hook.run("/v1/whoami").status_code == 200  # the nonce is known from here on
    bound.reset()
    target = f"{bound.api_url}/v1/items?limit=1"  # another path: another htu
    bound.api_faults.add(status=302, headers={"Location": target}, times=1)

    answer = hook.run("/v1/whoami")

    assert answer.status_code == 200 and answer.url == target, answer.text
    assert bound.stats.token_requests == 0  # the token was not rejected
    assert bound.api_dpop.refused == []
    hops = bound.stats.api_captures
    assert len(hops) == 2 and hops[0].headers["Dpop"] != hops[1].headers["Dpop"]
