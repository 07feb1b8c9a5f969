"""Two trust rules tried one field and one encoding at a time.

A token's cache identity changes when any single field that changes the issued token changes,
alone (a test that changes two fields at once cannot tell which one the key covers). The
scrubber removes a secret in every base64 form a server may echo it: padded or not, standard
or URL-safe alphabet, for secrets of every length modulo 3 (only those not a multiple of 3
have padding to drop).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.redact import scrub, secret_forms

SECRET = "s3cret-Value-9f8e7d-long"
TOKEN_URL = "https://idp.example.com/oauth/token"


def _config(**extras: Any) -> ClientConfig:
    client_id = extras.pop("client_id", "app")
    client_secret = extras.pop("client_secret", SECRET)
    return ClientConfig.from_connection(
        client_id=client_id, client_secret=client_secret, extra=extras
    )


# Each pair differs in exactly one ClientConfig field (checked below).
ONE_FIELD_APART: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "token_url": ({"auth_url": TOKEN_URL}, {"auth_url": TOKEN_URL + "2"}),
    "issuer": ({"issuer": "https://idp.example.com/a"}, {"issuer": "https://idp.example.com/b"}),
    "client_id": ({"auth_url": TOKEN_URL}, {"auth_url": TOKEN_URL, "client_id": "app2"}),
    "client_secret": ({"auth_url": TOKEN_URL}, {"auth_url": TOKEN_URL, "client_secret": "x" * 9}),
    "auth_method": (
        {"auth_url": TOKEN_URL},
        {"auth_url": TOKEN_URL, "auth_method": "client_secret_post"},
    ),
    "scope": ({"auth_url": TOKEN_URL, "scope": "read"}, {"auth_url": TOKEN_URL, "scope": "write"}),
    "audience": (
        {"auth_url": TOKEN_URL, "audience": "https://a"},
        {"auth_url": TOKEN_URL, "audience": "https://b"},
    ),
    "resource": (
        {"auth_url": TOKEN_URL, "resource": "https://a"},
        {"auth_url": TOKEN_URL, "resource": "https://b"},
    ),
    "request_params": (
        {"auth_url": TOKEN_URL, "request_params": {"tenant": "a"}},
        {"auth_url": TOKEN_URL, "request_params": {"tenant": "b"}},
    ),
}


def _differing_fields(one: ClientConfig, two: ClientConfig) -> set[str]:
    return {
        f.name
        for f in dataclasses.fields(ClientConfig)
        if getattr(one, f.name) != getattr(two, f.name)
    }


@pytest.mark.parametrize("field", sorted(ONE_FIELD_APART))
def test_a_single_identity_field_changes_the_cache_key(field: str) -> None:
    first, second = (_config(**extras) for extras in ONE_FIELD_APART[field])
    assert _differing_fields(first, second) == {field}
    assert first.cache_key != second.cache_key


def test_fields_that_do_not_change_the_token_keep_the_key() -> None:
    base = _config(auth_url=TOKEN_URL)
    for change in ({"timeout": 5}, {"key_id": "k1"}, {"basic_auth_encoding": "plain"}):
        assert _config(auth_url=TOKEN_URL, **change).cache_key == base.cache_key, change


# Lengths 24, 25, 26 (0, 1 and 2 modulo 3); '>' and '?' put '+' and '/' in standard base64,
# '-' and '_' in the URL-safe alphabet.
SECRETS = ["s3cret>>>???Value-9f8e7d", "s3cret>>>???Value-9f8e7d1", "s3cret>>>???Value-9f8e7d12"]


def _base64_forms(text: str) -> dict[str, str]:
    raw = text.encode()
    standard, urlsafe = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    return {
        "standard": standard,
        "standard unpadded": standard.rstrip("="),
        "urlsafe": urlsafe,
        "urlsafe unpadded": urlsafe.rstrip("="),
    }


@pytest.mark.parametrize("secret", SECRETS, ids=lambda s: f"len{len(s)}")
@pytest.mark.parametrize("text", ["secret", "client_id:secret"])
def test_every_base64_form_of_a_secret_is_scrubbed(secret: str, text: str) -> None:
    encoded = text.replace("client_id", "app").replace("secret", secret)
    forms = secret_forms([secret], client_id="app")
    for name, form in _base64_forms(encoded).items():
        echoed = f"server says: Basic {form} was refused"
        scrubbed = scrub(echoed, forms, limit=None)
        assert form.rstrip("=") not in scrubbed, name
        assert scrubbed.startswith("server says: Basic ***"), name


def test_the_secrets_cover_each_padding_and_alphabet() -> None:
    forms = {f for s in SECRETS for f in _base64_forms(s).values()}
    assert any(f.endswith("==") for f in forms)
    assert any(f.endswith("=") and not f.endswith("==") for f in forms)
    assert any("+" in f or "/" in f for f in forms) and any("-" in f or "_" in f for f in forms)


def test_a_secret_across_the_cut_is_scrubbed_before_the_text_is_cut() -> None:
    secret = SECRETS[0]
    echoed = "x" * 290 + secret + " and more"
    scrubbed = scrub(echoed, secret_forms([secret]), limit=300)
    assert secret[:10] not in scrubbed
    assert scrubbed == "x" * 290 + "*** and mo…"


ODD_SECRET = 'p@ss w+rd/"q\\u-9f8e7d'


@pytest.mark.parametrize(
    "form",
    [
        quote(ODD_SECRET, safe=""),  # a form body, as sent
        quote_plus(ODD_SECRET, safe=""),  # a form body, spaces as '+'
        quote(ODD_SECRET),  # a URL path, '/' kept
        json.dumps(ODD_SECRET)[1:-1],  # echoed inside a JSON string
    ],
    ids=["quote", "quote_plus", "quote-path", "json"],
)
def test_url_encoded_and_json_escaped_forms_are_scrubbed(form: str) -> None:
    assert form != ODD_SECRET
    scrubbed = scrub(f'{{"detail": "bad client_secret={form}"}}', secret_forms([ODD_SECRET]))
    assert scrubbed == '{"detail": "bad client_secret=***"}'


def test_a_proxy_password_is_one_of_the_secrets() -> None:
    proxy = "http://etl:Pr0xy-pass-77@proxy.example:3128"
    config = _config(auth_url=TOKEN_URL, proxies={"https": proxy})
    assert "Pr0xy-pass-77" in config.secrets
    scrubbed = scrub(f"cannot connect through {proxy}: refused", config.secret_forms)
    assert "Pr0xy-pass-77" not in scrubbed
