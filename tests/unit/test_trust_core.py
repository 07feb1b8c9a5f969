"""Issue 10: the promises of the OAuth core about secrets and tokens, each tried to be broken.

Each test names its item of the issue. All of them failed on the main of 2026-11-30.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from airflow_provider_oauthcc.auth import deployment, discovery, masking
from airflow_provider_oauthcc.auth.cache import PROCESS_CACHE, TokenCacheError
from airflow_provider_oauthcc.auth.cache import crypto as cache_crypto
from airflow_provider_oauthcc.auth.cache.factory import make_token_cache
from airflow_provider_oauthcc.auth.cache.fail_open import FailOpenCache
from airflow_provider_oauthcc.auth.cache.file import FileTokenCache
from airflow_provider_oauthcc.auth.client import TokenClient
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import (
    OAuthCCConfigError,
    TokenRequestError,
)
from airflow_provider_oauthcc.auth.provider import TokenProvider
from airflow_provider_oauthcc.auth.token import MAX_TOKEN_LIFETIME, Token
from tests.support.canned_http import Canned, CannedServer

from .cache_support import token

SECRET = "s3cret-Value-9f8e7d-long"
OK = '{"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600}'


def _ed25519_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


PEM_KEY = _ed25519_pem()


def config_for(url: str, secret: str = SECRET, **extra: object) -> ClientConfig:
    return ClientConfig.from_connection(
        client_id="app", client_secret=secret, extra={"auth_url": url, **extra}
    )


def client_for(server: CannedServer, secret: str = SECRET, **extra: object) -> TokenClient:
    return TokenClient(
        config_for(f"{server.url}/token", secret, **extra), max_attempts=1, backoff=0.01
    )


@pytest.fixture
def masked() -> Iterator[list[str]]:
    seen: list[str] = []
    masking.set_masker(seen.append)
    yield seen
    masking.set_masker(None)


# -- item 1: the cache key covers every part of the token's identity ----------------------


BASE = {"auth_url": "https://idp.example.com/oauth/token"}
KEY_PARTS = {
    "token endpoint": {"auth_url": "https://idp.example.com/other/token"},
    "issuer": {"auth_url": None, "issuer": "https://idp.example.com"},
    "auth method": {"auth_method": "client_secret_post"},
    "scope": {"scope": "read"},
    "audience": {"audience": "https://api"},
    "resource": {"resource": "https://r"},
    "request_params": {"request_params": {"tenant": "acme"}},
}


@pytest.mark.parametrize("part", sorted(KEY_PARTS))
def test_item1_every_identity_part_changes_the_cache_key(part: str) -> None:
    base = ClientConfig.from_connection(client_id="app", client_secret=SECRET, extra=BASE)
    changed = ClientConfig.from_connection(
        client_id="app", client_secret=SECRET, extra={**BASE, **KEY_PARTS[part]}
    )
    assert changed.cache_key != base.cache_key


def test_item1_client_id_and_credential_change_the_key_and_the_credential_is_not_in_it() -> None:
    base = ClientConfig.from_connection(client_id="app", client_secret=SECRET, extra=BASE)
    other_id = ClientConfig.from_connection(client_id="app2", client_secret=SECRET, extra=BASE)
    other_secret = ClientConfig.from_connection(
        client_id="app", client_secret=SECRET + "x", extra=BASE
    )
    assert len({base.cache_key, other_id.cache_key, other_secret.cache_key}) == 3
    assert SECRET not in base.cache_key


def test_item1_request_params_order_does_not_matter() -> None:
    one = config_for(BASE["auth_url"], request_params={"a": "1", "b": "2"})
    two = config_for(BASE["auth_url"], request_params={"b": "2", "a": "1"})
    assert one.cache_key == two.cache_key


def test_item1_private_key_and_client_certificate_are_part_of_the_identity(
    tmp_path: Path,
) -> None:
    pem = _ed25519_pem

    def jwt_config(key: str) -> ClientConfig:
        return ClientConfig.from_connection(
            client_id="app",
            client_secret=None,
            extra={**BASE, "auth_method": "private_key_jwt", "private_key": key},
        )

    assert jwt_config(pem()).cache_key != jwt_config(pem()).cache_key

    cert = tmp_path / "client.pem"
    cert.write_text("certificate one")

    def tls_config() -> ClientConfig:
        return ClientConfig.from_connection(
            client_id="app",
            client_secret=None,
            extra={**BASE, "auth_method": "tls_client_auth", "client_cert": str(cert)},
        )

    before = tls_config().cache_key
    cert.write_text("certificate two (rotated)")
    assert tls_config().cache_key != before


# -- item 2: bearer tokens only over TLS ---------------------------------------------------


def test_item2_plain_http_api_on_a_remote_host_is_refused_before_any_request() -> None:
    with pytest.raises(OAuthCCConfigError) as caught:
        ClientConfig.from_connection(
            client_id="app",
            client_secret=SECRET,
            extra=BASE,
            api_base_url="http://api.example.com",
        )
    assert caught.value.field == "host"
    for allowed in ("http://127.0.0.1:8080", "http://localhost", "https://api.example.com"):
        ClientConfig.from_connection(
            client_id="app", client_secret=SECRET, extra=BASE, api_base_url=allowed
        )
    ClientConfig.from_connection(
        client_id="app",
        client_secret=SECRET,
        extra={**BASE, "allow_insecure_http": True},
        api_base_url="http://api.example.com",
    )


def test_item2_bearer_auth_never_sends_a_token_over_plain_http_to_a_remote_host() -> None:
    import requests

    from airflow_provider_oauthcc.auth.requests_auth import BearerAuth

    class Provider:
        config = config_for(BASE["auth_url"])

        def get_token(self) -> Token:
            return token("tok-never-over-http")

    auth = BearerAuth(Provider(), None)  # type: ignore[arg-type]
    remote = requests.Request("GET", "http://api.example.com/x", auth=auth).prepare()
    assert "Authorization" not in remote.headers
    local = requests.Request("GET", "http://127.0.0.1:9/x", auth=auth).prepare()
    assert local.headers["Authorization"] == "Bearer tok-never-over-http"
    secure = requests.Request("GET", "https://api.example.com/x", auth=auth).prepare()
    assert secure.headers["Authorization"] == "Bearer tok-never-over-http"


# -- item 4: discovery ----------------------------------------------------------------------


def discovery_doc(issuer: str | None, token_endpoint: str) -> Canned:
    document: dict[str, str] = {"token_endpoint": token_endpoint}
    if issuer is not None:
        document["issuer"] = issuer
    return Canned(200, json.dumps(document), {"Content-Type": "application/json"})


def issuer_client(issuer: str, **extra: object) -> TokenClient:
    config = ClientConfig.from_connection(
        client_id="app", client_secret=SECRET, extra={"issuer": issuer, **extra}
    )
    return TokenClient(config, max_attempts=1)


def test_item4_document_without_issuer_is_refused(canned: CannedServer) -> None:
    canned.add(discovery_doc(None, f"{canned.url}/token"))
    with pytest.raises(OAuthCCConfigError, match="issuer"):
        _ = issuer_client(canned.url).token_url


def test_item4_issuer_must_match_exactly_and_the_error_says_what_to_configure(
    canned: CannedServer,
) -> None:
    published = f"{canned.url}/"
    canned.add(discovery_doc(published, f"{canned.url}/token"))
    with pytest.raises(OAuthCCConfigError) as caught:
        _ = issuer_client(canned.url).token_url
    assert repr(published) in str(caught.value) or published in str(caught.value)


def test_item4_metadata_redirects_are_not_followed(canned: CannedServer) -> None:
    elsewhere = CannedServer()
    try:
        elsewhere.add(discovery_doc(canned.url, f"{elsewhere.url}/token"))
        canned.add(
            Canned(302, b"", {"Location": f"{elsewhere.url}/.well-known/openid-configuration"})
        )
        with pytest.raises(TokenRequestError):
            _ = issuer_client(canned.url).token_url
        assert elsewhere.requests == []
    finally:
        elsewhere.close()


def test_item4_http_rule_applies_to_a_cached_discovery_result(canned: CannedServer) -> None:
    canned.add(discovery_doc(canned.url, "http://idp.example.test/token"))
    assert issuer_client(canned.url, allow_insecure_http=True).token_url.startswith("http://")
    with pytest.raises(OAuthCCConfigError):
        _ = issuer_client(canned.url).token_url


def test_item4_discovery_cache_is_keyed_by_verify(canned: CannedServer, tmp_path: Path) -> None:
    canned.add(discovery_doc(canned.url, f"{canned.url}/token"))
    canned.add(discovery_doc(canned.url, f"{canned.url}/token"))
    _ = issuer_client(canned.url).token_url
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    _ = issuer_client(canned.url, verify=str(bundle)).token_url
    assert len(canned.requests) == 2


# -- item 5: client_secret_basic encoding ---------------------------------------------------

ODD_SECRET = "p%41ss:wörd€ +/="


def test_item5_basic_credentials_are_form_encoded_before_base64(canned: CannedServer) -> None:
    canned.add_json(200, OK)
    client_for(canned, secret=ODD_SECRET).fetch_token()
    expected = base64.b64encode(f"app:{quote(ODD_SECRET, safe='')}".encode()).decode()
    assert canned.requests[0].headers["Authorization"] == f"Basic {expected}"


def test_item5_plain_basic_encoding_switch(canned: CannedServer) -> None:
    canned.add_json(200, OK)
    client_for(canned, secret=ODD_SECRET, basic_auth_encoding="plain").fetch_token()
    expected = base64.b64encode(f"app:{ODD_SECRET}".encode()).decode()
    assert canned.requests[0].headers["Authorization"] == f"Basic {expected}"


def test_item5_unencodable_secret_is_a_config_error_that_shows_no_character() -> None:
    secret = "abc\ud800def-secret"
    with pytest.raises(OAuthCCConfigError) as caught:
        config_for(BASE["auth_url"], secret=secret)
    assert caught.value.field == "password"
    assert "\ud800" not in str(caught.value) and "def-secret" not in str(caught.value)


# -- item 6: scrub, then truncate -------------------------------------------------------------


def leaked_piece(text: str, secret: str = SECRET, size: int = 8) -> str | None:
    for start in range(len(secret) - size + 1):
        if secret[start : start + size] in text:
            return secret[start : start + size]
    return None


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        quote(SECRET, safe=""),
        base64.b64encode(SECRET.encode()).decode(),
        base64.b64encode(f"app:{SECRET}".encode()).decode(),
    ],
)
def test_item6_a_secret_cut_at_the_limit_or_encoded_never_reaches_the_error(
    canned: CannedServer, form: str
) -> None:
    description = "x" * 290 + form + " trailing"
    canned.add_json(400, json.dumps({"error": "invalid_request", "error_description": description}))
    with pytest.raises(TokenRequestError) as caught:
        client_for(canned).fetch_token()
    text = f"{caught.value} {caught.value.error_description}"
    assert leaked_piece(text) is None
    assert leaked_piece(text, form) is None


def test_item6_fail_open_warning_scrubs_before_it_cuts(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        name = "broken"

        def get(self, key: str) -> Token | None:
            raise RuntimeError("y" * 295 + SECRET)

    cache = FailOpenCache(Broken(), secrets=(SECRET,))  # type: ignore[arg-type]
    with caplog.at_level("WARNING"):
        assert cache.get("k") is None
    assert caplog.records and leaked_piece(caplog.text) is None


# -- item 7: every token handed out is masked --------------------------------------------------


def test_item7_the_stale_token_used_during_an_outage_is_masked(
    canned: CannedServer, masked: list[str]
) -> None:
    config = config_for(f"{canned.url}/token")
    now = time.time()
    # Valid for 100 s more, but inside its early-refresh window: a refresh is due.
    stale = Token("tok-stale-but-valid-0001", "Bearer", now + 100, now - 3500)
    PROCESS_CACHE.put(config.cache_key, stale)
    canned.add_json(400, '{"error": "temporarily_unavailable"}')
    provider = TokenProvider(config, client=TokenClient(config, max_attempts=1))
    assert provider.get_token() == stale
    assert stale.access_token in masked


# -- item 8: bounds --------------------------------------------------------------------------


def test_item8_huge_token_response_is_refused(canned: CannedServer) -> None:
    body = json.dumps({"access_token": "a" * (2 * 1024 * 1024), "token_type": "Bearer"})
    canned.add_json(200, body)
    with pytest.raises(TokenRequestError, match="large"):
        client_for(canned).fetch_token()


def test_item8_huge_discovery_document_is_refused(canned: CannedServer) -> None:
    document = {"issuer": canned.url, "token_endpoint": f"{canned.url}/token", "x": "a" * 2**21}
    canned.add_json(200, json.dumps(document))
    with pytest.raises(TokenRequestError, match="large"):
        _ = issuer_client(canned.url).token_url


class DripServer:
    """Answers 200 with a long body, one byte every ``pause`` seconds: each read is quick."""

    def __init__(self, pause: float = 0.2, size: int = 400) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen()
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._pause, self._size = pause, size
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {self._size}\r\n\r\n"
            )
            conn.sendall(head.encode())
            for _ in range(self._size):
                if self._stop.wait(self._pause):
                    return
                try:
                    conn.sendall(b" ")
                except OSError:
                    return

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


def test_item8_a_drip_fed_token_response_hits_a_total_deadline() -> None:
    drip = DripServer()  # 400 bytes at 5 bytes a second: 80 s to complete
    try:
        client = TokenClient(config_for(f"{drip.url}/token", timeout=2), max_attempts=1)
        started = time.monotonic()
        with pytest.raises(TokenRequestError):
            client.fetch_token()
        # Far below the 80 s the body would take; the deadline is a few timeouts.
        assert time.monotonic() - started < 40
    finally:
        drip.close()


def test_item8_expires_in_is_clamped(canned: CannedServer) -> None:
    canned.add_json(
        200, json.dumps({"access_token": "t", "token_type": "Bearer", "expires_in": 10**15})
    )
    fetched = client_for(canned).fetch_token()
    assert fetched.lifetime <= MAX_TOKEN_LIFETIME


# -- item 9: the cache encryption key --------------------------------------------------------


def test_item9_the_credential_is_the_one_of_the_configured_method() -> None:
    def jwt_config(leftover: str) -> ClientConfig:
        return ClientConfig.from_connection(
            client_id="app",
            client_secret=leftover,
            extra={**BASE, "auth_method": "private_key_jwt", "private_key": PEM_KEY},
        )

    assert cache_crypto.credential_of(jwt_config("leftover-one")) == PEM_KEY.strip().encode()
    assert jwt_config("leftover-one").cache_key == jwt_config("leftover-two").cache_key


def test_item9_a_deployment_secret_is_mixed_into_the_encryption_key() -> None:
    key = config_for(BASE["auth_url"]).cache_key
    try:
        deployment.set_deployment_secret("fernet-key-of-deployment-one")
        sealed = cache_crypto.TokenCipher(SECRET.encode()).seal(key, token())
        assert cache_crypto.TokenCipher(SECRET.encode()).open(key, sealed) is not None
        deployment.set_deployment_secret("fernet-key-of-deployment-two")
        assert cache_crypto.TokenCipher(SECRET.encode()).open(key, sealed) is None
        deployment.set_deployment_secret(None)
        assert cache_crypto.TokenCipher(SECRET.encode()).open(key, sealed) is None
    finally:
        deployment.set_deployment_secret(None)


# -- item 10: locks ----------------------------------------------------------------------------


def test_item10_shared_lock_outlives_the_longest_fetch() -> None:
    config = config_for(BASE["auth_url"], cache_backend="redis", timeout=100)
    cache = make_token_cache(config, redis_url="redis://127.0.0.1:1/0")
    shared = cache.shared.inner  # type: ignore[attr-defined]
    assert shared.lock_timeout >= TokenClient(config).max_duration


def test_item10_process_locks_are_reset_after_fork() -> None:
    key = config_for(BASE["auth_url"]).cache_key
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with PROCESS_CACHE.lock(key):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    assert held.wait(10)
    pid = os.fork()
    if pid == 0:  # child: the holder thread does not exist here
        signal.alarm(10)
        with PROCESS_CACHE.lock(key):
            os._exit(0)
    try:
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
        thread.join(10)
    assert os.WEXITSTATUS(status) == 0 and not os.WIFSIGNALED(status)


def test_item10_memory_lock_wait_is_bounded() -> None:
    config = config_for(BASE["auth_url"])
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with PROCESS_CACHE.lock(config.cache_key):
            held.set()
            release.wait(60)

    thread = threading.Thread(target=holder, daemon=True)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(TokenCacheError), PROCESS_CACHE.lock(config.cache_key, wait=0.5):
            pass
    finally:
        release.set()
        thread.join(10)


# -- item 11: a symlinked cache folder is refused ----------------------------------------------


def test_item11_symlinked_cache_folder_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    cache = FileTokenCache(link, cache_crypto.TokenCipher(SECRET.encode()))
    with pytest.raises(TokenCacheError, match="symbolic link"):
        cache.put("k", token())
    assert list(real.iterdir()) == []


@pytest.fixture(autouse=True)
def _fresh_discovery() -> Iterator[None]:
    discovery.clear_cache()
    yield
    discovery.clear_cache()


def test_trust_env_false_keeps_the_token_request_away_from_environment_proxies(
    canned: CannedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy that does not exist: honouring it would fail the request.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    canned.add_json(200, OK)
    assert client_for(canned, trust_env="false").fetch_token().access_token == "tok-1"
    with pytest.raises(OAuthCCConfigError, match="trust_env"):
        config_for(BASE["auth_url"], trust_env="maybe")


def test_item6_trigger_error_events_scrub_every_form_before_they_are_stored() -> None:
    from airflow_provider_oauthcc.triggers.events import encode_error

    echoed = base64.b64encode(f"app:{SECRET}".encode()).decode()
    forms = config_for(BASE["auth_url"]).secret_forms  # what the trigger's hook hands over
    event = encode_error(TokenRequestError(f"refused Basic {echoed} " + "z" * 5000), forms)
    assert echoed not in event["message"] and leaked_piece(event["message"], echoed) is None
    assert len(event["message"]) < 2100
