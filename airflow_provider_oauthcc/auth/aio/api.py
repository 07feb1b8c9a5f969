"""AsyncBearerClient: API requests over aiohttp with the token of an AsyncTokenProvider.

What :class:`~airflow_provider_oauthcc.auth.requests_auth.BearerAuth` does for requests: the
token goes to the API's own origin and nowhere else; on a 401 the token is invalidated, a new
one fetched and the request replayed once. Redirects are followed here, not by aiohttp, so the
token never rides along to another origin. Answers come back as ``requests.Response`` objects,
so response checks, filters and paginators written for the sync path work unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import requests
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from airflow_provider_oauthcc.auth.aio.provider import AsyncTokenProvider
from airflow_provider_oauthcc.auth.aio.transport import (
    async_ssl_context,
    client_timeout,
    connection_reason,
    proxy_for,
    tls_failure,
)
from airflow_provider_oauthcc.auth.client import origin
from airflow_provider_oauthcc.auth.errors import ApiConnectionError
from airflow_provider_oauthcc.auth.token import Token

log = logging.getLogger(__name__)

DEFAULT_MAX_REDIRECTS = 30  # as requests


@dataclass(frozen=True)
class ApiRequest:
    """One API request. ``data`` is a form (dict) or a raw body (str/bytes); ``params`` the query."""

    method: str
    url: str
    params: Mapping[str, Any] | str | None = None
    data: Mapping[str, Any] | str | bytes | None = None
    json: Any = None
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class TransportOptions:
    """requests-style options: ``verify``, ``timeout`` (s or (connect, read)), ``proxies`` ..."""

    verify: bool | str = True
    timeout: float | Sequence[float] | None = 30.0
    proxies: Mapping[str, str] | None = None
    allow_redirects: bool = True
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    cert: str | None = None
    cert_key: str | None = None


class AsyncBearerClient:
    """Sends requests through an ``aiohttp.ClientSession`` the caller owns (and closes)."""

    def __init__(
        self,
        provider: AsyncTokenProvider,
        api_base_url: str | None,
        *,
        options: TransportOptions | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.provider = provider
        self.options = options or TransportOptions()
        self.default_headers = dict(default_headers or {})
        self._origin = _origin(api_base_url) if api_base_url else None
        self._warned_hosts: set[str] = set()

    async def send(self, session: aiohttp.ClientSession, request: ApiRequest) -> requests.Response:
        """The final answer to ``request`` after redirects and at most one 401 replay."""
        response, token = await self._follow(session, request)
        if response.status_code != 401 or token is None or not self._allowed(response.url):
            return response
        log.info("API answered 401; refreshing the OAuth token and replaying the request once")
        await self.provider.invalidate(token)
        replay, _ = await self._follow(session, request)
        replay.history.insert(0, response)
        return replay

    async def _follow(
        self, session: aiohttp.ClientSession, request: ApiRequest
    ) -> tuple[requests.Response, Token | None]:
        """Sends ``request`` and follows its redirects; returns the answer and the token sent
        to the URL that gave it (None when no token went there)."""
        history: list[requests.Response] = []
        while True:
            token = await self.provider.get_token() if self._allowed(request.url) else None
            response = await self._send_once(session, request, token)
            location = response.headers.get("Location")
            if not (self.options.allow_redirects and response.is_redirect and location):
                response.history = history
                return response, token
            if len(history) >= self.options.max_redirects:
                raise ApiConnectionError(
                    f"more than {self.options.max_redirects} redirects from {origin(request.url)}"
                )
            history.append(response)
            request = _redirected(request, response.status_code, urljoin(response.url, location))

    async def _send_once(
        self, session: aiohttp.ClientSession, request: ApiRequest, token: Token | None
    ) -> requests.Response:
        headers = {**self.default_headers, **(request.headers or {})}
        if token is not None:
            headers["Authorization"] = f"Bearer {token.access_token}"
        data: Any = request.data
        skip_auto_headers: tuple[str, ...] = ()
        if isinstance(data, str):
            data = data.encode()
        if isinstance(data, bytes) and not any(k.lower() == "content-type" for k in headers):
            skip_auto_headers = ("Content-Type",)  # requests sends none for a raw body
        elif isinstance(data, Mapping):
            data = _pairs(data)  # a form, encoded as requests encodes it
        options = self.options
        ssl_setting = await async_ssl_context(options.verify, options.cert, options.cert_key)
        try:
            async with session.request(
                request.method,
                request.url,
                params=_pairs(request.params),
                data=data,
                json=request.json if data is None else None,  # requests ignores json then
                headers=headers,
                skip_auto_headers=skip_auto_headers,
                allow_redirects=False,
                ssl=ssl_setting,
                proxy=proxy_for(request.url, options.proxies),
                timeout=client_timeout(options.timeout),
            ) as answer:
                return await to_requests_response(answer)
        except aiohttp.ClientSSLError as exc:
            reason = tls_failure(exc, has_client_cert=options.cert is not None)
            raise ApiConnectionError(
                f"TLS handshake with the API {origin(request.url)} failed: {reason}",
                request_sent=False,
            ) from None
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise ApiConnectionError(
                f"cannot reach the API {origin(request.url)} ({connection_reason(exc)})",
                request_sent=False,
            ) from None
        except TimeoutError:
            raise ApiConnectionError(
                f"the API {origin(request.url)} did not answer within {options.timeout} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise ApiConnectionError(
                f"the connection to the API {origin(request.url)} failed ({connection_reason(exc)})"
            ) from None

    def _allowed(self, url: str) -> bool:
        if self._origin is None or _origin(url) == self._origin:
            return True
        host = urlsplit(url).netloc
        if host not in self._warned_hosts:
            self._warned_hosts.add(host)
            log.warning(
                "Not sending the OAuth token to %s: it is not the connection's API host %s",
                host,
                urlsplit(self._origin).netloc,
            )
        return False


async def to_requests_response(answer: aiohttp.ClientResponse) -> requests.Response:
    """A ``requests.Response`` holding an aiohttp answer, body read."""
    response = requests.Response()
    response._content = await answer.read()
    response.status_code = answer.status
    response.reason = answer.reason or ""
    response.headers = CaseInsensitiveDict(answer.headers)
    response.url = str(answer.url)
    response.encoding = get_encoding_from_headers(response.headers)
    return response


def _redirected(request: ApiRequest, status: int, url: str) -> ApiRequest:
    """The request a redirect asks for, as requests rebuilds it (RFC 9110 §15.4)."""
    method = request.method.upper()
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        return ApiRequest("GET", url, headers=request.headers)
    return ApiRequest(method, url, data=request.data, json=request.json, headers=request.headers)


def _pairs(fields: Mapping[str, Any] | str | None) -> Any:
    """A query or form as requests encodes it: None values dropped, lists repeated, the rest
    as ``str()`` (aiohttp refuses None and bools)."""
    if fields is None or isinstance(fields, str):
        return fields
    pairs: list[tuple[str, str]] = []
    for name, value in fields.items():
        values = value if isinstance(value, list | tuple) else [value]
        pairs.extend((str(name), str(v)) for v in values if v is not None)
    return pairs


def _origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"
