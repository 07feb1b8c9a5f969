"""The egress gate: the one place that judges a URL before anything is sent to it.

Every outbound request of the provider passes here, sync and async: the token endpoint,
discovery, API calls, next pages, redirects, the sensor and the triggers. The URL is judged as
the transport will send it: parsed by urllib3 (what requests connects to), host lower-cased and
IDNA-encoded, the scheme's default port filled in. Two parsers disagree on some URLs
(``http://a\\@b/`` is host ``b`` to ``urlsplit`` and host ``a`` to urllib3), so a URL with a
backslash, white space, a control character, a percent-encoded host or credentials is refused
outright: what is left reads the same to urllib3 (requests) and yarl (aiohttp).

The rules:
- **TLS**: whatever carries the connection's credentials, token, headers or body goes over
  https, or plain http to a loopback address, or plain http where the connection says
  ``allow_insecure_http``.
- **Same origin**: the API's origin gets the connection's token, headers and body; origins the
  task lists in ``allowed_origins`` get the URL only; any other origin gets nothing. A redirect
  is judged like a new request: to another origin (https -> http on the same host included),
  nothing of the request is sent again.
- **Proxies**: a plain-http URL allowed only because it is a loopback address is never sent
  through a proxy (the proxy would read in clear what the loopback exception lets travel in
  clear, and reach its own loopback, not ours). Otherwise the connection's ``proxies``, then the
  environment's (``HTTPS_PROXY``, ``NO_PROXY``) when ``trust_env`` is on, as requests picks them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from airflow_provider_oauthcc.auth.errors import OAuthCCConfigError, OriginNotAllowedError

DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeUrlError(ValueError):
    """A URL the gate will not send anything to, whoever gave it; the message says why."""


@dataclass(frozen=True)
class Target:
    """Where a URL really goes: scheme, host (lower-case, IDNA) and port."""

    scheme: str
    host: str
    port: int

    @property
    def origin(self) -> str:
        """``scheme://host:port``, the identity two URLs share when they are the same origin."""
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def shown(self) -> str:
        """The origin as a person writes it: without the scheme's default port."""
        if DEFAULT_PORTS.get(self.scheme) == self.port:
            return f"{self.scheme}://{self.host}"
        return self.origin

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    @property
    def is_tls(self) -> bool:
        return self.scheme == "https"

    def goes_direct(self, *, allow_insecure_http: bool) -> bool:
        """Whether no proxy may carry a request here: plain http allowed only as loopback."""
        return self.scheme == "http" and self.is_loopback and not allow_insecure_http


# Characters two URL parsers read differently (str.isspace's white space, as re's \s).
_UNSAFE_CHAR = re.compile(r"[\\\s\x00-\x1f\x7f]")
# ``scheme://authority`` of an http(s) URL: urllib3 ends the authority at the first / ? # (or
# backslash, refused anyway), so the target of a URL free of unsafe characters is its prefix's.
_ORIGIN_PREFIX = re.compile(r"https?://[^/?#]*", re.IGNORECASE)


def target(url: str) -> Target:
    """Where ``url`` goes, as the transport reads it; raises UnsafeUrlError saying why not.

    Every URL is checked whole for unsafe characters; its host and port are then read once per
    origin (``scheme://authority``), not once per URL: the pages of a pull differ only after it.
    """
    if isinstance(url, str) and _UNSAFE_CHAR.search(url) is None:
        prefix = _ORIGIN_PREFIX.match(url)
        if prefix is not None:
            return _target(prefix.group())
    return _target(url)


@lru_cache(maxsize=4096)
def _target(url: str) -> Target:
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    if not isinstance(url, str) or not url:
        raise UnsafeUrlError("is empty")
    unsafe = _UNSAFE_CHAR.search(url)
    if unsafe is not None:
        what = "a backslash" if unsafe.group() == "\\" else "white space or a control character"
        raise UnsafeUrlError(
            f"contains {what}, which URL parsers read differently: write the URL without it"
        )
    try:
        parts = parse_url(url)
    except (LocationParseError, ValueError):
        raise UnsafeUrlError("cannot be parsed as a URL") from None
    scheme = (parts.scheme or "").lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsafeUrlError("must be an absolute http(s) URL such as https://api.example.com/...")
    if not parts.host:
        raise UnsafeUrlError("has no host")
    authority = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "%" in authority:
        raise UnsafeUrlError("has a percent-encoded host, which URL parsers read differently")
    if parts.auth is not None:
        raise UnsafeUrlError(
            "has credentials before its host (user@host); put them in the connection instead"
        )
    return Target(scheme, parts.host.lower(), parts.port or DEFAULT_PORTS[scheme])


