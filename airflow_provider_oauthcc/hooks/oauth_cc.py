"""OAuthCCHook: an HttpHook whose requests carry an OAuth 2.0 client-credentials token."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import requests
from airflow.providers.http.hooks.http import HttpHook

from airflow_provider_oauthcc.airflow_compat import amask_secret, mask_secret
from airflow_provider_oauthcc.auth import deployment, masking, metrics
from airflow_provider_oauthcc.auth.client import TokenClient
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.egress import EgressPolicy, shown
from airflow_provider_oauthcc.auth.errors import ApiError, ApiUnauthorizedError, OAuthCCError
from airflow_provider_oauthcc.auth.gated_session import GatedSession
from airflow_provider_oauthcc.auth.provider import TokenProvider
from airflow_provider_oauthcc.auth.rate_limit import RequestBudget, make_request_budget
from airflow_provider_oauthcc.auth.redact import scrub
from airflow_provider_oauthcc.auth.request_options import RequestOptions
from airflow_provider_oauthcc.auth.requests_auth import BearerAuth
from airflow_provider_oauthcc.auth.tls import warn_if_unverified
from airflow_provider_oauthcc.auth.token_params import TokenParams
from airflow_provider_oauthcc.hooks.token_cache import hook_token_cache, redis_client

if TYPE_CHECKING:
    from airflow_provider_oauthcc.airflow_compat import ObjectStoragePath
    from airflow_provider_oauthcc.pull.engine import PageFetcher
    from airflow_provider_oauthcc.pull.pages import Pull
    from airflow_provider_oauthcc.pull.pagination import PageRequest, Paginator


class _AirflowStats:
    """Airflow's Stats (statsd / OpenTelemetry, as the deployment configures), imported on use."""

    def incr(self, name: str) -> None:
        from airflow_provider_oauthcc.airflow_compat import Stats

        Stats.incr(name)

    def timing(self, name: str, seconds: float) -> None:
        from airflow_provider_oauthcc.airflow_compat import Stats

        Stats.timing(name, timedelta(seconds=seconds))


def _fernet_key() -> str | None:
    """Airflow's [core] fernet_key, the deployment secret of the shared token caches."""
    try:
        # Core's configuration (same module on 2.11 to 3.3), as the other processes of the
        # deployment read it; not the task SDK's.
        from airflow.configuration import conf

        return conf.get("core", "fernet_key", fallback=None) or None
    except Exception:
        return None


masking.set_masker(mask_secret, amask_secret())
metrics.set_recorder(_AirflowStats())
deployment.set_deployment_secret(_fernet_key())


