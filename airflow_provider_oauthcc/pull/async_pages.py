"""``AsyncPull``: the pages of one pull for an event loop (``async for``), with the sync pull's
paginators, page loop rules, progress and summary lines. ``OAuthCCAsyncHook.paginate`` returns
one; each page is sent (and retried) by the async hook.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any

import requests

from airflow_provider_oauthcc.pull.engine import Log, Progress, next_request
from airflow_provider_oauthcc.pull.pages import log_summary
from airflow_provider_oauthcc.pull.pagination import Page, PageRequest, Paginator

SendPage = Callable[[PageRequest, int], Awaitable[requests.Response]]


class AsyncPull:
    """``async for page in pull`` yields the pages (``.records``, ``.body``, ``.response``,
    ``.number``); ``async for record in pull.records()`` the records. Iterated once. Use it as
    an async context manager (``async with``) so that a pull left early closes at once.

    Attributes: ``pages``, ``records_count``, ``retries``, ``truncated``, ``completed``,
    ``closed``.
    """

    def __init__(
        self,
        send: SendPage,
        first: PageRequest,
        paginator: Paginator | None,
        records_of: Callable[[Page], list[Any]],
        *,
        log: Log,
        max_pages: int | None = None,
        progress_interval: float = 5.0,
        retries: Callable[[], int] = lambda: 0,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if max_pages is not None and max_pages < 1:
            raise ValueError("max_pages must be >= 1")
        if progress_interval < 0:
            raise ValueError("progress_interval must be >= 0")
        self._send = send
        self.first = first
        self.paginator = paginator
        self.records_of = records_of
        self.log = log
        self.max_pages = max_pages
        self.progress_interval = progress_interval
        self._retries = retries
        self._close = close
        self.pages = 0
        self.records_count = 0
        self.truncated = False
        self.completed = False
        #: The pull ended or was closed: no further page is sent.
        self.closed = False
        self._walker: AsyncIterator[Page] | None = None

    @property
    def retries(self) -> int:
        return self._retries()

    def __aiter__(self) -> AsyncIterator[Page]:
        if self._walker is not None:
            raise RuntimeError("a pull is iterated once; call paginate() again for a new pull")
        self._walker = self._walk()
        return self._walker

    async def _walk(self) -> AsyncIterator[Page]:
        progress = Progress(self.log, self.progress_interval)
        paginator = self.paginator
        request = paginator.first_request(self.first) if paginator else self.first
        number = 1
        try:
            while True:
                page = Page(number, request, await self._send(request, number))
                page.records = self.records_of(page)
                self.pages += 1
                self.records_count += len(page.records)
                yield page
                progress.page(len(page.records))
                following = next_request(paginator, page)
                if following is None:
                    break
                if self.max_pages is not None and number >= self.max_pages:
                    self.truncated = True
                    break
                request, number = following, number + 1
            self.completed = True
            log_summary(
                self.log,
                records=self.records_count,
                pages=self.pages,
                elapsed=progress.elapsed,
                retries=self.retries,
                truncated=self.truncated,
            )
        finally:
            await self.aclose_session()

    async def records(self) -> AsyncIterator[Any]:
        """The records of every page, in order."""
        async for page in self:
            for record in page.records:
                yield record

    async def aclose_session(self) -> None:
        self.closed = True
        close, self._close = self._close, None
        if close is not None:
            await close()

    async def aclose(self) -> None:
        """Stop: no further page is sent; the session the pull opened is closed."""
        walker = self._walker
        if walker is not None and hasattr(walker, "aclose"):
            await walker.aclose()
        await self.aclose_session()

    async def __aenter__(self) -> AsyncPull:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
