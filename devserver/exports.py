"""Export jobs: the long-running kind of API call a deferrable sensor waits for.

``POST /v1/exports`` starts a job over a window of the dataset; its status is ``pending``,
then ``running`` (after half of ``ready_after`` seconds), then ``done`` (or ``failed`` when the
job was created with ``fail``). The status body does not change while a state lasts, so a
sensor can tell a new answer from the same one.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

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

    @property
    def status(self) -> str:
        elapsed = time.monotonic() - self.created
        if elapsed < self.ready_after / 2:
            return "pending"
        if elapsed < self.ready_after:
            return "running"
        return "failed" if self.fail else "done"


class ExportJobs:
    """The jobs of one server; safe to use from the server's worker threads."""

    def __init__(self, ready_after: float = DEFAULT_READY_AFTER) -> None:
        #: Seconds a new job takes unless its request says otherwise.
        self.ready_after = ready_after
        self._jobs: dict[str, ExportJob] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def create(
        self,
        *,
        ready_after: float | None = None,
        fail: bool = False,
        updated_since: datetime | None = None,
        updated_before: datetime | None = None,
    ) -> ExportJob:
        with self._lock:
            job = ExportJob(
                id=f"exp-{next(self._ids)}",
                ready_after=self.ready_after if ready_after is None else ready_after,
                fail=fail,
                updated_since=updated_since,
                updated_before=updated_before,
            )
            self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> ExportJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)
