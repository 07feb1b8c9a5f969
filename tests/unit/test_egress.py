"""The egress gate (auth/egress.py): how it reads a URL, and the rules it applies.

The integration tests (tests/integration/test_egress_gate.py) send real requests through every
path; these pin the decisions themselves, including the URL forms two parsers read differently.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import requests
from urllib3.util import parse_url

from airflow_provider_oauthcc.auth import egress
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.egress import EgressPolicy, UnsafeUrlError, target
from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError, OriginNotAllowedError
from airflow_provider_oauthcc.auth.request_options import RequestOptions

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_provider_oauthcc"


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080\\@127.0.0.1:9090/items?page=2",  # urllib3: localhost; urlsplit: 127.0.0.1
        "https://api.example.com\\.evil.example/x",
        " https://api.example.com/x",
        "https://api.example.com/x y",
        "https://api.example.com/\tx",
        "https://api.example.com/\x00",
        "https://user:pw@api.example.com/x",
        "https://api.example.com@evil.example/x",
        "http://%6c%6f%63%61%6c%68%6f%73%74:8080/x",
        "ftp://api.example.com/x",
        "/relative/path",
        "https:///no-host",
    ],
)
def test_urls_that_parsers_read_differently_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrlError):
        target(url)
    assert not EgressPolicy(None).carries_token(url)


def test_the_host_judged_is_the_host_urllib3_connects_to() -> None:
    for url in ("HTTP://API.Example.COM/x", "https://bücher.example:443/x", "http://[::1]:81/"):
        where = target(url)
        parts = parse_url(requests.Request("GET", url).prepare().url)
        assert (where.scheme, where.host, where.port) == (
            parts.scheme,
            (parts.host or "").lower(),
            parts.port or egress.DEFAULT_PORTS[parts.scheme or ""],
        )


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("[::1]", True),
        ("[::ffff:127.0.0.1]", True),
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("localhost.", False),
        ("127.0.0.1.evil.example", False),
        ("evil-localhost", False),
        ("10.0.0.1", False),
        ("", False),
    ],
)
def test_loopback_is_exact_never_a_prefix(host: str, loopback: bool) -> None:
    assert egress.is_loopback_host(host) is loopback


@pytest.mark.parametrize(
    "url", ["http://localhost.evil.example/token", "http://127.0.0.1.nip.io/token"]
)
def test_a_host_that_only_starts_like_loopback_gets_no_credentials_in_clear(url: str) -> None:
    with pytest.raises(OAuthCCConfigError, match="plain http"):
        ClientConfig.from_connection(client_id="app", client_secret="s", extra={"auth_url": url})
    assert not EgressPolicy(url).carries_token(url)
    with pytest.raises(OriginNotAllowedError, match="plain http"):
        EgressPolicy(url).request(url)


@pytest.mark.parametrize(
    "auth_url",
    ["https://idp.example.com\\@evil.example/token", "HTTP://idp.example.com/token"],
)
def test_auth_url_is_judged_by_the_gate(auth_url: str) -> None:
    with pytest.raises(OAuthCCConfigError, match="auth_url"):
        ClientConfig.from_connection(
            client_id="app", client_secret="s", extra={"auth_url": auth_url}
        )


def test_redirects_stay_on_their_origin() -> None:
    policy = EgressPolicy("https://api.example.com")
    assert policy.redirect("https://api.example.com/a", "https://API.example.com:443/b")
    for to in (
        "http://api.example.com/b",  # https -> http on the same host: another origin
        "https://api.example.com:8443/b",
        "https://evil.example/b",
    ):
        with pytest.raises(OriginNotAllowedError, match="stopped before sending anything"):
            policy.redirect("https://api.example.com/a", to)


def test_allowed_origins_get_pages_but_never_the_connections_request() -> None:
    policy = EgressPolicy("https://api.example.com", ["https://cdn.example.com"])
    assert policy.is_foreign("https://cdn.example.com/part-1", 2) is True
    assert policy.is_foreign("https://api.example.com/p2", 2) is False
    with pytest.raises(OriginNotAllowedError):
        policy.request("https://cdn.example.com/part-1")
    with pytest.raises(OriginNotAllowedError):
        policy.is_foreign("https://other.example.com/x", 3)
    assert not policy.carries_token("https://cdn.example.com/part-1")


def test_an_idn_api_host_gets_its_token_whichever_form_the_url_uses() -> None:
    policy = EgressPolicy("https://bücher.example")
    prepared = requests.Request("GET", "https://bücher.example/v1/items").prepare()
    assert prepared.url is not None and "xn--" in prepared.url
    assert policy.carries_token(prepared.url)
    assert policy.carries_token("https://BÜCHER.example/v1/items")
    assert not policy.carries_token("https://bucher.example/v1/items")


@pytest.mark.parametrize("insecure", [False, True])
def test_plain_http_loopback_goes_direct_unless_plain_http_is_allowed(insecure: bool) -> None:
    proxies = {"http": "http://proxy.example:3128", "https": "http://proxy.example:3128"}
    loopback = egress.proxy_for(
        "http://127.0.0.1:8080/x", proxies, trust_env=False, allow_insecure_http=insecure
    )
    assert loopback == (proxies["http"] if insecure else None)
    tls = egress.proxy_for("https://127.0.0.1/x", proxies, trust_env=False)
    assert tls == proxies["https"]  # a TLS tunnel: the proxy sees nothing in clear
    assert egress.proxy_for("https://api.example.com/x", proxies, trust_env=False)


def test_environment_proxies_follow_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    assert egress.proxy_for("https://api.example.com/x", None, trust_env=True)
    assert egress.proxy_for("https://api.example.com/x", None, trust_env=False) is None
    assert egress.proxy_for("https://internal.example/x", None, trust_env=True) is None


def test_a_malformed_proxy_url_still_gives_its_password_to_the_scrubber() -> None:
    assert egress.proxy_password("http://user:pa%40ss@proxy.example:80o0") == "pa@ss"
    assert egress.proxy_password("http://proxy.example:3128") is None


@pytest.mark.parametrize("text", ["false", "False", "0", "no", False])
def test_a_string_false_means_false_on_both_paths(text: object) -> None:
    config = ClientConfig.from_connection(
        client_id="app",
        client_secret="s",
        extra={
            "auth_url": "https://idp.example.com/token",
            "trust_env": text,
            "allow_redirects": text,
            "stream": "true",
            "check_response": text,
            "max_redirects": "3",
        },
    )
    options = RequestOptions.parse(config)
    assert options.trust_env is False
    assert options.allow_redirects is False
    assert options.check_response is False
    assert options.stream is True
    assert options.max_redirects == 3
    extra = options.as_extra()
    assert extra["allow_redirects"] is False and extra["check_response"] is False


def test_task_options_win_over_the_connections() -> None:
    config = ClientConfig.from_connection(
        client_id="app",
        client_secret="s",
        extra={"auth_url": "https://idp.example.com/token", "timeout": 5, "verify_ssl": "false"},
    )
    options = RequestOptions.parse(config, {"timeout": [2, 9], "cert": ["c.pem", "k.pem"]})
    assert options.timeout == (2.0, 9.0)
    assert options.verify is False
    assert options.cert_file_and_key == ("c.pem", "k.pem")
    with pytest.raises(OAuthCCConfigError, match="max_redirects"):
        RequestOptions.parse(config, {"max_redirects": "many"})


# Modules that parse a URL only to build or name something, never to decide where to send.
NOT_A_TRUST_DECISION = {
    # the OpenLineage dataset name of the endpoint (after the request was sent)
    "lineage.py",
}
URL_PARSERS = {"urlsplit", "urlparse", "parse_url", "yarl", "URL", "hostname", "netloc"}


def test_no_module_but_the_gate_parses_an_outbound_url() -> None:
    """As test_airflow_compat checks imports: a trust decision made on another parser's reading
    of a URL is the bug class the gate exists to end (urlsplit vs urllib3)."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in NOT_A_TRUST_DECISION or path == PACKAGE / "auth" / "egress.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                names = [alias.name for alias in node.names]
                if node.module == "yarl":
                    names.append("yarl")
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.Attribute):
                names = [node.attr]
            hits = URL_PARSERS.intersection(names)
            if hits:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {sorted(hits)}")
    assert offenders == []


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/items?page=2\\@evil.example",
        "https://api.example.com/items?page=2 x",
        "https://api.example.com/items?page=\x002",
        "https://api.example.com\\@evil.example/items",
    ],
)
def test_every_url_is_judged_whole_after_its_origin_was_judged(url: str) -> None:
    """The host and port are read once per origin; the rest of each URL is still checked."""
    policy = EgressPolicy("https://api.example.com")
    assert policy.carries_token("https://api.example.com/items?page=1")
    with pytest.raises(UnsafeUrlError):
        target(url)
    assert not policy.carries_token(url)


@pytest.mark.parametrize(
    "url",
    [
        "HTTPS://API.Example.COM:443/items?page=2#top",
        "http://[::1]:81?page=2",
        "http://127.0.0.1#frag",
        "https://bücher.example/x?y=/z",
        "https://api.example.com:8443",
        "http:///no-host/x",
        "https://a%2eexample.com/x",
        "https://user@api.example.com/x",
        "https://api.example.com:99999/x",
    ],
)
def test_an_origin_read_once_is_the_origin_urllib3_reads(url: str) -> None:
    def whole(text: str) -> egress.Target | str:
        try:
            return egress._target.__wrapped__(text)
        except UnsafeUrlError as exc:
            return str(exc)

    try:
        fast: egress.Target | str = target(url)
    except UnsafeUrlError as exc:
        fast = str(exc)
    assert fast == whole(url)
