"""Task-like processes: each builds an ``OAuthCCHook`` from an ``AIRFLOW_CONN_<ID>`` JSON env
var and calls the API, as an Airflow task does in its own process.

They are forked from a ``forkserver`` that has imported the hook once: a clean, single-threaded
parent, as Airflow's task supervisor and Celery's prefork pool are. A spawned interpreter would
pay Airflow's ~5 s import per process; the token cache sees the same thing either way: separate
processes with separate memory.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import time
from dataclasses import dataclass, field
from multiprocessing.context import ForkServerContext
from multiprocessing.synchronize import Barrier
from typing import Any

START_TIMEOUT = 60.0
# What a worker has imported before it starts a task (a Celery worker on Redis has redis).
PRELOAD = [
    "airflow_provider_oauthcc.hooks.oauth_cc",
    "airflow.sdk.execution_time.supervisor",  # what get_connection() imports on first use
    "cryptography.hazmat.primitives.ciphers.aead",
    "redis",
    "tests.support.task_processes",
    "tests.support.task_warmup",
]


@dataclass
class TaskResult:
    status: int | None = None
    client_id: str | None = None
    error: str | None = None
    logs: list[tuple[str, str]] = field(default_factory=list)  # (level, message)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


def context() -> ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def run_tasks(
    count: int,
    conn_id: str,
    conn_json: str,
    *,
    env: dict[str, str] | None = None,
    endpoint: str = "/v1/whoami",
    timeout: float = 120.0,
) -> list[TaskResult]:
    """Start ``count`` task processes together (a barrier) and return their results."""
    ctx = context()
    barrier = ctx.Barrier(count)
    results: Any = ctx.Queue()
    processes = [
        ctx.Process(
            target=_task_main,
            args=(conn_id, conn_json, env or {}, endpoint, barrier, results),
            daemon=True,
        )
        for _ in range(count)
    ]
    for process in processes:
        process.start()
    collected: list[TaskResult] = []
    deadline = time.monotonic() + timeout
    try:
        while len(collected) < count:
            try:
                collected.append(results.get(timeout=0.2))
            except queue.Empty:
                crashed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
                if crashed or time.monotonic() > deadline:
                    raise AssertionError(
                        f"only {len(collected)} of {count} task processes reported "
                        f"(exit codes of crashed ones: {crashed})"
                    ) from None
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
    return collected


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelname, record.getMessage()))


def _task_main(
    conn_id: str,
    conn_json: str,
    env: dict[str, str],
    endpoint: str,
    barrier: Barrier,
    results: Any,
) -> None:
    result = TaskResult()
    capture = _Capture()
    logger = logging.getLogger("airflow_provider_oauthcc")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    try:
        os.environ.update(env)
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = conn_json
        from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook

        barrier.wait(START_TIMEOUT)
        started = time.perf_counter()
        response = OAuthCCHook(oauth_conn_id=conn_id).run(endpoint)
        result.seconds = time.perf_counter() - started
        result.status = response.status_code
        result.client_id = response.json().get("client_id")
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        result.logs = capture.records
        results.put(result)
