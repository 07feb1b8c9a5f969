"""Find the token endpoint from an issuer (OpenID Connect Discovery, then RFC 8414)."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import requests

from airflow_provider_oauthcc.auth.config import is_loopback
from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError, TokenRequestError
from airflow_provider_oauthcc.auth.tls import handshake_failure

_endpoints: dict[str, str] = {}
_lock = threading.Lock()


def metadata_urls(issuer: str) -> list[str]:
    """Where the metadata may live: OIDC appends to the issuer, RFC 8414 inserts before the path."""
    base = issuer.rstrip("/")
    parts = urlsplit(base)
    urls = [f"{base}/.well-known/openid-configuration"]
    if parts.path:
        origin = f"{parts.scheme}://{parts.netloc}"
        urls.append(f"{origin}/.well-known/oauth-authorization-server{parts.path}")
    urls.append(f"{base}/.well-known/oauth-authorization-server")
    return urls


def discover_token_endpoint(
    issuer: str,
    session: requests.Session,
    *,
    timeout: float,
    allow_insecure_http: bool,
) -> str:
    with _lock:
        cached = _endpoints.get(issuer)
    if cached:
        return cached
    tried = []
    for url in metadata_urls(issuer):
        try:
            response = session.get(
                url,
                timeout=timeout,
                headers={"Accept": "application/json"},
                verify=session.verify,  # else REQUESTS_CA_BUNDLE wins (psf/requests#3829)
            )
        except requests.exceptions.SSLError as exc:
            reason = handshake_failure(exc, has_client_cert=session.cert is not None)
            raise TokenRequestError(
                f"TLS handshake with the issuer at {url} failed: {reason}"
            ) from None
        except requests.RequestException as exc:
            raise TokenRequestError(
                f"cannot reach the issuer for discovery at {url}: {type(exc).__name__}"
            ) from None
        tried.append(f"{url} -> HTTP {response.status_code}")
        if response.status_code == 404:
            continue
        document = _json(response)
        if response.status_code != 200 or document is None:
            raise TokenRequestError(
                f"discovery document at {url} is not usable (HTTP {response.status_code})",
                status=response.status_code,
            )
        endpoint = _token_endpoint(document, issuer, url, allow_insecure_http)
        with _lock:
            _endpoints[issuer] = endpoint
        return endpoint
    raise TokenRequestError(f"no discovery document for issuer {issuer} ({'; '.join(tried)})")


def _json(response: requests.Response) -> dict[str, Any] | None:
    try:
        document = response.json()
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _token_endpoint(document: dict[str, Any], issuer: str, url: str, allow_http: bool) -> str:
    published = document.get("issuer")
    if isinstance(published, str) and published.rstrip("/") != issuer.rstrip("/"):
        # RFC 8414 §3.3: a mismatch means the document is not this issuer's.
        raise OAuthCCConfigError(
            "issuer",
            f"the discovery document at {url} belongs to issuer {published!r}, not {issuer!r}",
        )
    endpoint = document.get("token_endpoint")
    parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise TokenRequestError(f"discovery document at {url} has no valid token_endpoint")
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        raise OAuthCCConfigError(
            "issuer", f"discovered token endpoint {endpoint} uses plain http to a non-loopback host"
        )
    return str(endpoint)


def clear_cache() -> None:
    with _lock:
        _endpoints.clear()
