"""One large answer streamed to object storage in bounded memory.

The answer is written chunk by chunk (1 MiB) as it arrives, through ``AtomicWriter``: the
file appears at its final path only when the whole answer was written; a failure, or a kill,
leaves nothing there. Records are counted as they pass (NDJSON lines, CSV rows), also when
the written bytes stay gzip-compressed (they are then decompressed on the side, one bounded
piece at a time, for the count only).

An answer cut off mid-body is sent again from the start, as often as the fetcher's retry
policy allows a retry; what the failed attempt wrote is discarded first. Body bytes are
never logged.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterator
from time import monotonic
from typing import TYPE_CHECKING, Any, Protocol

import requests
import tenacity
import urllib3.exceptions

from airflow_provider_oauthcc.auth.errors import ApiConnectionError, ApiError
from airflow_provider_oauthcc.pull.engine import PullStopped, human_size
from airflow_provider_oauthcc.pull.output import AtomicWriter
from airflow_provider_oauthcc.pull.pipeline import BackgroundWrites, Prefetch
from airflow_provider_oauthcc.pull.stream_count import CsvRowCounter, Gunzip, NdjsonCounter

if TYPE_CHECKING:
    from airflow_provider_oauthcc.airflow_compat import ObjectStoragePath
    from airflow_provider_oauthcc.pull.engine import Log, PageFetcher
    from airflow_provider_oauthcc.pull.pagination import PageRequest

CHUNK = 1024 * 1024
STREAMED_FORMATS = {"ndjson": "ndjson", "jsonl": "ndjson", "csv": "csv", "raw": "raw"}
RESPONSE_FORMATS = ("json", *STREAMED_FORMATS)
_GZIP_MAGIC = b"\x1f\x8b"

# What breaks an answer off while its body is read (urllib3's, before requests wraps them).
_CUT_OFF = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    urllib3.exceptions.SSLError,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    ConnectionError,
    TimeoutError,
)


def streamed_format(response_format: str) -> str | None:
    """``"ndjson"``, ``"csv"`` or ``"raw"`` for a streamed format (``"jsonl"`` is
    ``"ndjson"``), None for ``"json"`` (pages read whole); a clear error for anything else."""
    name = response_format.strip().lower() if isinstance(response_format, str) else ""
    if name == "json":
        return None
    if name not in STREAMED_FORMATS:
        raise ValueError(
            f"response_format must be one of {', '.join(RESPONSE_FORMATS)}; got {response_format!r}"
        )
    return STREAMED_FORMATS[name]


class BodyCutOff(Exception):
    """The answer broke off while its body was read; the written bytes are not kept."""

    def __init__(self, cause: BaseException, written: int) -> None:
        super().__init__(f"{type(cause).__name__} after {human_size(written)} of the answer")
        self.written = written


class _Counter(Protocol):
    @property
    def so_far(self) -> int: ...
    def feed(self, data: bytes) -> None: ...
    def finish(self) -> int: ...


def stream_to_storage(
    fetcher: PageFetcher,
    request: PageRequest,
    target: ObjectStoragePath | str,
    *,
    response_format: str,
    decompress: bool | None,
    owner: str | None,
    log: Log,
    progress_interval: float,
) -> dict[str, Any]:
    """Send ``request`` once through ``fetcher`` and write its answer's body to ``target``.

    :param response_format: ``"ndjson"`` (or ``"jsonl"``: non-empty lines counted as records),
        ``"csv"`` (rows counted, without the header) or ``"raw"`` (bytes passed through, no
        count).
    :param decompress: None: as HTTP does (a ``Content-Encoding`` is decoded, a gzip file is
        kept as it is); True: a gzip body (``application/gzip`` or gzip's magic bytes) is
        decompressed too; False: the bytes as they came over the wire, compressed or not.
    :param owner: names the writer across a task's attempts (stale temporary files).
    :returns: ``{"path", "records", "pages", "bytes", "duration_s", "truncated", "retries"}``;
        ``records`` is None for ``raw`` (and when a compressed answer's encoding cannot be
        decoded for the count).
    """
    form = streamed_format(response_format)
    if form is None:
        raise ValueError("stream_to_storage streams ndjson, jsonl, csv or raw answers, not json")
    started = next_line = monotonic()
    retries_before = fetcher.retries
    copy = _Copy(fetcher, form, decompress, log)

    def before_retry(state: tenacity.RetryCallState) -> None:
        fetcher.retries += 1
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "The answer broke off (%s); sending the request again from the start in %.1f s "
            "(attempt %d)",
            error,
            state.next_action.sleep if state.next_action else 0.0,
            state.attempt_number + 1,
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(fetcher.policy.retries + 1),
        wait=fetcher.policy.wait,
        retry=tenacity.retry_if_exception(
            lambda error: isinstance(error, BodyCutOff) and fetcher.policy.idempotent
        ),
        before_sleep=before_retry,
        reraise=True,
    )
    with AtomicWriter(target, owner=owner) as writer:

        def progress() -> None:
            nonlocal next_line
            now = monotonic()
            if now >= next_line:
                next_line = now + progress_interval
                log.info(
                    "Streamed %s to %s%s, %.1f s elapsed",
                    human_size(writer.bytes),
                    writer.target,
                    copy.records_so_far(),
                    now - started,
                )

        def attempt() -> int | None:
            if writer.bytes or copy.attempts:
                writer.restart()
            copy.attempts += 1
            return copy.run(request, writer, progress)

        try:
            records = retrying(attempt)
        except BodyCutOff as cut:
            attempts = copy.attempts
            raise ApiConnectionError(
                f"The connection broke while the API was sending its answer ({cut}); gave up "
                f"after {attempts} attempt{'s' if attempts != 1 else ''}"
            ) from cut.__cause__
    duration = monotonic() - started
    counted = f"{records:,} records " if records is not None else ""
    log.info(
        "Streamed %s(%s) to %s in %.1f s%s",
        counted,
        human_size(writer.bytes),
        writer.target,
        duration,
        f", {fetcher.retries - retries_before} retried requests"
        if fetcher.retries > retries_before
        else "",
    )
    return {
        "path": str(writer.target),
        "records": records,
        "pages": 1,
        "bytes": writer.bytes,
        "duration_s": round(duration, 3),
        "truncated": False,
        "retries": fetcher.retries,
    }


class _Copy:
    """One attempt at a time: the answer's body, from the fetcher to the writer."""

    def __init__(self, fetcher: PageFetcher, form: str, decompress: bool | None, log: Log) -> None:
        self.fetcher = fetcher
        self.form = form
        self.decompress = decompress
        self.log = log
        self.attempts = 0
        self._counter: _Counter | None = None

    def records_so_far(self) -> str:
        counter = self._counter
        return f" ({counter.so_far:,} records so far)" if counter is not None else ""

    def run(self, request: PageRequest, writer: AtomicWriter, progress: Any) -> int | None:
        response = self.fetcher.open(request, 1)
        # A gzip Content-Encoding is decoded here rather than by urllib3, which takes a gzip
        # stream that stops inside its member for a whole one.
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        gunzip_encoding = self.decompress is not False and encoding in ("gzip", "x-gzip")
        decode = self.decompress is not False and not gunzip_encoding
        body = Prefetch(self._body(response, writer, decode))
        try:
            chunks: Iterator[bytes] = iter(body)
            if gunzip_encoding:
                chunks = _gunzipped(chunks)
            if self.decompress:
                chunks = _decompressed(chunks)
            try:
                records = self._write(chunks, response, writer, progress)
            except (EOFError, zlib.error) as exc:
                self._stop_if_closed(exc)  # a body cut short by the stop: not the API's fault
                raise ApiError(
                    f"The API's answer is not valid gzip ({exc}); nothing was published",
                    status=response.status_code,
                ) from None
            # A body closed under its reader may end as if it were whole (urllib3 reads no
            # further and raises nothing when it had a Content-Length): never publish it.
            self._stop_if_closed()
            return records
        finally:
            body.stop()
            response.close()  # unblocks a read in progress
            body.join()

    def _body(
        self, response: requests.Response, writer: AtomicWriter, decode: bool
    ) -> Iterator[bytes]:
        """The body in chunks of at most ``CHUNK`` bytes, its Content-Encoding decoded by
        urllib3 when ``decode``; a break-off raises ``BodyCutOff``."""
        raw = response.raw
        try:
            yield from raw.stream(CHUNK, decode_content=decode)
        except _CUT_OFF as exc:
            self._stop_if_closed(exc)
            raise BodyCutOff(exc, writer.bytes) from exc
        except (AttributeError, ValueError, OSError) as exc:
            self._stop_if_closed(exc)  # the socket was closed under the reader by on_kill
            raise

    def _stop_if_closed(self, cause: BaseException | None = None) -> None:
        """Raises ``PullStopped`` once the fetcher was closed (the task is being killed)."""
        if self.fetcher.closed:
            raise PullStopped("The download was stopped (the task is being killed)") from cause

    def _write(
        self,
        chunks: Iterator[bytes],
        response: requests.Response,
        writer: AtomicWriter,
        progress: Any,
    ) -> int | None:
        counter: _Counter | None = None
        side: Gunzip | None = None
        first = True
        out = BackgroundWrites(writer.write_bytes)
        try:
            for chunk in chunks:
                if first:
                    first = False
                    chunk = self._whole_magic(chunk, chunks)
                    counter, side = self._counting(chunk, response)
                    self._counter = counter
                out.put(chunk)  # written while it is counted
                if counter is not None:
                    if side is None:
                        counter.feed(chunk)
                    else:
                        for piece in side.feed(chunk):
                            counter.feed(piece)
                progress()
            if side is not None:
                side.finish()
            out.finish()
        finally:
            out.stop()
        if counter is None:
            return None if self.form == "raw" or not first else 0
        return counter.finish()

    @staticmethod
    def _whole_magic(chunk: bytes, chunks: Iterator[bytes]) -> bytes:
        """The first chunk, at least two bytes long if the body is (gzip's magic)."""
        while len(chunk) < len(_GZIP_MAGIC):
            more = next(chunks, b"")
            if not more:
                break
            chunk += more
        return chunk

    def _counting(
        self, first: bytes, response: requests.Response
    ) -> tuple[_Counter | None, Gunzip | None]:
        """The counter of this format, and the side decoder the count needs (written bytes
        still gzip-compressed), or no counter (raw; an encoding it cannot decode)."""
        if self.form == "raw":
            return None, None
        counter: _Counter = NdjsonCounter() if self.form == "ndjson" else CsvRowCounter()
        if first.startswith(_GZIP_MAGIC):
            return counter, Gunzip(CHUNK)
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if self.decompress is False and encoding not in ("", "identity"):
            self.log.info(
                "The answer is kept %s-encoded as it came; its records are not counted",
                encoding,
            )
            return None, None
        return counter, None


def _decompressed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """A gzip body (by its magic bytes, whatever its Content-Type says) decompressed; any
    other body as it is."""
    first = b""
    for chunk in chunks:
        first += chunk
        if len(first) >= len(_GZIP_MAGIC):
            break
    if not first.startswith(_GZIP_MAGIC):
        if first:
            yield first
        yield from chunks
        return
    yield from _gunzipped(itertools.chain([first], chunks))


def _gunzipped(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """A gzip stream decompressed in bounded pieces; ``EOFError`` if it stops inside a member."""
    gunzip = Gunzip(CHUNK)
    for chunk in chunks:
        yield from gunzip.feed(chunk)
    gunzip.finish()