class OAuthCCHook(HttpHook):
    """Call an OAuth 2.0 protected HTTP API with a client-credentials token.

    Works as :class:`~airflow.providers.http.hooks.http.HttpHook`: ``run()`` sends a request
    relative to the connection's host, ``get_conn()`` returns a ``requests.Session``. Tokens are
    fetched with the connection's client authentication, cached, refreshed before expiry and,
    after a 401 from the API, refreshed once and the request replayed. Unlike ``HttpHook``,
    connection extras are never sent as headers: only the ``headers`` extra is.

    :param method: HTTP method of ``run()`` (default GET).
    :param oauth_conn_id: an ``oauth2_client_credentials`` connection.
    :param scope: this hook's scope instead of the connection's (string or list).
    :param audience: this hook's audience instead of the connection's.
    :param resource: this hook's resource indicator(s) instead of the connection's.
        Each distinct scope / audience / resource is its own token, cached apart.
    """

    conn_name_attr = "oauth_conn_id"
    default_conn_name = "oauth_cc_default"
    conn_type = "oauth2_client_credentials"
    hook_name = "OAuth2 Client Credentials"

    def __init__(
        self,
        method: str = "GET",
        oauth_conn_id: str = default_conn_name,
        *,
        scope: str | Sequence[str] | None = None,
        audience: str | None = None,
        resource: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(method=method, http_conn_id=oauth_conn_id, **kwargs)
        self.oauth_conn_id = oauth_conn_id
        self.token_params = TokenParams.of(scope, audience, resource)
        self._oauth_config: ClientConfig | None = None
        self._token_provider: TokenProvider | None = None
        self._request_budget: RequestBudget | None = None
        self._request_budget_made = False

    # The connection form for Airflow 3.1; 3.2+ reads it from provider info (conn-fields).
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        from airflow_provider_oauthcc.legacy_connection_form import connection_form_widgets

        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        from airflow_provider_oauthcc.legacy_connection_form import ui_field_behaviour

        return ui_field_behaviour()

    def _set_base_url(self, connection: Any) -> None:
        """As HttpHook, but a host without a scheme means https: the token must not travel
        in clear (HttpHook's default is http)."""
        host = connection.host or ""
        schema = (connection.schema or "").lower()
        if host and "://" not in host and schema not in ("http", "https"):
            connection = _with_scheme(connection, "https")
        super()._set_base_url(connection)

    @property
    def oauth_config(self) -> ClientConfig:
        """The connection's OAuth settings, validated (raises OAuthCCConfigError)."""
        if self._oauth_config is None:
            return self.use_connection(self.get_connection(self.oauth_conn_id))
        return self._oauth_config

    def use_connection(self, connection: Any) -> ClientConfig:
        """Read the OAuth settings and the API base URL from ``connection`` (already fetched,
        e.g. asynchronously in the triggerer) instead of looking it up."""
        masking.mask(connection.password)
        self._set_base_url(connection)
        config = ClientConfig.from_connection(
            client_id=connection.login,
            client_secret=connection.password,
            extra=connection.extra,
            api_base_url=self.base_url,
        )
        config = self.token_params.apply(config)
        if config.unknown_keys:
            self.log.warning(
                "Connection %s has extras this hook does not use: %s (not sent anywhere)",
                self.oauth_conn_id,
                ", ".join(config.unknown_keys),
            )
        if config.token_url_key == "token_url":
            self.log.warning(
                "Connection %s: extra token_url is read as auth_url. Airflow shows an extra "
                "whose name contains 'token' as *** (in the UI, the CLI and the logs): name it "
                "auth_url to see the URL",
                self.oauth_conn_id,
            )
        self._oauth_config = config
        return config

    @property
    def token_provider(self) -> TokenProvider:
        if self._token_provider is None:
            config = self.oauth_config
            cache = hook_token_cache(config, self._cache_redis_client)
            self._token_provider = TokenProvider(config, cache=cache)
        return self._token_provider

    def _cache_redis_client(self) -> Any:
        """The client of the ``cache_redis_conn_id`` connection; called when Redis is first
        used."""
        conn_id = self.oauth_config.cache_redis_conn_id
        try:
            connection = self.get_connection(conn_id)
        except Exception as exc:
            raise LookupError(
                f"cannot read the Redis connection '{conn_id}' ({type(exc).__name__})"
            ) from None
        return redis_client(connection)

    def get_token(self) -> str:
        """A valid access token (cached, refreshed before expiry)."""
        return self.token_provider.get_token().access_token

    def egress_policy(self, allowed_origins: Sequence[str] = ()) -> EgressPolicy:
        """Where this connection's requests may go: the API's origin, over TLS (loopback or
        ``allow_insecure_http`` excepted), plus ``allowed_origins`` for a pull's pages (URL
        only)."""
        config = self.oauth_config
        return EgressPolicy(
            self.base_url or None,
            allowed_origins,
            allow_insecure_http=config.allow_insecure_http,
        )

    def request_budget(self) -> RequestBudget | None:
        """The request budget this connection's client shares at its API (rate_limit,
        max_concurrency, and what the API's rate-limit headers say): in the token cache's Redis
        when that is Redis, else in this process. None when it is switched off. Made once per
        hook: ``run()`` asks for a session per call, and the Redis connection is read once."""
        if not self._request_budget_made:
            policy = self.egress_policy()
            self._request_budget = make_request_budget(
                self.oauth_config,
                policy.api_origin,
                policy.api.shown if policy.api else "",
                redis_client=self._cache_redis_client,
            )
            self._request_budget_made = True
        return self._request_budget

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """A session for the API: every request and redirect hop passes the egress gate (the
        API's origin only, over TLS; loopback never through a proxy), with the token added."""
        config = self.oauth_config
        options = RequestOptions.parse(config, extra_options)
        self.merged_extra = options.as_extra()
        gated = GatedSession(self.egress_policy(), self.request_budget())
        gated.auth = BearerAuth(self.token_provider, gated.egress)
        session: requests.Session = gated
        session.verify = options.verify
        warn_if_unverified(session.verify, self.base_url, "API")
        session.proxies = dict(config.proxies or {})
        session.stream = options.stream
        session.trust_env = options.trust_env
        session.max_redirects = options.max_redirects
        if options.cert is not None:
            session.cert = options.cert
        session = self._configure_session_from_mount_adapters(session)
        session.headers.update(config.api_headers)
        if self.default_headers:
            session.headers.update(self.default_headers)
        if headers:
            session.headers.update(headers)
        return session

    def run_and_check(
        self,
        session: requests.Session,
        prepped_request: requests.PreparedRequest,
        extra_options: dict[Any, Any],
    ) -> Any:
        # Older HTTP providers (5.3.0, our floor) hand this the caller's extra_options alone;
        # merged_extra (get_conn, from the same call) adds the connection's options. The
        # caller's win, and all are read as typed values ("false" is False).
        merged = {**getattr(self, "merged_extra", {}), **(extra_options or {})}
        options = RequestOptions.parse(self.oauth_config, merged).as_extra()
        return super().run_and_check(session, prepped_request, options)

    def run(
        self,
        endpoint: str | None = None,
        data: dict[str, Any] | str | None = None,
        headers: dict[str, Any] | None = None,
        extra_options: dict[str, Any] | None = None,
        *,
        retries: int | None = None,
        retry_max_wait: float = 60.0,
        retry_args: dict[str, Any] | None = None,
        **request_kwargs: Any,
    ) -> Any:
        """Send one request, as ``HttpHook.run`` does.

        With ``retries`` (retries after the first attempt) or ``retry_args`` (tenacity
        arguments, as ``run_with_advanced_retry`` takes), the request is retried the way the
        operator retries a page: 429 and 503 after their ``Retry-After`` (at most
        ``retry_max_wait`` s), other 5xx and lost connections with exponential backoff (a
        non-idempotent method only when the server did not act on it); a refused credential is
        never retried. Without either, it is ``HttpHook.run`` exactly.
        """
        if retries is None and retry_args is None:
            return super().run(endpoint, data, headers, extra_options, **request_kwargs)
        from airflow_provider_oauthcc.pull.engine import close_session
        from airflow_provider_oauthcc.pull.fetching import page_fetcher, pull_egress
        from airflow_provider_oauthcc.pull.pagination import PageRequest

        session = self.get_conn(headers, extra_options)
        try:
            request = PageRequest(
                url=self.url_from_endpoint(endpoint),
                data=data,
                headers=dict(headers or {}),
                data_in_query=self.method.upper() in ("GET", "HEAD"),
            )
            fetcher = page_fetcher(
                session,
                method=self.method,
                options=self.merged_extra,
                check_response=self.check_response,
                egress=pull_egress(
                    self.base_url,
                    request.url,
                    allow_insecure_http=self.oauth_config.allow_insecure_http,
                ),
                retries=5 if retries is None else retries,
                retry_max_wait=retry_max_wait,
                retry_args=retry_args,
                request_kwargs=request_kwargs,
                log=self.log,
            )
            return fetcher.fetch(request)
        finally:
            close_session(session)  # the body is read: nothing needs the session any more

    def run_with_advanced_retry(
        self, _retry_args: dict[Any, Any], *args: Any, **kwargs: Any
    ) -> Any:
        """``HttpHook.run_with_advanced_retry``: ``run`` retried as ``_retry_args`` (tenacity
        arguments) say, except that after a 429 or 503 with a ``Retry-After`` the wait is at
        least that long (at most 60 s), and a refused credential is never retried."""
        from airflow_provider_oauthcc.pull.retry import user_retrying

        self._retry_obj = user_retrying(_retry_args)
        return self._retry_obj(self.run, *args, **kwargs)

    def paginate(
        self,
        endpoint: str | None = None,
        *,
        paginator: Paginator | None = None,
        records_path: str | None = None,
        method: str | None = None,
        data: dict[str, Any] | str | None = None,
        headers: dict[str, str] | None = None,
        extra_options: dict[str, Any] | None = None,
        request_kwargs: dict[str, Any] | None = None,
        max_pages: int | None = None,
        retries: int = 5,
        retry_max_wait: float = 60.0,
        retry_args: dict[str, Any] | None = None,
        allowed_origins: Sequence[str] = (),
        response_filter: Callable[[requests.Response], list[Any]] | None = None,
        progress_interval: float = 5.0,
    ) -> Pull:
        """The pages of ``endpoint``, fetched one at a time through one session as the
        returned :class:`~airflow_provider_oauthcc.pull.pages.Pull` is iterated.

        ``for page in hook.paginate(...)`` yields pages (``.records``, ``.body``,
        ``.response``, ``.number``); ``hook.paginate(...).records()`` yields the records. The
        rules are the operator's: each request retried on its own (``retries``,
        ``retry_max_wait``, ``retry_args``), next pages only on the API's origin unless in
        ``allowed_origins`` (which get the URL only), at most ``max_pages`` pages (then
        ``pull.truncated``), a progress line every ``progress_interval`` s and a summary. The
        session is closed when the iteration ends or is left; iterate the pull, or use it as a
        context manager.

        :param paginator: how to get the next page (``LinkHeaderPaginator()``, ...); None: one
            page.
        :param records_path: where a page's records are in its JSON body (dotted); None: the
            body is the list. ``response_filter(response)`` returns them instead, if given.
        :param method: HTTP method (default: the hook's). ``data`` is the query for GET, the
            body otherwise, as in ``run``; ``headers`` and ``request_kwargs`` go with every
            request to the API, ``extra_options`` as in ``run``.
        """
        from airflow_provider_oauthcc.pull.engine import PagePull, close_session
        from airflow_provider_oauthcc.pull.pages import Pull
        from airflow_provider_oauthcc.pull.records import records_in

        if paginator is not None and not isinstance(paginator, _paginator_class()):
            raise TypeError(
                "paginator must be a paginator such as LinkHeaderPaginator() or "
                f"CursorPaginator(...), got {type(paginator).__name__}"
            )
        method = (method or self.method).upper()
        session = self.get_conn(extra_options=extra_options)
        try:
            fetcher, first = self._pull_fetcher(
                session,
                endpoint,
                method=method,
                data=data,
                headers=headers,
                request_kwargs=request_kwargs,
                retries=retries,
                retry_max_wait=retry_max_wait,
                retry_args=retry_args,
                allowed_origins=allowed_origins,
            )
            pages = PagePull(
                fetcher,
                first,
                paginator,
                records_in(records_path, response_filter),
                max_pages=max_pages,
            )
            pull = Pull(pages, log=self.log, progress_interval=progress_interval)
        except BaseException:
            close_session(session)
            raise
        self.log.info("Pulling %s %s from %s", method, _path_of(endpoint), shown(first.url))
        return pull

    def pull_to(
        self,
        output_path: ObjectStoragePath | str,
        endpoint: str | None = None,
        *,
        paginator: Paginator | None = None,
        records_path: str | None = None,
        method: str | None = None,
        data: dict[str, Any] | str | None = None,
        headers: dict[str, str] | None = None,
        extra_options: dict[str, Any] | None = None,
        request_kwargs: dict[str, Any] | None = None,
        max_pages: int | None = None,
        retries: int = 5,
        retry_max_wait: float = 60.0,
        retry_args: dict[str, Any] | None = None,
        allowed_origins: Sequence[str] = (),
        response_filter: Callable[[requests.Response], list[Any]] | None = None,
        response_format: str = "json",
        decompress: bool | None = None,
        owner: str | None = None,
        progress_interval: float = 5.0,
    ) -> dict[str, Any]:
        """Pull ``endpoint`` (see ``paginate``) into ``output_path`` (an
        ``ObjectStoragePath`` or URI: ``file:///...``, ``s3://conn_id@bucket/...``) and return
        the operator's summary: ``{"path", "records", "pages", "bytes", "duration_s",
        "truncated", "retries"}``.

        With ``response_format="json"`` the records of every page are written as JSON Lines.
        Other formats stream one answer's body as it arrives (``decompress`` a gzip answer or
        keep it compressed). Either way the file appears at ``output_path`` only when complete;
        a failure leaves nothing there. ``owner`` names the writer across retries of one task
        (its stale temporary files are removed).
        """
        from airflow_provider_oauthcc.pull.output import JsonLinesWriter, as_storage_path
        from airflow_provider_oauthcc.pull.records import write_json_lines

        target = as_storage_path(output_path)
        if response_format != "json":
            paging = (paginator, records_path, response_filter, max_pages)
            if any(option is not None for option in paging):
                raise ValueError(
                    f"response_format={response_format!r} streams one answer as it is: "
                    "paginator, records_path, response_filter and max_pages apply to JSON "
                    "pages only"
                )
            return self._stream_to(
                target,
                endpoint,
                method=(method or self.method).upper(),
                data=data,
                headers=headers,
                extra_options=extra_options,
                request_kwargs=request_kwargs,
                retries=retries,
                retry_max_wait=retry_max_wait,
                retry_args=retry_args,
                allowed_origins=allowed_origins,
                response_format=response_format,
                decompress=decompress,
                owner=owner,
                progress_interval=progress_interval,
            )
        if decompress is not None:
            raise ValueError("decompress applies to a streamed answer (response_format != 'json')")
        writer = JsonLinesWriter(target, owner=owner)
        pull = self.paginate(
            endpoint,
            paginator=paginator,
            records_path=records_path,
            method=method,
            data=data,
            headers=headers,
            extra_options=extra_options,
            request_kwargs=request_kwargs,
            max_pages=max_pages,
            retries=retries,
            retry_max_wait=retry_max_wait,
            retry_args=retry_args,
            allowed_origins=allowed_origins,
            response_filter=response_filter,
            progress_interval=progress_interval,
        )
        with pull:
            return write_json_lines(pull, writer)

    def _stream_to(
        self,
        target: ObjectStoragePath,
        endpoint: str | None,
        *,
        method: str,
        extra_options: dict[str, Any] | None,
        response_format: str,
        decompress: bool | None,
        owner: str | None,
        progress_interval: float,
        **fetch: Any,
    ) -> dict[str, Any]:
        """One answer streamed to ``target`` as it arrives (``pull.stream``)."""
        from airflow_provider_oauthcc.pull.engine import close_session
        from airflow_provider_oauthcc.pull.stream import (  # type: ignore[import-not-found,unused-ignore]
            stream_to_storage,
        )

        session = self.get_conn(extra_options=extra_options)
        try:
            fetcher, first = self._pull_fetcher(session, endpoint, method=method, **fetch)
            summary: dict[str, Any] = stream_to_storage(
                fetcher,
                first,
                target,
                response_format=response_format,
                decompress=decompress,
                owner=owner,
                log=self.log,
                progress_interval=progress_interval,
            )
            return summary
        finally:
            close_session(session)

    def _pull_fetcher(
        self,
        session: requests.Session,
        endpoint: str | None,
        *,
        method: str,
        data: dict[str, Any] | str | None,
        headers: dict[str, str] | None,
        request_kwargs: dict[str, Any] | None,
        retries: int,
        retry_max_wait: float,
        retry_args: dict[str, Any] | None,
        allowed_origins: Sequence[str],
    ) -> tuple[PageFetcher, PageRequest]:
        """The fetcher of a pull through ``session`` and its first request (the operator's)."""
        from airflow_provider_oauthcc.pull.fetching import page_fetcher, pull_egress
        from airflow_provider_oauthcc.pull.pagination import PageRequest

        first = PageRequest(
            url=self.url_from_endpoint(endpoint),
            data=data or None,
            headers=dict(headers or {}),
            data_in_query=method in ("GET", "HEAD"),
        )
        fetcher = page_fetcher(
            session,
            method=method,
            options=self.merged_extra,
            check_response=self.check_response,
            egress=pull_egress(
                self.base_url,
                first.url,
                allowed_origins,
                allow_insecure_http=self.oauth_config.allow_insecure_http,
            ),
            retries=retries,
            retry_max_wait=retry_max_wait,
            retry_args=retry_args,
            request_kwargs=request_kwargs,
            log=self.log,
        )
        return fetcher, first

    def check_response(self, response: requests.Response) -> None:
        if response.ok:
            return
        self.log.error("HTTP error: %s", response.reason)
        # Scrubbed before it is cut: a cut could leave a piece of a secret the masker misses.
        self.log.error("%s", scrub(response.text, self._secret_forms(), limit=1000))
        raise api_error(response)

    def test_connection(self) -> tuple[bool, str]:
        """Fetch a token now (no cache) and say what came back, or precisely why not."""
        refused = self._refused_test()
        if refused:
            return False, refused
        try:
            client = TokenClient(self.oauth_config, max_attempts=2, backoff=0.2)
            try:
                token = client.fetch_token()
            finally:
                client.close()
        except OAuthCCError as exc:
            return False, str(exc)
        except Exception as exc:
            return False, f"{type(exc).__name__}: {scrub(str(exc), self._secret_forms())}"
        scope = f"scope '{token.scope}'" if token.scope else "no scope returned"
        return True, (
            f"Token obtained from {client.token_url}: {token.token_type}, "
            f"expires in {token.expires_in()} s, {scope}"
        )

    def _refused_test(self) -> str | None:
        """Why Airflow's test of an edited form must not run (connection_test_guard)."""
        from airflow_provider_oauthcc.hooks import connection_test_guard as guard

        try:
            form = guard.form_under_test(self.oauth_conn_id)
        except guard.UncheckableTest as exc:
            return (
                "Test refused: this Airflow version's connection test cannot be checked for "
                f"reused stored secrets ({exc}); save the connection and test it from the list "
                "or with `airflow connections test`"
            )
        if form is None:
            return None
        tested = self.get_connection(self.oauth_conn_id)
        return guard.refusal(
            form, tested.password, tested.extra_dejson, guard.stored_extra_reader(form)
        )

    def _secret_forms(self) -> tuple[str, ...]:
        """The connection's secrets in every echoed form, and its recent tokens."""
        if self._token_provider is not None:
            return self._token_provider.secret_forms()
        config = self._oauth_config
        return config.secret_forms if config is not None else ()


def api_error(response: requests.Response) -> ApiError:
    """An ApiError for a failed API response; the WWW-Authenticate error for a 401."""
    status = response.status_code
    message = f"{status}:{response.reason}"
    if status == 401:
        challenge = _parse_challenge(response.headers.get("WWW-Authenticate", ""))
        error, description = challenge.get("error"), challenge.get("error_description")
        detail = f" ({error}: {description})" if description else f" ({error})" if error else ""
        not_replayed = getattr(response, "oauthcc_not_replayed", None)
        why = (
            f"the API rejected the token; the request was not replayed with a fresh one: "
            f"{not_replayed}"
            if not_replayed
            else "the API rejected the token, also after a refresh"
        )
        return ApiUnauthorizedError(
            f"{message}: {why}{detail}",
            status=status,
            error=error,
            error_description=description,
        )
    from airflow_provider_oauthcc.pull.retry import (
        NOT_PROCESSED_STATUSES,
        RetryableStatusError,
        retry_after_seconds,
    )

    if status in NOT_PROCESSED_STATUSES:
        # Still an ApiError; a tenacity wait (run_with_advanced_retry) reads its Retry-After.
        return RetryableStatusError(response, retry_after_seconds(response))
    return ApiError(message, status=status)


def _paginator_class() -> type[Paginator]:
    from airflow_provider_oauthcc.pull.pagination import Paginator

    return Paginator


def _path_of(endpoint: str | None) -> str:
    """The endpoint's path for a log line: no query (it may hold a key), no origin."""
    path = (endpoint or "/").split("?", 1)[0]
    return path if "://" not in path else "/" + path.split("://", 1)[1].partition("/")[2]


def _parse_challenge(header: str) -> dict[str, str]:
    """Parameters of a ``Bearer`` WWW-Authenticate challenge (RFC 6750 §3)."""
    from requests.utils import parse_dict_header

    scheme, _, params = header.partition(" ")
    if scheme.lower() != "bearer":
        return {}
    parsed = parse_dict_header(params)  # type: ignore[no-untyped-call]
    return {k: v for k, v in parsed.items() if isinstance(v, str)}


def _with_scheme(connection: Any, scheme: str) -> Any:
    """A view of ``connection`` whose schema is ``scheme`` (the connection is not changed)."""

    class _Schemed:
        def __getattr__(self, name: str) -> Any:
            return getattr(connection, name)

        schema = scheme

    return _Schemed()
