"""aiohttp settings from a connection's TLS, proxy and timeout options, as requests reads them.

Shared by the asyncio token client and the asyncio API client, so that the triggerer talks to
the token endpoint and the API with the same certificates, proxies and timeouts as a worker.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import aiohttp
import requests

from airflow_provider_oauthcc.auth.tls import handshake_failure


def ssl_context(
    verify: bool | str, cert: str | None = None, key: str | None = None
) -> ssl.SSLContext | bool:
    """What aiohttp's ``ssl=`` takes for requests' ``verify`` (True, False or a CA bundle path)
    and ``cert``. Contexts are built once per setting: building one costs milliseconds."""
    if verify is False and cert is None:
        return False
    return _context(verify, cert, key)


@functools.lru_cache(maxsize=32)
def _context(verify: bool | str, cert: str | None, key: str | None) -> ssl.SSLContext:
    if isinstance(verify, str):
        if os.path.isdir(verify):
            context = ssl.create_default_context(capath=verify)
        else:
            context = ssl.create_default_context(cafile=verify)
    else:
        context = ssl.create_default_context(cafile=_requests_ca_bundle())
        if verify is False:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    if cert:
        context.load_cert_chain(cert, key)
    return context


def _requests_ca_bundle() -> str | None:
    """The CA bundle requests verifies with by default (certifi's), for the same trust."""
    try:
        import certifi
    except ImportError:
        return None
    return str(certifi.where())


def client_timeout(timeout: float | Sequence[float] | None) -> aiohttp.ClientTimeout:
    """requests' ``timeout`` (seconds, or (connect, read)): bounds on connecting and on each
    read, not on the whole exchange."""
    if timeout is None:
        return aiohttp.ClientTimeout(total=None)
    if isinstance(timeout, int | float):
        connect = read = float(timeout)
    else:
        connect, read = (float(t) for t in timeout)
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)


def proxy_for(url: str, proxies: Mapping[str, str] | None) -> str | None:
    """The proxy requests would pick from a ``proxies`` mapping (by scheme, then ``all``)."""
    if not proxies:
        return None
    scheme = urlsplit(url).scheme
    return proxies.get(scheme) or proxies.get("all")


def tls_failure(exc: aiohttp.ClientSSLError | ssl.SSLError, *, has_client_cert: bool) -> str:
    """Why a handshake failed, in the same words as the requests path."""
    return handshake_failure(
        requests.exceptions.SSLError(str(exc)), has_client_cert=has_client_cert
    )


def connection_reason(exc: BaseException) -> str:
    """A short reason for a failed connection: the OS error text, never a request."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return (exc.strerror or type(exc).__name__).lower()
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    return type(exc).__name__
