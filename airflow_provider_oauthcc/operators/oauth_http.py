"""OAuthHttpOperator: HttpOperator for OAuth 2.0 client-credentials APIs, with pagination and
streaming output to object storage.

Importing this module costs what importing ``HttpOperator`` costs: the OAuth core, the retry
and output machinery are imported when the task runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.http.operators.http import HttpOperator

from airflow_provider_oauthcc.airflow_compat import conf
from airflow_provider_oauthcc.pull.pagination import (
    CursorPaginator,
    FunctionPaginator,
    Page,
    PageRequest,
    Paginator,
)

if TYPE_CHECKING:
    import requests
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_oauthcc.airflow_compat import Context, ObjectStoragePath
    from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
    from airflow_provider_oauthcc.pull.engine import PageFetcher, PagePull
    from airflow_provider_oauthcc.pull.output import JsonLinesWriter
    from airflow_provider_oauthcc.pull.pages import Pull


# Beyond the trigger's own worst case: its token fetch and the triggerer picking it up.
_DEFERRAL_MARGIN = 300.0


class OAuthHttpOperator(HttpOperator):
    """Call an OAuth 2.0 client-credentials protected HTTP API, page by page if asked.

    Accepts every :class:`~airflow.providers.http.operators.http.HttpOperator` argument, with
    ``oauth_conn_id`` (an ``oauth2_client_credentials`` connection) in place of
    ``http_conn_id`` (which is accepted as another name for it). Differences: the default
    ``method`` is **GET**; requests carry the connection's token (``auth_type`` is not used).

    Without ``paginate`` and ``output_path`` it returns what HttpOperator returns (the response
    text, or ``response_filter``'s result; a list of them with ``pagination_function``). All
    pages go through one session, which is closed at the end.

    With ``paginate`` the records of every page (found at ``records_path``) are returned as
    one list. With ``output_path`` they are streamed to object storage as JSON Lines, page by
    page, and the return value is a summary: ``{"path", "records", "pages", "bytes",
    "duration_s", "truncated", "retries"}``. The file appears at ``output_path`` only when the
    pull completed.
    Asset ``outlets`` receive the summary as their event's extra.

    Each request is retried on its own: 429 and 503 after their Retry-After (at most
    ``retry_max_wait`` s), other 5xx and lost connections with exponential backoff; a 401
    refreshes the token and replays once. Timeouts come from the connection (default 30 s)
    or ``extra_options={"timeout": ...}``.

    With ``deferrable=True`` the first request is sent from the triggerer (an
    :class:`~airflow_provider_oauthcc.triggers.oauth_http.OAuthHttpTrigger`, which fetches its
    own token and retries as above) and the task holds no worker slot while it waits: for a
    slow report, a long poll. The task then resumes with that answer and goes on exactly as
    without deferral: same checks, filters and XCom; the following pages, if any, through one
    session from the worker. The triggerer sends ``json`` but no other ``request_kwargs``;
    ``retry_args`` applies to the pages fetched in the worker. A streamed answer
    (``response_format`` other than ``"json"``) is always downloaded by the worker: the
    triggerer never holds it.

    :param oauth_conn_id: the connection to call the API with. (templated) ``http_conn_id``
        is accepted as another name for it, so that an ``HttpOperator`` task only changes its
        class name.
    :param endpoint: path relative to the connection's host. (templated)
    :param scope: this task's token scope instead of the connection's (string or list), e.g.
        ``"https://graph.microsoft.com/.default"``; likewise ``audience`` and ``resource``.
        Each distinct set is its own token and cache entry. Sent from the triggerer too.
    :param method: HTTP method, default GET.
    :param data: query parameters for GET, the body otherwise. (templated)
    :param headers: extra request headers. (templated)
    :param paginate: a :mod:`~airflow_provider_oauthcc.pull.pagination` paginator, e.g.
        ``LinkHeaderPaginator()`` or ``CursorPaginator("next_cursor", "cursor")``.
    :param records_path: where the records are in each page's JSON body (dotted, e.g.
        ``"data"`` or ``"result.items"``); None means the body is the list. With paginate or
        output_path, ``response_filter`` (if given) is called per page instead and returns the
        page's records; ``response_check`` is called per page.
    :param max_pages: stop after this many pages (a safety bound; the summary then says
        ``truncated``). Applies to ``pagination_function`` too.
    :param output_path: an ``ObjectStoragePath`` or URI (``file:///...``,
        ``s3://conn_id@bucket/..``) to write the records to as JSON Lines. (templated when a
        string) ``output`` is its former name: still accepted, with a deprecation warning.
    :param fail_on_empty: with ``paginate`` or ``output_path``, fail the task when the pull
        returns no record at all (default False). For scheduled pulls, where zero records
        usually means an empty or misplaced time window rather than a quiet day.
    :param page_retries: retries of one request after its first attempt.
    :param retry_max_wait: upper bound in seconds of any wait between retries.
    :param retry_args: (HttpOperator's) tenacity arguments used per request instead of
        ``page_retries``; merged with the provider's rules: a 429/503 still waits its
        ``Retry-After`` (at most ``retry_max_wait``), a refused credential is never retried.
    :param allowed_origins: other origins (``scheme://host[:port]``) next pages may come
        from, e.g. a CDN serving export parts. By default a next page on another origin than
        the connection's host stops the pull before anything is sent there. An allowed origin
        gets the page URL only: no token, no connection or task headers, no request body, and
        its redirects are not followed.
    :param progress_interval: seconds between the progress lines in the task log (page 1,
        then at most one line per interval, then a summary); 0 logs every page.
    :param response_format: ``"json"`` (default: pages read whole, records at
        ``records_path``), or one large answer streamed to ``output_path`` as it arrives, in
        bounded memory: ``"ndjson"`` / ``"jsonl"`` (records counted as lines pass), ``"csv"``
        (rows counted without the header) or ``"raw"`` (any content, bytes passed through;
        ``records`` is None). Needs ``output_path``; not with ``paginate``. See
        ``docs/streaming.md``.
    :param decompress: for a streamed answer: None (default) decodes a ``Content-Encoding``
        as HTTP does and keeps a gzip file as it is; True gunzips a gzip file too; False keeps
        the bytes as they came over the wire.
    :param start_cursor: an incremental pull over a cursor (``paginate`` a
        ``CursorPaginator``): ``"asset_events"`` starts at the cursor the triggering asset
        events announce (an ``OAuthHttpEventTrigger`` watcher's), ``"high_water_mark"`` where
        this task's last pull stopped (its outlet asset, listed in ``inlets`` too). The cursor
        the last page gave is returned as ``high_water_mark`` in the summary and put on the
        outlet asset events. See :mod:`airflow_provider_oauthcc.pull.incremental`.
    :param deferrable: send the first request from the triggerer (see above). Defaults to
        ``[operators] default_deferrable``. The deferral times out after ``execution_timeout``
        or, without one, after the trigger's worst case (every attempt timing out, every wait)
        plus 5 minutes: a stuck trigger fails the task rather than parking it.
    """

    conn_id_field = "oauth_conn_id"
    template_fields: Sequence[str] = ("endpoint", "data", "headers", "oauth_conn_id", "output_path")
    template_fields_renderers = {"headers": "json", "data": "py"}
    ui_color = "#e8c07d"

    def __init__(
        self,
        *,
        oauth_conn_id: str | None = None,
        method: str = "GET",
        paginate: Paginator | None = None,
        records_path: str | None = None,
        max_pages: int | None = None,
        output_path: ObjectStoragePath | str | None = None,
        fail_on_empty: bool = False,
        page_retries: int = 5,
        retry_max_wait: float = 60.0,
        allowed_origins: Sequence[str] | None = None,
        progress_interval: float = 5.0,
        response_format: str = "json",
        decompress: bool | None = None,
        start_cursor: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        scope: str | Sequence[str] | None = None,
        audience: str | None = None,
        resource: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        from airflow_provider_oauthcc.argument_aliases import (
            conn_id_from_alias,
            output_path_from_alias,
        )
        from airflow_provider_oauthcc.auth.egress import parse_allowed_origins
        from airflow_provider_oauthcc.auth.token_params import TokenParams

        oauth_conn_id = conn_id_from_alias(oauth_conn_id, kwargs.pop("http_conn_id", None))
        output_path = output_path_from_alias(output_path, kwargs)
        super().__init__(method=method, http_conn_id=oauth_conn_id, deferrable=deferrable, **kwargs)
        if paginate is not None and not isinstance(paginate, Paginator):
            raise TypeError(
                "paginate must be a paginator such as LinkHeaderPaginator() or "
                f"CursorPaginator(...), got {type(paginate).__name__}"
            )
        if paginate is not None and self.pagination_function is not None:
            raise ValueError("give either paginate or pagination_function, not both")
        if max_pages is not None and max_pages < 1:
            raise ValueError("max_pages must be >= 1")
        if page_retries < 0 or retry_max_wait < 0:
            raise ValueError("page_retries and retry_max_wait must be >= 0")
        if progress_interval < 0:
            raise ValueError("progress_interval must be >= 0")
        if fail_on_empty and paginate is None and output_path is None:
            raise ValueError("fail_on_empty counts records: give paginate or output_path too")
        self._streamed = self._check_streamed(response_format, decompress, output_path, paginate)
        self.response_format = response_format
        self.decompress = decompress
        if start_cursor is not None:
            from airflow_provider_oauthcc.pull.incremental import START_CURSOR_SOURCES
            from airflow_provider_oauthcc.pull.pagination import CursorPaginator

            if start_cursor not in START_CURSOR_SOURCES:
                raise ValueError(
                    f"start_cursor must be one of {', '.join(START_CURSOR_SOURCES)}, "
                    f"got {start_cursor!r}"
                )
            if not isinstance(paginate, CursorPaginator):
                raise ValueError(
                    "start_cursor needs paginate=CursorPaginator(...): it says which request "
                    "parameter carries the cursor and where the next one is"
                )
        self.oauth_conn_id = oauth_conn_id
        self.paginate = paginate
        self.records_path = records_path
        self.max_pages = max_pages
        self.output_path: ObjectStoragePath | str | None = output_path
        self.fail_on_empty = fail_on_empty
        self.page_retries = page_retries
        self.retry_max_wait = retry_max_wait
        self.allowed_origins = list(parse_allowed_origins(allowed_origins))
        self.progress_interval = progress_interval
        self.token_params = TokenParams.of(scope, audience, resource)
        self.start_cursor = start_cursor
        self._cursor_start: str | None = None
        self._high_water_mark: str | None = None
        # What a run has open, for on_kill (another thread, or a signal handler) to stop.
        self._running_fetcher: PageFetcher | None = None
        self._running_writer: JsonLinesWriter | None = None
        self._api_url: str | None = None

    def _check_streamed(
        self,
        response_format: str,
        decompress: bool | None,
        output_path: object,
        paginate: Paginator | None,
    ) -> str | None:
        """The streamed format asked for (None: JSON pages); a clear error for what does not
        go with it."""
        streamed = None
        if response_format != "json":
            from airflow_provider_oauthcc.pull.stream import streamed_format

            streamed = streamed_format(response_format)
        if streamed is None:
            if decompress is not None:
                raise ValueError(
                    "decompress applies to streamed answers: give response_format='ndjson', "
                    "'jsonl', 'csv' or 'raw' too"
                )
            return None
        what = f"response_format={response_format!r} streams one answer to storage"
        if output_path is None:
            raise ValueError(f"{what}: give output_path too")
        if paginate is not None or self.pagination_function is not None:
            raise ValueError(f"{what}: it does not go with paginate or pagination_function")
        if self.response_filter is not None or self.response_check is not None:
            raise ValueError(f"{what}: response_filter and response_check do not apply")
        return streamed

    @property
    def hook(self) -> OAuthCCHook:
        """A new OAuthCCHook for this task's connection; ``execute`` makes one per run."""
        from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook

        return OAuthCCHook(
            method=self.method,
            oauth_conn_id=self.oauth_conn_id,
            **self.token_params.serialize(),
            tcp_keep_alive=self.tcp_keep_alive,
            tcp_keep_alive_idle=self.tcp_keep_alive_idle,
            tcp_keep_alive_count=self.tcp_keep_alive_count,
            tcp_keep_alive_interval=self.tcp_keep_alive_interval,
        )

    def execute(self, context: Context) -> Any:
        self._find_cursor_start(context)
        if self.deferrable and self._streamed is not None:
            self.log.info("A streamed answer is downloaded by the worker, not the triggerer")
        elif self.deferrable:
            self._defer_first_request()
        return self._run(context)

    def execute_complete(
        self,
        context: Context,
        event: dict[Any, Any],
        paginated_responses: list[requests.Response] | None = None,
    ) -> Any:
        """Resume with the answer the triggerer got to the first request (or its error)."""
        from airflow_provider_oauthcc.pull.deferred import first_page_answer

        self._find_cursor_start(context)
        return self._run(context, first_page_answer(event, self.log))

    def _find_cursor_start(self, context: Context) -> None:
        """Where an incremental pull starts (start_cursor), read before the first request."""
        if self.start_cursor is None:
            return
        from airflow_provider_oauthcc.airflow_compat import Asset
        from airflow_provider_oauthcc.pull.incremental import start_cursor

        assets = [outlet for outlet in self.outlets if isinstance(outlet, Asset)]
        self._cursor_start = start_cursor(context, self.start_cursor, assets)
        self._high_water_mark = self._cursor_start
        self.log.info(
            "Incremental pull from cursor %s (%s)",
            "the beginning" if self._cursor_start is None else repr(self._cursor_start),
            self.start_cursor,
        )

    def _defer_first_request(self) -> None:
        from airflow_provider_oauthcc.pull.deferred import first_page_trigger
        from airflow_provider_oauthcc.pull.retry import IDEMPOTENT_METHODS

        hook = self.hook
        hook.oauth_config  # noqa: B018  (a misconfigured connection fails here, not deferred)
        first = self._first_request(hook)
        if self.paginate is not None:
            first = self.paginate.first_request(first)
        if self.method.upper() not in IDEMPOTENT_METHODS:
            self.log.warning(
                "%s in deferrable mode: if the triggerer restarts while the request is in "
                "flight, it is sent again",
                self.method,
            )
        self.log.info("Deferring: the triggerer sends %s %s", self.method, self.endpoint or "/")
        self.defer(
            trigger=first_page_trigger(
                self.oauth_conn_id,
                self.method,
                first,
                extra_options=self.extra_options,
                request_kwargs=self.request_kwargs,
                retries=self.page_retries,
                retry_max_wait=self.retry_max_wait,
                oauth_params=self.token_params.serialize(),
            ),
            method_name="execute_complete",
            timeout=self._deferral_timeout(hook),
        )

    def _deferral_timeout(self, hook: OAuthCCHook) -> timedelta:
        if self.execution_timeout is not None:
            return self.execution_timeout
        timeout = self.extra_options.get("timeout", hook.oauth_config.timeout)
        per_attempt = sum(timeout) if isinstance(timeout, tuple | list) else float(timeout)
        worst = (self.page_retries + 1) * per_attempt + self.page_retries * self.retry_max_wait
        return timedelta(seconds=worst + _DEFERRAL_MARGIN)

    def _request_line(self) -> str:
        """``GET /path?query`` as the first request is sent: an empty time window shows here."""
        from urllib.parse import urlencode

        line = f"{self.method} {self.endpoint or '/'}"
        if self.data and self.method.upper() in ("GET", "HEAD") and isinstance(self.data, dict):
            shown = {
                key: "***" if _looks_secret(str(key)) else value for key, value in self.data.items()
            }
            line += "?" + urlencode(shown, doseq=True, safe=":*")  # readable times, masks
        return line

    def _warn_if_window_is_empty(self, context: Context) -> None:
        """A templated window whose start equals its end asks the API for nothing.

        Airflow 3's default timetable for a cron or ``@daily`` schedule gives every run
        ``data_interval_start == data_interval_end``; Airflow 2's gave the previous day.
        """
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or start != end:
            return
        rendered = f"{self.endpoint} {self.data}"
        if str(start) in rendered or start.isoformat() in rendered:
            self.log.warning(
                "This run's data interval is empty (data_interval_start == data_interval_end "
                "== %s), and the request uses it: the API is asked for an empty time window. "
                "On Airflow 3 a cron or @daily schedule gives every run such an interval; "
                "schedule the DAG with CronDataIntervalTimetable(...) to pull the previous "
                "period, as on Airflow 2",
                start,
            )

    def _fail_if_empty(self, records: int) -> None:
        if self.fail_on_empty and records == 0:
            from airflow_provider_oauthcc.auth.errors import EmptyPullError

            raise EmptyPullError(
                f"{self._request_line()} returned no record and fail_on_empty is set: check "
                "the request's time window (data_interval_start/end) and records_path"
            )

    def _first_request(self, hook: OAuthCCHook) -> PageRequest:
        data = self.data or None
        if self._cursor_start is not None and isinstance(self.paginate, CursorPaginator):
            if isinstance(data, str):
                raise ValueError("start_cursor needs data as a dict of query parameters")
            data = {**(data or {}), self.paginate.cursor_param: self._cursor_start}
        return PageRequest(
            url=hook.url_from_endpoint(self.endpoint),
            data=data,
            headers=dict(self.headers or {}),
            data_in_query=self.method.upper() in ("GET", "HEAD"),
        )

    def _run(self, context: Context, first_answer: requests.Response | None = None) -> Any:
        """The call or pull; with ``first_answer``, page 1 is that answer (from the triggerer)."""
        hook = self.hook
        session = hook.get_conn(extra_options=self.extra_options)
        _bound_budget_waits(session, self.execution_timeout, context)
        try:
            fetcher = self._running_fetcher = self._fetcher(hook, session, first_answer)
            first = self._first_request(hook)
            self._api_url = first.url
            self._warn_if_window_is_empty(context)
            if self._streamed is not None:
                return self._stream_to_output(context, fetcher, first)
            if self.output_path is not None:
                return self._pull_to_output(context, hook, fetcher, first)
            if self.paginate is not None:
                return self._pull_records(context, hook, fetcher, first)
            return self._call(context, hook, fetcher, first)
        finally:
            from airflow_provider_oauthcc.pull.engine import close_session

            self._running_fetcher = None
            close_session(session)

    def on_kill(self) -> None:
        """The task is being stopped: discard the partial output (aborting a multipart
        upload), send no further page and close the session's sockets."""
        writer, fetcher = self._running_writer, self._running_fetcher
        if writer is not None:
            writer.abort()
            self.log.info("Task stopped: discarded the partial output for %s", writer.target)
        if fetcher is not None:
            fetcher.close()
            self.log.info("Task stopped: closed the API session")

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """OpenLineage: the API endpoint read (scheme://host:port + path, no query), and the
        published output path when there is one (never the temporary file)."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        from airflow_provider_oauthcc.pull.lineage import api_dataset, storage_dataset

        url = self._api_url or self.hook.url_from_endpoint(self.endpoint)
        outputs = []
        if self.output_path is not None:
            from airflow_provider_oauthcc.pull.output import as_storage_path

            outputs.append(storage_dataset(as_storage_path(self.output_path)))
        return OperatorLineage(inputs=[api_dataset(url)], outputs=outputs)

    def execute_sync(self, context: Context) -> Any:
        return self._run(context)

    def _call(
        self, context: Context, hook: OAuthCCHook, fetcher: PageFetcher, first: PageRequest
    ) -> Any:
        """As HttpOperator: one response, or every response with pagination_function."""
        self.log.info("Calling %s", self._request_line())
        if self.pagination_function is None:
            return self.process_response(context=context, response=fetcher.fetch(first))
        pull = self._pages(hook, fetcher, first, _no_records)
        responses = [page.response for page in pull]
        if pull.truncated:
            self.log.warning(
                "Stopped at max_pages=%d although the API has more pages", len(responses)
            )
        return self.process_response(context=context, response=responses)

    def _pull_records(
        self, context: Context, hook: OAuthCCHook, fetcher: PageFetcher, first: PageRequest
    ) -> list[Any]:
        self.log.info("Pulling %s into XCom", self._request_line())
        pull = self._pull(hook, fetcher, first, context, where="into XCom")
        records = list(pull.records())
        self._fail_if_empty(len(records))
        if self.start_cursor is not None:
            self._annotate_asset_events(
                context, {"records": len(records), **self._incremental_summary()}
            )
        return records

    def _pull_to_output(
        self, context: Context, hook: OAuthCCHook, fetcher: PageFetcher, first: PageRequest
    ) -> dict[str, Any]:
        from airflow_provider_oauthcc.pull.output import JsonLinesWriter, as_storage_path
        from airflow_provider_oauthcc.pull.records import write_json_lines

        target = as_storage_path(self.output_path)  # type: ignore[arg-type]
        self.log.info("Pulling %s to %s", self._request_line(), target)
        self._running_writer = writer = JsonLinesWriter(target, owner=_attempt_owner(context))
        try:
            summary = write_json_lines(self._pull(hook, fetcher, first, context), writer)
        finally:
            self._running_writer = None
        summary.update(self._incremental_summary())
        self._fail_if_empty(writer.records)
        self._annotate_asset_events(context, summary)
        return summary

    def _pull(
        self,
        hook: OAuthCCHook,
        fetcher: PageFetcher,
        first: PageRequest,
        context: Context,
        where: str = "",
    ) -> Pull:
        from airflow_provider_oauthcc.pull.pages import Pull

        pages = self._pages(hook, fetcher, first, self._records_of(context))
        return Pull(pages, log=self.log, progress_interval=self.progress_interval, where=where)

    def _stream_to_output(
        self, context: Context, fetcher: PageFetcher, first: PageRequest
    ) -> dict[str, Any]:
        from airflow_provider_oauthcc.pull.output import as_storage_path
        from airflow_provider_oauthcc.pull.stream import stream_to_storage

        target = as_storage_path(self.output_path)  # type: ignore[arg-type]
        self.log.info("Downloading %s to %s", self._request_line(), target)
        summary = stream_to_storage(
            fetcher,
            first,
            target,
            response_format=self.response_format,
            decompress=self.decompress,
            owner=_attempt_owner(context),
            log=self.log,
            progress_interval=self.progress_interval,
        )
        if summary["records"] is not None:
            self._fail_if_empty(summary["records"])
        elif summary["bytes"] == 0:
            self._fail_if_empty(0)
        self._annotate_asset_events(context, summary)
        return summary

    def _pages(
        self,
        hook: OAuthCCHook,
        fetcher: PageFetcher,
        first: PageRequest,
        records_of: Callable[[Page], list[Any]],
    ) -> PagePull:
        from airflow_provider_oauthcc.pull.engine import PagePull

        paginator = self.paginate
        if paginator is None and self.pagination_function is not None:
            paginator = FunctionPaginator(
                self.pagination_function, self._next_page_request(hook, first)
            )
        return PagePull(fetcher, first, paginator, records_of, max_pages=self.max_pages)

    def _fetcher(
        self,
        hook: OAuthCCHook,
        session: requests.Session,
        first_answer: requests.Response | None = None,
    ) -> PageFetcher:
        from airflow_provider_oauthcc.pull.fetching import page_fetcher, pull_egress

        return page_fetcher(
            session,
            method=self.method,
            options=hook.merged_extra,
            check_response=hook.check_response,
            egress=pull_egress(
                hook.base_url,
                hook.url_from_endpoint(self.endpoint),
                self.allowed_origins,
                allow_insecure_http=hook.oauth_config.allow_insecure_http,
            ),
            retries=self.page_retries,
            retry_max_wait=self.retry_max_wait,
            retry_args=self.retry_args,
            request_kwargs=self.request_kwargs,
            log=self.log,
            first_answer=first_answer,
        )

    def _next_page_request(
        self, hook: OAuthCCHook, first: PageRequest
    ) -> Callable[[dict[str, Any]], PageRequest]:
        """Turns pagination_function's result into a request, merged as HttpOperator does."""

        def to_request(next_page_params: dict[str, Any]) -> PageRequest:
            merged = self._merge_next_page_parameters(next_page_params)
            return PageRequest(
                url=hook.url_from_endpoint(merged["endpoint"]),
                data=merged["data"] or None,
                headers=merged["headers"] or {},
                options=merged["extra_options"] or {},
                data_in_query=first.data_in_query,
            )

        return to_request

    def _records_of(self, context: Context) -> Callable[[Page], list[Any]]:
        from airflow_provider_oauthcc.airflow_compat import AirflowException, determine_kwargs
        from airflow_provider_oauthcc.pull.records import records_in

        response_filter = self.response_filter

        def filtered(response: requests.Response) -> Any:
            assert response_filter is not None
            return response_filter(
                response, **determine_kwargs(response_filter, [response], context)
            )

        records = records_in(self.records_path, filtered if response_filter else None)

        def records_of(page: Page) -> list[Any]:
            response = page.response
            self._note_high_water_mark(page)
            if self.log_response:
                self.log.info("Page %d: %s", page.number, response.text)
            if self.response_check:
                kwargs = determine_kwargs(self.response_check, [response], context)
                if not self.response_check(response, **kwargs):
                    raise AirflowException(f"Response check returned False on page {page.number}.")
            return records(page)

        return records_of

    def _note_high_water_mark(self, page: Page) -> None:
        """The cursor a page gives is where the next incremental pull starts."""
        if self.start_cursor is None or not isinstance(self.paginate, CursorPaginator):
            return
        from airflow_provider_oauthcc.pull.pagination import json_get

        cursor = json_get(page.body, self.paginate.cursor_path)
        if cursor not in (None, ""):
            self._high_water_mark = str(cursor)

    def _incremental_summary(self) -> dict[str, Any]:
        return {} if self.start_cursor is None else {"high_water_mark": self._high_water_mark}

    def _annotate_asset_events(self, context: Context, summary: dict[str, Any]) -> None:
        """Put the summary on the events of this task's Asset outlets, for downstream DAGs."""
        from airflow_provider_oauthcc.airflow_compat import Asset

        assets = [outlet for outlet in self.outlets if isinstance(outlet, Asset)]
        events = context.get("outlet_events")
        if not assets or events is None:
            return
        for asset in assets:
            events[asset].extra.update(summary)


# Query parameters whose value stays out of the log line (an API key in the query, a signature).
_SECRET_PARAM_WORDS = ("key", "token", "secret", "password", "passwd", "signature", "auth")


def _looks_secret(param: str) -> bool:
    return any(word in param.lower() for word in _SECRET_PARAM_WORDS)


def _no_records(page: Page) -> list[Any]:
    return []


def _attempt_owner(context: Context) -> str | None:
    """A name shared by every attempt of this task instance, and by no other task."""
    import hashlib

    ti = context.get("ti")
    if ti is None:
        return None
    identity = f"{ti.dag_id}\0{ti.task_id}\0{ti.run_id}\0{getattr(ti, 'map_index', -1)}"
    return hashlib.sha256(identity.encode()).hexdigest()[:12]


def _bound_budget_waits(session: Any, execution_timeout: timedelta | None, context: Any) -> None:
    """A request that would wait for the request budget past the task's execution_timeout
    fails at once, saying so, rather than being killed in its sleep."""
    budget = getattr(session, "budget", None)
    start = getattr(context.get("ti"), "start_date", None)
    if budget is None or execution_timeout is None or start is None:
        return
    import time
    from datetime import UTC, datetime

    elapsed = (datetime.now(UTC) - start).total_seconds()
    budget.deadline = time.monotonic() + execution_timeout.total_seconds() - elapsed
