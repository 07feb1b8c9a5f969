"""Pulls in task-like processes, for the request budget's tests: each process builds an
``OAuthCCHook`` from an ``AIRFLOW_CONN_<ID>`` JSON env var and runs its pulls with the pull
engine (one session per pull, per-page retries honouring Retry-After), as the operator does;
``threads`` pulls run at once in each process.

The processes come from the forkserver of :mod:`tests.support.task_processes` (Airflow
imported once). A process that fails reports the error; none is left running.
"""

from __future__ import annotations

import logging
import os
import queue
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier
from typing import Any

from tests.support.task_processes import START_TIMEOUT, context


@dataclass
class PullResult:
    pulls: int = 0
    failed: list[str] = field(default_factory=list)
    waits_logged: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PullPlan:
    conn_id: str
    conn_json: str
    endpoint: str = "/v1/items"
    params: dict[str, Any] = field(default_factory=dict)
    pulls: int = 10  # per process
    threads: int = 1  # pulls at once per process
    retries: int = 8
    env: dict[str, str] = field(default_factory=dict)


def run_pulls(processes: int, plan: PullPlan, *, timeout: float = 180.0) -> list[PullResult]:
    """Run ``plan`` in ``processes`` processes started together; their results."""
    ctx = context()
    barrier = ctx.Barrier(processes)
    results: Any = ctx.Queue()
    workers = [
        ctx.Process(target=_main, args=(plan, barrier, results), daemon=True)
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    collected: list[PullResult] = []
    deadline = time.monotonic() + timeout
    try:
        while len(collected) < processes:
            try:
                collected.append(results.get(timeout=0.2))
            except queue.Empty:
                crashed = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
                if crashed or time.monotonic() > deadline:
                    raise AssertionError(
                        f"only {len(collected)} of {processes} processes reported "
                        f"(exit codes of crashed ones: {crashed})"
                    ) from None
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join()
    return collected


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _main(plan: PullPlan, barrier: Barrier, results: Any) -> None:
    result = PullResult()
    capture = _Capture()
    logger = logging.getLogger("airflow_provider_oauthcc")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    try:
        os.environ.update(plan.env)
        os.environ[f"AIRFLOW_CONN_{plan.conn_id.upper()}"] = plan.conn_json
        from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook

        hook = OAuthCCHook(oauth_conn_id=plan.conn_id)
        hook.get_token()  # the token before the start: the race is for the API
        barrier.wait(START_TIMEOUT)
        with ThreadPoolExecutor(plan.threads) as pool:
            for error in pool.map(lambda _: _pull(hook, plan), range(plan.pulls)):
                result.pulls += 1
                if error:
                    result.failed.append(error)
    except Exception as exc:
        result.failed.append(f"{type(exc).__name__}: {exc}")
    finally:
        result.waits_logged = sum("request budget" in r.getMessage() for r in capture.records)
        result.warnings = [r.getMessage() for r in capture.records if r.levelno >= logging.WARNING]
        results.put(result)


def _pull(hook: Any, plan: PullPlan) -> str | None:
    from airflow_provider_oauthcc.pull.engine import PageFetcher, PagePull, close_session
    from airflow_provider_oauthcc.pull.pagination import LinkHeaderPaginator, PageRequest
    from airflow_provider_oauthcc.pull.retry import RetryPolicy

    session = hook.get_conn()
    try:
        fetcher = PageFetcher(
            session,
            method="GET",
            options=hook.merged_extra,
            check_response=hook.check_response,
            policy=RetryPolicy(retries=plan.retries, max_wait=5.0, backoff=0.2),
        )
        first = PageRequest(url=hook.url_from_endpoint(plan.endpoint), data=dict(plan.params))
        for _ in PagePull(fetcher, first, LinkHeaderPaginator(), lambda page: []):
            pass
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        close_session(session)
    return None
