"""AsyncTokenClient: the client-credentials token request over aiohttp, for the triggerer.

The same request as :class:`~airflow_provider_oauthcc.auth.client.TokenClient`: the form, the
client authentication (:class:`ClientAuthenticator`), the reading of the answer and the
retries are shared with it; only the transport differs.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping
from typing import Unpack
from urllib.parse import urlencode

import aiohttp
import tenacity

from airflow_provider_oauthcc.auth import masking
from airflow_provider_oauthcc.auth.aio.transport import (
    async_ssl_context,
    client_timeout,
    connection_reason,
    tls_failure,
)
from airflow_provider_oauthcc.auth.client import (
    RetryableTokenError,
    RetryingTokenClient,
    RetryOptions,
    TokenClient,
    dpop_binding,
    sender_constrained,
    token_form,
    token_from_answer,
)
from airflow_provider_oauthcc.auth.config import MTLS_METHODS, ClientConfig
from airflow_provider_oauthcc.auth.egress import proxy_for, shown
from airflow_provider_oauthcc.auth.errors import TokenRequestError
from airflow_provider_oauthcc.auth.http_read import READ_CHUNK, CappedBody, attempt_deadline
from airflow_provider_oauthcc.auth.token import Token


class AsyncTokenClient(RetryingTokenClient):
    """Posts client-credentials token requests from an event loop, with bounded retries."""

    def __init__(self, config: ClientConfig, **retry: Unpack[RetryOptions]) -> None:
        super().__init__(config, **retry)
        self._client_cert = config.client_cert if config.auth_method in MTLS_METHODS else None
        self._token_url = config.token_url
        self._trust_env = config.trust_env
        self._secrets_masked = False
        self._dpop = dpop_binding(config)

    @property
    def known_token_url(self) -> str | None:
        """The token endpoint if known (configured, or discovered already)."""
        return self._token_url

    async def token_url(self) -> str:
        """The token endpoint, discovered from the issuer on first use (then cached per process)."""
        if self._token_url is None:
            self._token_url = await asyncio.to_thread(self._discover)
        return self._token_url

    def _discover(self) -> str:
        # Discovery runs once per issuer and process: the requests path, in a thread.
        client = TokenClient(self.config, max_attempts=1)
        try:
            return client.token_url
        finally:
            client.close()

    async def fetch_token(self) -> Token:
        """Request a new token; retries transient failures, raises TokenRequestError otherwise."""
        if not self._secrets_masked:
            await masking.amask(*self.config.secrets)
            self._secrets_masked = True
        url = await self.token_url()
        retrying = tenacity.AsyncRetrying(**self._retry_settings())
        try:
            token: Token = await retrying(self._request_once, url)
        except RetryableTokenError as exc:
            raise exc.gave_up(self.max_attempts, self.config) from None
        return token

    async def _request_once(self, url: str) -> Token:
        if self._dpop is not None:
            await asyncio.to_thread(lambda: self._dpop and self._dpop.key)  # RSA keys take a while
        # A DPoP server that asks for a nonce gets the request once more, with a new proof.
        for _ in range(2):
            sent_at, status, answer_headers, content = await self._post(url)
            if not (
                self._dpop and self._dpop.retry_with_nonce(url, status, answer_headers, content)
            ):
                break
        token = token_from_answer(
            self.config,
            url,
            status=status,
            headers=answer_headers,
            body=content,
            sent_at=sent_at,
            assertion=self._authenticator.last_assertion,
        )
        return sender_constrained(self.config, self._dpop, token)

    async def _post(self, url: str) -> tuple[float, int, Mapping[str, str], bytes]:
        config = self.config
        prepare = functools.partial(
            self._authenticator.prepare,
            url,
            {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"},
            urlencode(token_form(config), doseq=True),
        )
        # A federated assertion is read from its file for each request: not on the loop.
        reads_file = config.auth_method == "federated_assertion"
        headers, body = await asyncio.to_thread(prepare) if reads_file else prepare()
        if self._authenticator.last_assertion:
            masking.hold_token(
                self._authenticator.last_assertion, self._authenticator.last_assertion_expires
            )
        if self._dpop is not None:
            headers["DPoP"] = self._dpop.token_request_proof(url)
        self.egress.request(url)
        # Certificate files are looked at and parsed in a thread, never on the loop.
        ssl = await async_ssl_context(config.verify, self._client_cert, config.client_cert_key)
        sent_at = time.time()
        try:
            async with (
                # Proxies are the gate's choice (never one for loopback), not aiohttp's.
                aiohttp.ClientSession(trust_env=False) as session,
                asyncio.timeout(attempt_deadline(config.timeout)),
                session.post(
                    url,
                    data=body.encode(),
                    headers=headers,
                    allow_redirects=False,
                    ssl=ssl,
                    proxy=proxy_for(
                        url,
                        config.proxies,
                        trust_env=self._trust_env,
                        allow_insecure_http=config.allow_insecure_http,
                    ),
                    timeout=client_timeout(config.timeout),
                ) as response,
            ):
                content = await _read_capped(response)
                status, answer_headers = response.status, response.headers
        except aiohttp.ClientSSLError as exc:
            reason = tls_failure(exc, has_client_cert=self._client_cert is not None)
            raise TokenRequestError(
                f"TLS handshake with the token endpoint {shown(url)} failed: {reason}"
            ) from None
        except TimeoutError:
            raise RetryableTokenError(
                TokenRequestError(
                    f"token endpoint {shown(url)} did not answer within {config.timeout:g} s"
                )
            ) from None
        except aiohttp.ClientError as exc:
            raise RetryableTokenError(
                TokenRequestError(
                    f"cannot reach the token endpoint {shown(url)} ({connection_reason(exc)})"
                )
            ) from None
        return sent_at, status, answer_headers, content


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    body = CappedBody("the token endpoint's answer")
    body.check_declared(response.content_length)
    while part := await response.content.read(READ_CHUNK):  # what has arrived, up to a chunk
        body.add(part)
    return body.content()
