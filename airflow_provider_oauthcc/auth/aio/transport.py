"""aiohttp settings from a connection's TLS, proxy and timeout options, as requests reads them.

Shared by the asyncio token client and the asyncio API client, so that the triggerer talks to
the token endpoint and the API with the same certificates, proxies and timeouts as a worker.
SSL contexts are prepared off the loop and follow their files: a rotated client certificate or
CA bundle is picked up by the next request, with no triggerer restart.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
from collections import OrderedDict
from collections.abc import Sequence

import aiohttp
import requests

from airflow_provider_oauthcc.auth.tls import handshake_failure

# SSL contexts by setting and by the identity of the files they were built from, so that a
# rotated certificate (or CA bundle) is read again on its next use, without a restart.
_MAX_CONTEXTS = 64
_contexts: OrderedDict[tuple[object, ...], ssl.SSLContext] = OrderedDict()
_contexts_lock = threading.Lock()


def ssl_context(
    verify: bool | str, cert: str | None = None, key: str | None = None
) -> ssl.SSLContext | bool:
    """What aiohttp's ``ssl=`` takes for requests' ``verify`` (True, False or a CA bundle path)
    and ``cert``: built on first use, then again whenever one of its files changes. Blocks while
    it builds (reading PEM files costs milliseconds): on a loop use :func:`async_ssl_context`."""
    if verify is False and cert is None:
        return False
    identity = _identity(verify, cert, key)
    return _cached(identity) or _build_and_keep(identity, verify, cert, key)


async def async_ssl_context(
    verify: bool | str, cert: str | None = None, key: str | None = None
) -> ssl.SSLContext | bool:
    """:func:`ssl_context` for an event loop: certificate files are looked at and parsed in a
    worker thread, never on the loop."""
    if verify is False and cert is None:
        return False
    identity = await asyncio.to_thread(_identity, verify, cert, key)
    cached = _cached(identity)
    if cached is not None:
        return cached
    return await asyncio.to_thread(_build_and_keep, identity, verify, cert, key)


def clear_ssl_contexts() -> None:
    with _contexts_lock:
        _contexts.clear()


def _identity(verify: bool | str, cert: str | None, key: str | None) -> tuple[object, ...]:
    """The setting and the state (inode, size, mtime) of each file it names."""
    paths = [p for p in (verify if isinstance(verify, str) else None, cert, key) if p]
    return (verify, cert, key, *(_file_state(p) for p in paths))


def _file_state(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # building the context then says what is wrong with it
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _cached(identity: tuple[object, ...]) -> ssl.SSLContext | None:
    with _contexts_lock:
        context = _contexts.get(identity)
        if context is not None:
            _contexts.move_to_end(identity)
        return context


def _build_and_keep(
    identity: tuple[object, ...], verify: bool | str, cert: str | None, key: str | None
) -> ssl.SSLContext:
    context = _build(verify, cert, key)
    with _contexts_lock:
        # The contexts of the same setting built from older files are of no more use.
        for stale in [k for k in _contexts if k[:3] == identity[:3]]:
            del _contexts[stale]
        _contexts[identity] = context
        while len(_contexts) > _MAX_CONTEXTS:
            _contexts.popitem(last=False)
    return context


def _build(verify: bool | str, cert: str | None, key: str | None) -> ssl.SSLContext:
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


def env_proxy_would_apply(url: str) -> bool:
    """Whether aiohttp, trusting the environment, would send ``url`` through a proxy."""
    from requests.utils import get_environ_proxies

    scheme = url.split(":", 1)[0].lower()
    return bool(get_environ_proxies(url).get(scheme))


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