def _has_path(url: str) -> bool:
    from urllib3.util import parse_url

    parts = parse_url(url)
    return parts.path not in (None, "", "/") or bool(parts.query) or bool(parts.fragment)


@lru_cache(maxsize=1024)
def is_loopback_host(host: str | None) -> bool:
    """``localhost`` exactly, or a loopback IP address (127.0.0.0/8, ::1, ::ffff:127.x)."""
    if not host:
        return False
    host = host.lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def split_path(url: str) -> tuple[str, str]:
    """``url`` as (``scheme://host[:port]`` as written, path); for building sibling URLs."""
    from urllib3.util import parse_url

    path = parse_url(url).path or ""
    if not path:
        return url, ""
    return url[: url.index(path, url.index("://") + 3)], path


def shown(url: str) -> str:
    """``url``'s origin for a message, never a path, query or credentials."""
    try:
        return target(url).shown
    except UnsafeUrlError:
        return "an unusable URL"


def check_url(url: str, *, field: str, allow_insecure_http: bool, what: str) -> Target:
    """A URL the connection names (token endpoint, issuer, API host): usable, and over TLS
    unless loopback or ``allow_insecure_http``. Raises OAuthCCConfigError naming ``field``."""
    try:
        where = target(url)
    except UnsafeUrlError as exc:
        raise OAuthCCConfigError(field, f"{exc}") from None
    if not (where.is_tls or where.is_loopback or allow_insecure_http):
        raise OAuthCCConfigError(
            field,
            f"uses plain http to {where.host}, which would send {what} in clear; use https, or "
            "set allow_insecure_http to true if you really mean it",
        )
    return where


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
        text = str(origin)
        try:
            where = target(text)
        except UnsafeUrlError as exc:
            raise ValueError(
                f"allowed_origins entry {origin!r} must be scheme://host[:port] with scheme "
                f"http or https: it {exc}"
            ) from None
        if _has_path(text):
            raise ValueError(
                f"allowed_origins entry {origin!r} must be an origin (scheme://host[:port]), "
                "without a path, query or credentials"
            )
        parsed.append(where.origin)
    return tuple(parsed)


