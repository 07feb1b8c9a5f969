"""An event loop shaped like a busy triggerer's: a default executor of only two threads.

``run_bounded`` runs a coroutine in such a loop under ``asyncio.wait_for``, so a hang fails the
test instead of blocking it, then cleans up as a triggerer would on shutdown: pending tasks are
cancelled, the executor is shut down (queued work dropped), and what is still running
afterwards is reported in ``LoopReport`` for the test to assert on.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

POOL_THREADS = 2
THREAD_PREFIX = "triggerer-pool"


@dataclass
class LoopReport:
    """What was left once the coroutine finished (or timed out) and the loop was cleaned up."""

    pending_tasks: list[str] = field(default_factory=list)
    busy_pool_threads: list[str] = field(default_factory=list)
    new_non_daemon_threads: list[str] = field(default_factory=list)


def run_bounded(
    main: Callable[[], Awaitable[T]], *, timeout: float, report: LoopReport | None = None
) -> T:
    """``main()`` in a fresh loop with a 2-thread default executor, bounded by ``timeout``."""
    report = report if report is not None else LoopReport()
    before = set(threading.enumerate())
    loop = asyncio.new_event_loop()
    executor = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix=THREAD_PREFIX)
    loop.set_default_executor(executor)

    async def bounded() -> T:
        result = await asyncio.wait_for(main(), timeout)
        # What the coroutine left behind is seen here, before any cleanup cancels it.
        current = asyncio.current_task()
        report.pending_tasks = [repr(t) for t in asyncio.all_tasks() if t is not current]
        return result

    try:
        return loop.run_until_complete(bounded())
    finally:
        _clean_up(loop, executor)
        report.busy_pool_threads = _threads_still_alive(executor, grace=10.0)
        lifelong = _process_wide_threads()
        report.new_non_daemon_threads = [
            t.name
            for t in threading.enumerate()
            if t not in before and t not in lifelong and not t.daemon and t.is_alive()
        ]


def _clean_up(loop: asyncio.AbstractEventLoop, executor: ThreadPoolExecutor) -> None:
    executor.shutdown(wait=False, cancel_futures=True)
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks, timeout=10.0))
    # Threads blocked on the loop (the old deadlock) are released only while it runs.
    deadline = time.monotonic() + 10.0
    while _pool_threads(executor) and time.monotonic() < deadline:
        loop.run_until_complete(asyncio.sleep(0.05))
        for task in asyncio.all_tasks(loop):
            task.cancel()
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


def _process_wide_threads() -> set[threading.Thread]:
    """Threads that live as long as the process by design, whoever starts them first: the one
    thread of asgiref's ``sync_to_async(thread_sensitive=True)``, which Airflow reads
    connections through."""
    try:
        from asgiref.sync import SyncToAsync
    except ImportError:
        return set()
    executor = getattr(SyncToAsync, "single_thread_executor", None)
    return set(getattr(executor, "_threads", ()))


def _pool_threads(executor: ThreadPoolExecutor) -> list[threading.Thread]:
    """Pool threads still alive: once the executor is shut down, only busy ones are."""
    threads: set[threading.Thread] = getattr(executor, "_threads", set())
    return [t for t in threads if t.is_alive()]


def _threads_still_alive(executor: ThreadPoolExecutor, *, grace: float) -> list[str]:
    deadline = time.monotonic() + grace
    for thread in _pool_threads(executor):
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return [t.name for t in _pool_threads(executor)]
