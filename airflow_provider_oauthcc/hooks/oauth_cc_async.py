"""OAuthCCAsyncHook: OAuthCCHook for the triggerer (asyncio, aiohttp).

Reads the connection asynchronously, then follows the sync hook's rules: the same
``ClientConfig``, base URL, extra options (timeout, verify, allow_redirects, check_response),
token cache (memory, file or redis, shared with the workers' hooks), error types and per-request
retry policy. Nothing it holds is serialized: a trigger keeps only the connection ID.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
import requests
import tenacity

from airflow_provider_oauthcc.airflow_compat import BaseHook
from airflow_provider_oauthcc.auth.aio.api import (
    DEFAULT_MAX_BODY,
    ApiRequest,
    AsyncBearerClient,
    TransportOptions,
)
from airflow_provider_oauthcc.auth.aio.provider import AsyncTokenProvider
from airflow_provider_oauthcc.auth.aio.rate_limit import (
    AsyncRequestBudget,
    make_async_request_budget,
)
from airflow_provider_oauthcc.auth.cache import TokenCache
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import ApiConnectionError
from airflow_provider_oauthcc.auth.redact import scrub
from airflow_provider_oauthcc.auth.request_options import RequestOptions
from airflow_provider_oauthcc.auth.tls import warn_if_unverified
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook, api_error
from airflow_provider_oauthcc.hooks.token_cache import hook_token_cache, redis_client
from airflow_provider_oauthcc.pull.retry import (
    IDEMPOTENT_METHODS,
    RetryableStatusError,
    RetryPolicy,
    describe_failure,
    retry_after_seconds,
)

if TYPE_CHECKING:
    from airflow_provider_oauthcc.pull.async_pages import AsyncPull
    from airflow_provider_oauthcc.pull.pagination import Paginator


class OAuthCCAsyncHook(BaseHook):
    """Call an OAuth 2.0 client-credentials protected API from an event loop.

    ``run()`` sends one request (with retries if asked) through an ``aiohttp.ClientSession``
    the caller owns and returns a ``requests.Response``; a failed answer raises the sync
    hook's ``ApiError`` / ``ApiUnauthorizedError``, an unreachable API ``ApiConnectionError``.

    :param oauth_conn_id: an ``oauth2_client_credentials`` connection.
    :param method: HTTP method of ``run()`` (default GET).
    :param scope: this hook's scope instead of the connection's (as ``OAuthCCHook``).
    :param audience: this hook's audience instead of the connection's.
    :param resource: this hook's resource indicator(s) instead of the connection's.
    """

    conn_name_attr = "oauth_conn_id"
    default_conn_name = "oauth_cc_default"
    #: Requests this hook retried so far.
    retried = 0

    def __init__(
        self,
        oauth_conn_id: str = default_conn_name,
        method: str = "GET",
        *,
        scope: str | Sequence[str] | None = None,
        audience: str | None = None,
        resource: str | Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.oauth_conn_id = oauth_conn_id
        self.method = method.upper()
        # The sync hook's rules for the base URL, the settings and errors; it makes no request.
        self._sync = OAuthCCHook(
            method=self.method,
            oauth_conn_id=oauth_conn_id,
            scope=scope,
            audience=audience,
            resource=resource,
        )
        self._provider: AsyncTokenProvider | None = None
        self._redis_factory: Callable[[], Any] | None = None
        self._budget: AsyncRequestBudget | None = None

    async def token_provider(self) -> AsyncTokenProvider:
        if self._provider is None:
            connection = await self._connection(self.oauth_conn_id)
            config = self._sync.use_connection(connection)
            cache = await self._token_cache(config)
            self._budget = await self._request_budget(config)
            self._provider = AsyncTokenProvider(config, cache=cache)
        return self._provider

    async def _connection(self, conn_id: str) -> Any:
        """The connection, read without blocking the loop on any Airflow version."""
        from airflow_provider_oauthcc.airflow_compat import get_async_connection

        return await get_async_connection(conn_id, self)

    async def redis_client_factory(self, config: ClientConfig) -> Callable[[], Any]:
        """What makes the client of the connection's ``cache_redis_conn_id`` (the token cache's,
        the request budget's and a watcher's state store): that connection is read once per
        hook. Raises LookupError, naming the connection, when it cannot be read."""
        if self._redis_factory is None:
            conn_id = config.cache_redis_conn_id
            try:
                connection = await self._connection(conn_id)
            except Exception as exc:
                raise LookupError(
                    f"cannot read the Redis connection '{conn_id}' ({type(exc).__name__})"
                ) from None
            self._redis_factory = functools.partial(redis_client, connection)
        return self._redis_factory

    async def _request_budget(self, config: ClientConfig) -> AsyncRequestBudget | None:
        """The connection's request budget, shared with the workers' hooks through the token
        cache's Redis when that is Redis (this process's otherwise, or if it cannot be read)."""
        redis: Callable[[], Any] | None = None
        if config.cache_backend == "redis":
            try:
                redis = await self.redis_client_factory(config)
            except LookupError:
                redis = None  # the cache warns about it; the budget is this process's
        policy = self._sync.egress_policy()
        shown = policy.api.shown if policy.api else ""
        return make_async_request_budget(config, policy.api_origin, shown, redis_client=redis)

    async def _token_cache(self, config: ClientConfig) -> TokenCache:
        if config.cache_backend == "memory":
            return hook_token_cache(config, None)  # the process cache: nothing to set up
        client: Callable[[], Any] | None = None
        if config.cache_backend == "redis":
            try:
                # Called on first use, in a thread as every cache call of the async provider.
                client = await self.redis_client_factory(config)
            except LookupError as exc:
                # As the sync hook: the cache fails open, with one warning, on first use.
                client = _raising(exc)

        # Building a file or Redis cache may touch the disk, Airflow's configuration too: not
        # on the loop.
        return await asyncio.to_thread(hook_token_cache, config, client)

    async def client(
        self, extra_options: Mapping[str, Any] | None = None, *, max_body: int = DEFAULT_MAX_BODY
    ) -> AsyncBearerClient:
        """A client for this connection with ``extra_options`` applied as the sync hook does."""
        provider = await self.token_provider()
        return self._client(provider, await self.request_options(extra_options), max_body)

    async def request_options(self, extra_options: Mapping[str, Any] | None) -> RequestOptions:
        """The connection's request settings overridden by ``extra_options``, parsed as the
        sync hook parses them (``timeout``, ``verify``, ``check_response`` ...)."""
        provider = await self.token_provider()
        return RequestOptions.parse(provider.config, extra_options)

    async def session(
        self, extra_options: Mapping[str, Any] | None = None
    ) -> aiohttp.ClientSession:
        """A session for ``run()``. Proxies are chosen by the egress gate from the connection's
        ``proxies`` and, when its ``trust_env`` is on, the environment's (as the sync hook's
        ``requests.Session``), so aiohttp is not left to pick one itself."""
        await self.request_options(extra_options)  # a bad setting fails here, before a request
        return aiohttp.ClientSession(trust_env=False)

    def _client(
        self, provider: AsyncTokenProvider, options: RequestOptions, max_body: int
    ) -> AsyncBearerClient:
        config = provider.config
        cert_file, cert_key = options.cert_file_and_key
        warn_if_unverified(options.verify, self._sync.base_url, "API")
        return AsyncBearerClient(
            provider,
            self._sync.egress_policy(),
            options=TransportOptions(
                verify=options.verify,
                timeout=options.timeout,
                proxies={**(config.proxies or {}), **options.proxies},
                allow_redirects=options.allow_redirects,
                max_redirects=options.max_redirects,
                cert=cert_file,
                cert_key=cert_key,
                trust_env=options.trust_env,
                max_body=max_body,
            ),
            default_headers=config.api_headers,
            budget=self._budget,
        )

    def secrets(self) -> tuple[str, ...]:
        """The connection's secrets, in every form a server may echo them, and its recent
        tokens, once it was read: to scrub from anything kept or shown."""
        return self._provider.secret_forms() if self._provider else ()

    def url_from_endpoint(self, endpoint: str | None) -> str:
        """``endpoint`` joined to the API base URL as HttpHook joins it, or as is when it is an
        absolute URL (a next page, a download link); the token goes to the API's origin only.
        Call after ``client()``, which reads the connection."""
        if endpoint and "://" in endpoint.split("?", 1)[0]:
            return endpoint
        return self._sync.url_from_endpoint(endpoint)

    async def run(
        self,
        session: aiohttp.ClientSession,
        endpoint: str | None = None,
        data: Mapping[str, Any] | str | None = None,
        headers: Mapping[str, str] | None = None,
        extra_options: Mapping[str, Any] | None = None,
        *,
        json: Any = None,
        retries: int = 0,
        retry_max_wait: float = 60.0,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> requests.Response:
        """Send one request as ``HttpHook.run`` does (``data`` is the query for GET, the body
        otherwise), retried per the sync operator's policy when ``retries`` > 0. An answer
        larger than ``max_body`` bytes (decompressed) raises ApiResponseTooLargeError."""
        provider = await self.token_provider()
        options = await self.request_options(extra_options)
        client = self._client(provider, options, max_body)
        check = options.check_response
        request = self._request(endpoint, data, headers, json)
        policy = RetryPolicy(
            retries=retries,
            max_wait=retry_max_wait,
            idempotent=self.method in IDEMPOTENT_METHODS,
        )
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(retries + 1),
            wait=policy.wait,
            retry=tenacity.retry_if_exception(lambda error: _should_retry(policy, error)),
            before_sleep=self._log_retry,
            reraise=True,
        )
        response: requests.Response = await retrying(
            self._send, session, client, request, check, policy
        )
        return response

    def paginate(
        self,
        session: aiohttp.ClientSession | None = None,
        endpoint: str | None = None,
        *,
        paginator: Paginator | None = None,
        records_path: str | None = None,
        data: Mapping[str, Any] | str | None = None,
        headers: Mapping[str, str] | None = None,
        extra_options: Mapping[str, Any] | None = None,
        json: Any = None,
        max_pages: int | None = None,
        retries: int = 5,
        retry_max_wait: float = 60.0,
        response_filter: Callable[[requests.Response], list[Any]] | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        progress_interval: float = 5.0,
    ) -> AsyncPull:
        """The pages of ``endpoint`` for ``async for``, as the sync hook's ``paginate``: the
        same paginators, records (``records_path`` or ``response_filter``), ``max_pages``,
        progress and summary lines, and each page sent as ``run`` sends it (retries,
        Retry-After, the API's origin only, answers of at most ``max_body`` bytes).

        Without ``session`` the pull opens one (``session()``) and closes it when the
        iteration ends; ``async with hook.paginate(...) as pull`` closes it when left early.
        Next pages on another origin stop the pull (the async hook fetches no URL-only pages).
        """
        from airflow_provider_oauthcc.pull.async_pages import AsyncPull
        from airflow_provider_oauthcc.pull.pagination import PageRequest
        from airflow_provider_oauthcc.pull.pagination import Paginator as PaginatorBase
        from airflow_provider_oauthcc.pull.records import records_in

        if paginator is not None and not isinstance(paginator, PaginatorBase):
            raise TypeError(
                "paginator must be a paginator such as LinkHeaderPaginator() or "
                f"CursorPaginator(...), got {type(paginator).__name__}"
            )
        if retries < 0 or retry_max_wait < 0:
            raise ValueError("retries and retry_max_wait must be >= 0")
        opened: list[aiohttp.ClientSession] = []
        retried_before = self.retried

        async def send(request: PageRequest, number: int) -> requests.Response:
            nonlocal session
            if session is None:
                session = await self.session(extra_options)
                opened.append(session)
            return await self.run(
                session,
                request.url,
                request.data,
                request.headers,
                {**(extra_options or {}), **request.options},
                json=json,
                retries=retries,
                retry_max_wait=retry_max_wait,
                max_body=max_body,
            )

        async def close() -> None:
            for own in opened:
                await own.close()

        # page 1's URL is resolved by run() once the connection is read
        first = PageRequest(
            url=endpoint or "",
            data=data or None,
            headers=dict(headers or {}),
            data_in_query=self.method in ("GET", "HEAD"),
        )
        return AsyncPull(
            send,
            first,
            paginator,
            records_in(records_path, response_filter),
            log=self.log,
            max_pages=max_pages,
            progress_interval=progress_interval,
            retries=lambda: self.retried - retried_before,
            close=close,
        )

    def _request(
        self,
        endpoint: str | None,
        data: Mapping[str, Any] | str | None,
        headers: Mapping[str, str] | None,
        json: Any,
    ) -> ApiRequest:
        url = self.url_from_endpoint(endpoint)
        if self.method == "GET":
            return ApiRequest(self.method, url, params=data, json=json, headers=headers)
        if self.method == "HEAD":
            return ApiRequest(self.method, url, headers=headers)
        return ApiRequest(self.method, url, data=data, json=json, headers=headers)

    async def _send(
        self,
        session: aiohttp.ClientSession,
        client: AsyncBearerClient,
        request: ApiRequest,
        check: bool,
        policy: RetryPolicy,
    ) -> requests.Response:
        response = await client.send(session, request)
        if check and not response.ok:
            if policy.should_retry_status(response.status_code):
                raise RetryableStatusError(response, retry_after_seconds(response))
            self.log.error("HTTP error: %s", scrub(response.reason, self.secrets()))
            # Scrubbed before it is cut: a cut could leave a piece of a secret unmatched.
            self.log.error("%s", scrub(response.text, self.secrets(), limit=1000))
            raise api_error(response)
        return response

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        self.retried += 1
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        reason = str(error) if isinstance(error, ApiConnectionError) else describe_failure(error)
        self.log.warning(
            "%s on attempt %d; retrying in %.1f s",
            reason,
            state.attempt_number,
            wait,
        )


def _should_retry(policy: RetryPolicy, error: BaseException) -> bool:
    if isinstance(error, RetryableStatusError):
        return True
    if isinstance(error, ApiConnectionError):
        return not error.request_sent or policy.idempotent
    return False


def _raising(error: Exception) -> Callable[[], Any]:
    def fail() -> Any:
        raise error

    return fail
