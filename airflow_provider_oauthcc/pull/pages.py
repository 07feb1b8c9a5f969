"""``Pull``: the pages of one pull as a Python iterable, with progress lines, a summary line
and the session closed at the end. ``OAuthCCHook.paginate`` returns one; the operator walks
one too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

from airflow_provider_oauthcc.pull.engine import Log, PageFetcher, PagePull, Progress, human_size
from airflow_provider_oauthcc.pull.pagination import Page


class Pull:
    """The pages of one pull, fetched one at a time as they are iterated.

    Iterating yields :class:`~airflow_provider_oauthcc.pull.pagination.Page` objects
    (``.records``, ``.body``, ``.response``, ``.number``); ``records()`` yields the records one
    by one. A pull is iterated once. When the iteration ends, fails or is left early (``break``,
    or the pull used as a context manager and left), the session is closed and no further page
    is sent.

    Attributes: ``pages`` (pages received so far), ``records_count``, ``retries`` (retried
    requests), ``truncated`` (stopped at ``max_pages`` although the API had more), ``completed``.
    """

    def __init__(
        self,
        pages: PagePull,
        *,
        log: Log,
        progress_interval: float = 5.0,
        where: str = "",
    ) -> None:
        if progress_interval < 0:
            raise ValueError("progress_interval must be >= 0")
        self._pages = pages
        self.log = log
        self.progress_interval = progress_interval
        self.where = where
        #: Bytes written so far, for the progress lines of a pull to storage.
        self.written: Callable[[], int] | None = None
        self.pages = 0
        self.records_count = 0
        self.completed = False
        self.elapsed = 0.0
        self._started = False

    @property
    def fetcher(self) -> PageFetcher:
        return self._pages.fetcher

    @property
    def truncated(self) -> bool:
        return self._pages.truncated

    @property
    def retries(self) -> int:
        return self._pages.fetcher.retries

    def __iter__(self) -> Iterator[Page]:
        if self._started:
            raise RuntimeError("a Pull is iterated once; call paginate() again for a new pull")
        self._started = True
        return self._walk()

    def _walk(self) -> Iterator[Page]:
        progress = Progress(self.log, self.progress_interval)
        try:
            for page in self._pages:
                self.pages += 1
                self.records_count += len(page.records)
                yield page
                # Counted once the caller is done with the page (and has written it).
                progress.page(len(page.records), self.written() if self.written else None)
            self.completed = True
            self.elapsed = progress.elapsed
            self._log_summary()
        finally:
            self.elapsed = progress.elapsed
            self.close()

    def records(self) -> Iterator[Any]:
        """The records of every page, in order."""
        for page in self:
            yield from page.records

    def close(self) -> None:
        """Stop: no further page is sent, and the session's sockets are closed."""
        self._pages.fetcher.close()

    def __enter__(self) -> Pull:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _log_summary(self) -> None:
        log_summary(
            self.log,
            records=self.records_count,
            pages=self.pages,
            elapsed=self.elapsed,
            retries=self.retries,
            truncated=self.truncated,
            where=self.where,
            written=self.written() if self.written else None,
        )


def log_summary(
    log: Log,
    *,
    records: int,
    pages: int,
    elapsed: float,
    retries: int,
    truncated: bool,
    where: str = "",
    written: int | None = None,
) -> None:
    """The line that ends a pull's log: "Pulled 1,200 records in 12 pages (...) in 3.1 s"."""
    size = f" ({human_size(written)})" if written is not None else ""
    retried = f", {retries} retried requests" if retries else ""
    place = f" {where}" if where else ""
    log.info(
        "Pulled %s records in %d pages%s%s in %.1f s%s",
        f"{records:,}",
        pages,
        size,
        place,
        elapsed,
        retried,
    )
    if truncated:
        log.warning("Stopped at max_pages=%d although the API has more pages", pages)
