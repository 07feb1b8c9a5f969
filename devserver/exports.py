"""Export jobs: the long-running kind of API call a deferrable sensor waits for.

``POST /v1/exports`` starts a job over a window of the dataset; its status is ``pending``,
then ``running`` (after half of ``ready_after`` seconds), then ``done`` (or ``failed`` when the
job was created with ``fail``). The status body does not change while a state lasts, so a
sensor can tell a new answer from the same one.

Tests that must not depend on the clock create a ``manual`` job instead: it stays ``pending``
until ``set_status()``, and ``wait_polls(n)`` / ``ExportJobs.wait_misses(id, n)`` block until
the API has answered that many status requests (or 404s for a job not created yet).

A done job's download pages its records as JSON (``limit``, ``Link``), or serves them as one
large streamed file with ``format=ndjson`` or ``format=csv``: ``gzip=file`` sends a gzip file
(``application/gzip``), ``gzip=encoding`` the same bytes as ``Content-Encoding: gzip``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

DEFAULT_READY_AFTER = 3.0


@dataclass
class ExportJob:
    id: str
    ready_after: float
    fail: bool
    updated_since: datetime | None
    updated_before: datetime | None
    created: float = field(default_factory=time.monotonic)
    status_polls: int = 0
    manual: bool = False
    _state: str = "pending"
    _polls: threading.Condition = field(default_factory=threading.Condition, repr=False)

    @property
    def status(self) -> str:
        if self.manual:
            return self._state
        elapsed = time.monotonic() - self.created
        if elapsed < self.ready_after / 2:
            return "pending"
        if elapsed < self.ready_after:
            return "running"
        return "failed" if self.fail else "done"

    def set_status(self, status: str) -> None:
        """Move a manual job to ``pending``, ``running``, ``done`` or ``failed``."""
        if not self.manual:
            raise ValueError("only a manual job's status is set by hand")
        if status not in ("pending", "running", "done", "failed"):
            raise ValueError(f"unknown export status {status!r}")
        self._state = status

    def polled(self) -> None:
        """Count one status request (the API calls this before it answers)."""
        with self._polls:
            self.status_polls += 1
            self._polls.notify_all()

    def wait_polls(self, count: int, timeout: float = 60.0) -> None:
        """Block until the API has answered ``count`` status requests for this job."""
        with self._polls:
            if not self._polls.wait_for(lambda: self.status_polls >= count, timeout):
                raise TimeoutError(f"{self.status_polls} status polls after {timeout} s")


class ExportJobs:
    """The jobs of one server; safe to use from the server's worker threads."""

    def __init__(self, ready_after: float = DEFAULT_READY_AFTER) -> None:
        #: Seconds a new job takes unless its request says otherwise.
        self.ready_after = ready_after
        #: Jobs created through the API are ``manual`` too (a test moves them on).
        self.manual = False
        self._jobs: dict[str, ExportJob] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._misses: dict[str, int] = {}
        self._missed = threading.Condition(self._lock)

    def create(
        self,
        *,
        ready_after: float | None = None,
        fail: bool = False,
        updated_since: datetime | None = None,
        updated_before: datetime | None = None,
        manual: bool = False,
    ) -> ExportJob:
        with self._lock:
            job = ExportJob(
                id=f"exp-{next(self._ids)}",
                ready_after=self.ready_after if ready_after is None else ready_after,
                fail=fail,
                updated_since=updated_since,
                updated_before=updated_before,
                manual=manual or self.manual,
            )
            self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> ExportJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def missed(self, job_id: str) -> None:
        """Count one request for a job that does not exist (yet)."""
        with self._missed:
            self._misses[job_id] = self._misses.get(job_id, 0) + 1
            self._missed.notify_all()

    def wait_misses(self, job_id: str, count: int, timeout: float = 60.0) -> None:
        """Block until ``count`` requests for the missing job ``job_id`` were answered 404."""
        with self._missed:
            if not self._missed.wait_for(lambda: self._misses.get(job_id, 0) >= count, timeout):
                raise TimeoutError(f"{self._misses.get(job_id, 0)} misses of {job_id}")

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)


#: Formats ``GET /v1/exports/<id>/download?format=...`` serves as one streamed body.
FILE_FORMATS = {"ndjson": "application/x-ndjson", "csv": "text/csv"}
FILE_CHUNK = 256 * 1024


def export_file(
    records: Iterable[dict[str, Any]], file_format: str, *, gzip: bool = False
) -> Iterator[bytes]:
    """The records as one NDJSON or CSV body, in chunks of about 256 KiB (gzip-compressed
    when asked): a large export is never held whole by the server either."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None
    buffer: list[bytes] = []
    size = 0
    for line in _lines(records, file_format):
        buffer.append(line)
        size += len(line)
        if size >= FILE_CHUNK:
            data = b"".join(buffer)
            buffer, size = [], 0
            out = compressor.compress(data) if compressor else data
            if out:
                yield out
    data = b"".join(buffer)
    tail = (compressor.compress(data) + compressor.flush()) if compressor else data
    if tail:
        yield tail


def paced(chunks: Iterable[bytes], seconds: float) -> Iterator[bytes]:
    """``chunks`` with a pause before each but the first: a download a test can stop midway."""
    for number, chunk in enumerate(chunks):
        if number:
            time.sleep(seconds)
        yield chunk


def _lines(records: Iterable[dict[str, Any]], file_format: str) -> Iterator[bytes]:
    if file_format == "ndjson":
        for record in records:
            yield json.dumps(record, separators=(",", ":")).encode() + b"\n"
        return
    header = True
    for record in records:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        if header:
            writer.writerow(record.keys())
            header = False
        writer.writerow(record.values())
        yield out.getvalue().encode()
