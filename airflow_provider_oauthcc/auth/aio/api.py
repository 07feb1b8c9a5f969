"""AsyncBearerClient: API requests over aiohttp with the token of an AsyncTokenProvider.

What :class:`~airflow_provider_oauthcc.auth.gated_session.GatedSession` and
:class:`~airflow_provider_oauthcc.auth.requests_auth.BearerAuth` do for requests: every request
and redirect hop passes the egress gate (the API's origin only, over TLS, loopback never through
a proxy), the token goes to the API's origin and nowhere else, and on a 401 the token is
invalidated, a new one fetched and the request replayed once. Redirects are followed here, not
by aiohttp, so that each hop is judged before it is sent. Answers are read through a capped
reader (counted after decompression) and come back as ``requests.Response`` objects, so
response checks, filters and paginators written for the sync path work unchanged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import aiohttp
import requests
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from airflow_provider_oauthcc.auth import dpop, egress
from airflow_provider_oauthcc.auth.aio.provider import AsyncTokenProvider
from airflow_provider_oauthcc.auth.aio.rate_limit import AsyncRequestBudget, budgeted_send
from airflow_provider_oauthcc.auth.aio.transport import (
    async_ssl_context,
    client_timeout,
    connection_reason,
    env_proxy_would_apply,
    tls_failure,
)
from airflow_provider_oauthcc.auth.egress import EgressPolicy, shown
from airflow_provider_oauthcc.auth.errors import ApiConnectionError, OriginNotAllowedError
from airflow_provider_oauthcc.auth.http_read import READ_CHUNK, CappedBody, api_too_large
from airflow_provider_oauthcc.auth.request_options import DEFAULT_MAX_REDIRECTS
from airflow_provider_oauthcc.auth.token import Token

log = logging.getLogger(__name__)

# What one API answer read in an event loop may hold, decompressed, unless the caller says.
DEFAULT_MAX_BODY = 64 * 1024 * 1024


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
    """requests-style options: ``verify``, ``timeout`` (s or (connect, read)), ``proxies``,
    ``trust_env`` (the environment's proxies), redirects, client certificate, and ``max_body``:
    the most bytes of an answer read (decompressed), beyond which it is refused."""

    verify: bool | str = True
    timeout: float | Sequence[float] | None = 30.0
    proxies: Mapping[str, str] | None = None
    allow_redirects: bool = True
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    cert: str | None = None
    cert_key: str | None = None
    trust_env: bool = False
    max_body: int = DEFAULT_MAX_BODY


class AsyncBearerClient:
    """Sends requests through an ``aiohttp.ClientSession`` the caller owns (and closes).

    :param api: the API's base URL, or the egress policy of the connection.
    """

    def __init__(
        self,
        provider: AsyncTokenProvider,
        api: str | EgressPolicy | None,
        *,
        options: TransportOptions | None = None,
        default_headers: Mapping[str, str] | None = None,
        budget: AsyncRequestBudget | None = None,
    ) -> None:
        self.provider = provider
        # The request budget of the API's origin (see auth/aio/rate_limit.py).
        self.budget = budget
        self.options = options or TransportOptions()
        self.default_headers = dict(default_headers or {})
        self.egress = (
            api
            if isinstance(api, EgressPolicy)
            else EgressPolicy(api, allow_insecure_http=provider.config.allow_insecure_http)
        )
        self._warned_hosts: set[str] = set()

    async def send(self, session: aiohttp.ClientSession, request: ApiRequest) -> requests.Response:
        """The final answer to ``request`` after redirects and at most one 401 replay."""
        self.egress.request(request.url)
        response, token = await self._follow(session, request)
        response, token = await self._dpop_nonce_retry(session, request, response, token)
        if response.status_code != 401 or token is None:
            return response
        log.info("API answered 401; refreshing the OAuth token and replaying the request once")
        await self.provider.invalidate(token)
        replay, token = await self._follow(session, request)
        replay, _ = await self._dpop_nonce_retry(session, request, replay, token)
        replay.history.insert(0, response)
        return replay

    async def _dpop_nonce_retry(
        self,
        session: aiohttp.ClientSession,
        request: ApiRequest,
        response: requests.Response,
        token: Token | None,
    ) -> tuple[requests.Response, Token | None]:
        """RFC 9449 §9: the API asked for a nonce in the proof; the same token with a new
        proof, once."""
        if token is None or not token.dpop_jwk:
            return response, token
        if not dpop.asks_for_nonce_at_api(response.status_code, response.headers):
            return response, token
        replay, token = await self._follow(session, request)
        replay.history.insert(0, response)
        return replay, token

    async def _follow(
        self, session: aiohttp.ClientSession, request: ApiRequest
    ) -> tuple[requests.Response, Token | None]:
        """Sends ``request`` and follows its redirects within its origin; returns the answer
        and the token sent to the URL that gave it (None when no token went there)."""
        history: list[requests.Response] = []
        while True:
            token = await self.provider.get_token() if self._carries_token(request.url) else None
            response = await budgeted_send(
                self.budget,
                self.egress,
                request.url,
                functools.partial(self._send_once, session, request, token),
            )
            location = response.headers.get("Location")
            if not (self.options.allow_redirects and response.is_redirect and location):
                response.history = history
                return response, token
            if len(history) >= self.options.max_redirects:
                raise ApiConnectionError(
                    f"more than {self.options.max_redirects} redirects from {shown(request.url)}"
                )
            history.append(response)
            target_url = urljoin(response.url, location)
            # Judged before anything is sent there: another origin gets nothing of the request.
            self.egress.redirect(request.url, target_url)
            request = _redirected(request, response.status_code, target_url)

    async def _send_once(
        self, session: aiohttp.ClientSession, request: ApiRequest, token: Token | None
    ) -> requests.Response:
        headers = {**self.default_headers, **(request.headers or {})}
        if token is not None:
            headers.update(_authorization_headers(token, request.method, request.url))
        data: Any = request.data
        skip_auto_headers: tuple[str, ...] = ()
        if isinstance(data, str):
            data = data.encode()
        if isinstance(data, bytes) and not any(k.lower() == "content-type" for k in headers):
            skip_auto_headers = ("Content-Type",)  # requests sends none for a raw body
        elif isinstance(data, Mapping):
            data = _pairs(data)  # a form, encoded as requests encodes it
        options = self.options
        url = request.url
        proxy = self._proxy(session, url)
        ssl_setting = await async_ssl_context(options.verify, options.cert, options.cert_key)
        try:
            async with session.request(
                request.method,
                url,
                params=_pairs(request.params),
                data=data,
                json=request.json if data is None else None,  # requests ignores json then
                headers=headers,
                skip_auto_headers=skip_auto_headers,
                allow_redirects=False,
                ssl=ssl_setting,
                proxy=proxy,
                timeout=client_timeout(options.timeout),
            ) as answer:
                response = await to_requests_response(answer, max_body=options.max_body)
                if token is not None and token.dpop_jwk:
                    dpop.NONCES.note(url, response.headers)
                return response
        except aiohttp.ClientSSLError as exc:
            reason = tls_failure(exc, has_client_cert=options.cert is not None)
            raise ApiConnectionError(
                f"TLS handshake with the API {shown(url)} failed: {reason}",
                request_sent=False,
            ) from None
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise ApiConnectionError(
                f"cannot reach the API {shown(url)} ({connection_reason(exc)})",
                request_sent=False,
            ) from None
        except TimeoutError:
            raise ApiConnectionError(
                f"the API {shown(url)} did not answer within {_seconds(options.timeout)} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise ApiConnectionError(
                f"the connection to the API {shown(url)} failed ({connection_reason(exc)})"
            ) from None

    def _proxy(self, session: aiohttp.ClientSession, url: str) -> str | None:
        proxy = egress.proxy_for(
            url,
            self.options.proxies,
            trust_env=self.options.trust_env,
            allow_insecure_http=self.egress.allow_insecure_http,
        )
        if proxy is None and session.trust_env and env_proxy_would_apply(url):
            # aiohttp would pick the environment's proxy itself, where the gate said direct.
            raise OriginNotAllowedError(
                f"{shown(url)}: the aiohttp session trusts the environment's proxy settings "
                "(trust_env=True), which would send this request through a proxy the connection "
                "rules out (a loopback address, or trust_env off); use the hook's session()",
                origin=shown(url),
            )
        return proxy

    def _carries_token(self, url: str) -> bool:
        if self.egress.carries_token(url):
            return True
        host = shown(url)
        if host not in self._warned_hosts:
            self._warned_hosts.add(host)
            log.warning(
                "Not sending the OAuth token to %s: it is not the connection's API origin", host
            )
        return False


async def to_requests_response(
    answer: aiohttp.ClientResponse, *, max_body: int = DEFAULT_MAX_BODY
) -> requests.Response:
    """A ``requests.Response`` holding an aiohttp answer, body read up to ``max_body`` bytes
    (decompressed); a larger one raises ApiResponseTooLargeError as soon as it passes the cap."""
    response = requests.Response()
    body = CappedBody(f"the answer of {shown(str(answer.url))}", max_body, too_large=api_too_large)
    body.check_declared(None if answer.headers.get("Content-Encoding") else answer.content_length)
    while part := await answer.content.read(READ_CHUNK):
        body.add(part)
    response._content = body.content()
    response.status_code = answer.status
    response.reason = answer.reason or ""
    response.headers = CaseInsensitiveDict(answer.headers)
    response.url = str(answer.url)
    response.encoding = get_encoding_from_headers(response.headers)
    return response


def _authorization_headers(token: Token, method: str, url: str) -> dict[str, str]:
    """Authorization (Bearer, or DPoP with a fresh proof for this request)."""
    headers = {"Authorization": dpop.authorization(token)}
    proof = dpop.api_proof(token, method, url)
    if proof is not None:
        headers["DPoP"] = proof
    return headers


def _seconds(timeout: float | Sequence[float] | None) -> str:
    if isinstance(timeout, int | float):
        return f"{timeout:g}"
    return f"[{', '.join(f'{t:g}' for t in timeout)}]" if timeout else "unlimited"


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
