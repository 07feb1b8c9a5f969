"""Where a pull may send requests: the API's own origin, and origins the task names.

A next-page link is data from the API. Followed blindly, a hostile or compromised API could
point the worker at another host (a cloud metadata endpoint, an internal service) with the
connection's headers and the request body. So a page on another origin stops the pull, unless
the task lists that origin in ``allowed_origins``; even then it gets the URL only.

Light to import (the standard library only): the operator checks ``allowed_origins`` when a
DAG file is parsed.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """``scheme://host:port`` of ``url``, lower-cased, with the scheme's default port."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port or _DEFAULT_PORTS.get(scheme, 0)}"


def parse_allowed_origins(origins: Iterable[str] | None) -> tuple[str, ...]:
    """``allowed_origins`` checked and normalised; raises ValueError/TypeError saying why not."""
    if origins is None:
        return ()
    if isinstance(origins, str | bytes):
        raise TypeError(
            "allowed_origins must be a list of origins, e.g. ['https://cdn.example.com']"
        )
    parsed = []
    for origin in origins:
        parts = urlsplit(str(origin))
        if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(
                f"allowed_origins entry {origin!r} must be scheme://host[:port] with scheme "
                "http or https"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError(
                f"allowed_origins entry {origin!r} must be an origin (scheme://host[:port]), "
                "without a path, query or credentials"
            )
        parsed.append(origin_of(str(origin)))
    return tuple(parsed)


class OriginPolicy:
    """The API's origin and the other origins a pull may fetch pages from."""

    def __init__(self, api_url: str, allowed: Iterable[str] = ()) -> None:
        self.api_origin = origin_of(api_url)
        self.allowed = frozenset(parse_allowed_origins(allowed))

    def is_foreign(self, url: str, page_number: int, *, redirect: bool = False) -> bool:
        """False for the API's origin, True for an allowed other one; raises for the rest.

        ``redirect``: ``url`` is where the API redirected the request of page ``page_number``.
        """
        origin = origin_of(url)
        if origin == self.api_origin:
            return False
        if origin in self.allowed:
            return True
        from airflow_provider_oauthcc.auth.errors import OriginNotAllowedError

        where = "redirects to" if redirect else "is on"
        raise OriginNotAllowedError(
            f"Page {page_number} {where} {_shown(origin)}, not the API's origin "
            f"{_shown(self.api_origin)}: stopped before sending anything there. If the API "
            f"really serves pages from there, add '{_shown(origin)}' to allowed_origins (it then "
            "gets the page URL only: no token, no headers, no request body)",
            origin=_shown(origin),
        )


def _shown(origin: str) -> str:
    """The origin as a person writes it: without the scheme's default port."""
    for scheme, port in _DEFAULT_PORTS.items():
        if origin.startswith(f"{scheme}://") and origin.endswith(f":{port}"):
            return origin[: -len(f":{port}")]
    return origin
