"""Find the token endpoint from an issuer (OpenID Connect Discovery, then RFC 8414)."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import requests
import urllib3

from airflow_provider_oauthcc.auth.egress import UnsafeUrlError, check_url, split_path, target
from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError, TokenRequestError
from airflow_provider_oauthcc.auth.http_read import attempt_deadline, read_capped
from airflow_provider_oauthcc.auth.tls import handshake_failure

_endpoints: dict[str, str] = {}
_lock = threading.Lock()


def metadata_urls(issuer: str) -> list[str]:
    """Where the metadata may live: OIDC appends to the issuer, RFC 8414 inserts before the path."""
    base = issuer.rstrip("/")
    origin, path = split_path(base)
    urls = [f"{base}/.well-known/openid-configuration"]
    if path:
        urls.append(f"{origin}/.well-known/oauth-authorization-server{path}")
    urls.append(f"{base}/.well-known/oauth-authorization-server")
    return urls


def discover_token_endpoint(
    issuer: str,
    session: requests.Session,
    *,
    timeout: float,
    allow_insecure_http: bool,
) -> str:
    """The issuer's token endpoint, from its metadata (cached per process and trust setting).

    The cache is keyed by everything that decides whom we trust (TLS verification, client
    certificate, proxies), and the plain-http rule is checked again on every hit, so a result
    found under one connection's settings never serves another's.
    """
    key = _cache_key(issuer, session)
    with _lock:
        cached = _endpoints.get(key)
    if cached is None:
        cached = _fetch_token_endpoint(issuer, session, timeout=timeout)
        with _lock:
            _endpoints[key] = cached
    _check_scheme(cached, allow_insecure_http)
    return cached


def _cache_key(issuer: str, session: requests.Session) -> str:
    proxies = sorted((session.proxies or {}).items())
    return json.dumps(
        [issuer, session.verify, session.cert, proxies, session.trust_env], default=str
    )


def _fetch_token_endpoint(issuer: str, session: requests.Session, *, timeout: float) -> str:
    tried = []
    for url in metadata_urls(issuer):
        deadline = time.monotonic() + attempt_deadline(timeout)
        try:
            response = session.get(
                url,
                timeout=timeout,
                headers={"Accept": "application/json"},
                # Metadata names where credentials go: a redirect is not followed anywhere.
                allow_redirects=False,
                stream=True,
                verify=session.verify,  # else REQUESTS_CA_BUNDLE wins (psf/requests#3829)
            )
            content = read_capped(
                response, what=f"the discovery document at {url}", deadline=deadline
            )
        except requests.exceptions.SSLError as exc:
            reason = handshake_failure(exc, has_client_cert=session.cert is not None)
            raise TokenRequestError(
                f"TLS handshake with the issuer at {url} failed: {reason}"
            ) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise TokenRequestError(
                f"cannot reach the issuer for discovery at {url}: {type(exc).__name__}"
            ) from None
        status = response.status_code
        tried.append(f"{url} -> HTTP {status}")
        if status == 404:
            continue
        if 300 <= status < 400:
            raise TokenRequestError(
                f"discovery document at {url} redirects (HTTP {status}); redirects are not "
                "followed for metadata: set issuer to the exact issuer URL, or auth_url to the "
                "token endpoint",
                status=status,
            )
        document = _json(content)
        if status != 200 or document is None:
            raise TokenRequestError(
                f"discovery document at {url} is not usable (HTTP {status})", status=status
            )
        return _token_endpoint(document, issuer, url)
    raise TokenRequestError(f"no discovery document for issuer {issuer} ({'; '.join(tried)})")


def _json(content: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    return document if isinstance(document, dict) else None


def _token_endpoint(document: dict[str, Any], issuer: str, url: str) -> str:
    published = document.get("issuer")
    if not isinstance(published, str) or not published:
        raise OAuthCCConfigError(
            "issuer",
            f"the discovery document at {url} names no issuer, so it cannot be checked to be "
            f"{issuer!r}'s; set auth_url to the token endpoint instead",
        )
    if published != issuer:
        # RFC 8414 §3.3 / OIDC Discovery §4.3: exactly equal, or it is not this issuer's.
        raise OAuthCCConfigError(
            "issuer",
            f"the discovery document at {url} belongs to issuer {published!r}, not {issuer!r}; "
            f"if that is your authorization server, set issuer to exactly {published!r}",
        )
    endpoint = document.get("token_endpoint")
    try:
        target(endpoint if isinstance(endpoint, str) else "")
    except UnsafeUrlError as exc:
        raise TokenRequestError(
            f"discovery document at {url} has no usable token_endpoint (it {exc})"
        ) from None
    return str(endpoint)


def _check_scheme(endpoint: str, allow_http: bool) -> None:
    """The discovered endpoint gets the client's credentials: the gate's TLS rule, checked on
    every use (a cached result may have been found under another connection's settings)."""
    check_url(
        endpoint,
        field="issuer",
        allow_insecure_http=allow_http,
        what="the client credentials (to the discovered token endpoint)",
    )


def clear_cache() -> None:
    with _lock:
        _endpoints.clear()


os.register_at_fork(after_in_child=lambda: globals().update(_lock=threading.Lock()))