class EgressPolicy:
    """Where the requests of one connection (and one task) may go, and how.

    :param api_url: the API's base URL; its origin gets everything. None: no API origin is
        known (a connection without a host), so any origin gets a request the caller addressed
        to it, but redirects still stay on the origin they came from.
    :param allowed: other origins a pull may fetch pages from, with the URL only.
    :param allow_insecure_http: the connection's opt-in to plain http beyond loopback.
    """

    def __init__(
        self,
        api_url: str | None,
        allowed: Iterable[str] = (),
        *,
        allow_insecure_http: bool = False,
    ) -> None:
        self.api = target(api_url) if api_url else None
        self.allowed = frozenset(parse_allowed_origins(allowed))
        self.allow_insecure_http = allow_insecure_http

    @property
    def api_origin(self) -> str | None:
        return self.api.origin if self.api else None

    def request(self, url: str, *, page: int | None = None) -> Target:
        """The target of a request that carries the connection's headers (and token, body):
        the API's origin, over TLS. Raises OriginNotAllowedError for any other origin."""
        where = _refuse_unsafe(url, page)
        if self.api is not None and where.origin != self.api.origin:
            raise self._not_allowed(
                where, page, redirect=False, allowed=where.origin in self.allowed
            )
        self.require_tls(where)
        return where

    def is_foreign(self, url: str, page: int, *, redirect: bool = False) -> bool:
        """For a pull's page: False for the API's origin, True for an allowed other one (it gets
        the URL only); raises OriginNotAllowedError for the rest."""
        where = _refuse_unsafe(url, page)
        if self.api is None or where.origin == self.api.origin:
            self.require_tls(where)
            return False
        if where.origin in self.allowed:
            return True
        raise self._not_allowed(where, page, redirect=redirect, allowed=False)

    def redirect(self, from_url: str, to_url: str, *, page: int | None = None) -> Target:
        """A redirect the caller would follow with the request's headers (and, for 307/308,
        its body): only within the origin it came from, and over TLS. Raises
        OriginNotAllowedError for another origin (https -> http on one host included)."""
        source = target(from_url)
        where = _refuse_unsafe(to_url, page)
        if where.origin != source.origin:
            raise self._not_allowed(
                where, page, redirect=True, allowed=where.origin in self.allowed, source=source
            )
        self.require_tls(where)
        return where

    def is_allowed_other(self, url: str) -> bool:
        """Whether ``url`` is on an origin of ``allowed_origins`` (never raises)."""
        try:
            return target(url).origin in self.allowed
        except UnsafeUrlError:
            return False

    def carries_token(self, url: str) -> bool:
        """Whether the token may go to ``url``: the API's origin (any, if none is known), over
        TLS unless loopback or allowed plain http. Never raises."""
        try:
            where = target(url)
        except UnsafeUrlError:
            return False
        if self.api is not None and where.origin != self.api.origin:
            return False
        return where.is_tls or where.is_loopback or self.allow_insecure_http

    def require_tls(self, where: Target) -> None:
        if where.is_tls or where.is_loopback or self.allow_insecure_http:
            return
        raise OriginNotAllowedError(
            f"{where.shown} is plain http and not a loopback address: nothing of the "
            "connection is sent there in clear (use https, or set allow_insecure_http)",
            origin=where.shown,
        )

    def _not_allowed(
        self,
        where: Target,
        page: int | None,
        *,
        redirect: bool,
        allowed: bool,
        source: Target | None = None,
    ) -> OriginNotAllowedError:
        subject = f"Page {page}" if page is not None else "The request"
        verb = "redirects to" if redirect else "is for"
        home = source or self.api
        home_text = f", not {home.shown}" if home is not None else ""
        if allowed:
            advice = (
                f"{where.shown} is in allowed_origins, which lets a pull fetch pages from it with "
                "the URL only; it never gets the connection's token, headers or body"
            )
        else:
            advice = (
                f"if the API really serves pages from there, an OAuthHttpOperator pull may list "
                f"'{where.shown}' in allowed_origins (it then gets the page URL only: no token, "
                "no headers, no request body)"
            )
        return OriginNotAllowedError(
            f"{subject} {verb} {where.shown}{home_text}: stopped before sending anything "
            f"there. {advice[0].upper()}{advice[1:]}",
            origin=where.shown,
        )


def _refuse_unsafe(url: str, page: int | None) -> Target:
    try:
        return target(url)
    except UnsafeUrlError as exc:
        subject = f"Page {page}'s URL" if page is not None else "The URL"
        raise OriginNotAllowedError(
            f"{subject} {exc}; nothing was sent", origin="an unusable URL"
        ) from None


def proxy_for(
    url: str,
    proxies: Mapping[str, str] | None,
    *,
    trust_env: bool,
    allow_insecure_http: bool = False,
) -> str | None:
    """The proxy a request to ``url`` goes through, or None for a direct connection.

    Plain http to loopback (without ``allow_insecure_http``): always direct. Else the
    connection's ``proxies`` (by ``scheme://host``, scheme, ``all://host``, ``all``, as requests
    selects), then the environment's when ``trust_env``.
    """
    where = target(url)
    if where.goes_direct(allow_insecure_http=allow_insecure_http):
        return None
    if proxies:
        for key in (
            f"{where.scheme}://{where.host}",
            where.scheme,
            f"all://{where.host}",
            "all",
        ):
            if proxies.get(key):
                return proxies[key]
    if trust_env:
        from requests.utils import get_environ_proxies

        environ = get_environ_proxies(url)
        chosen = environ.get(where.scheme) or environ.get("all")
        return str(chosen) if chosen else None
    return None


def proxy_password(proxy_url: str) -> str | None:
    """The password in a proxy URL (``http://user:pass@proxy:3128``), to mask and scrub; read
    without a URL parser, so that a malformed URL (a typo in the port) still gives it up."""
    from urllib.parse import unquote

    authority = proxy_url.split("://", 1)[-1].split("/", 1)[0]
    userinfo, at, _ = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return None
    return unquote(userinfo.split(":", 1)[1]) or None
