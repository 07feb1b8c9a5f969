"""Running an operator's ``execute`` on a test thread, as the on_kill tests do."""

from __future__ import annotations


def allow_execute_on_this_thread() -> None:
    """Airflow 2.x's ``ExecutorSafeguard`` (the check that ``execute`` is called by a task
    runner) keeps its callers in a ``threading.local`` set up only on the thread that imported
    ``BaseOperator``: ``execute`` on any other thread fails with an AttributeError. A real task
    calls ``execute`` on its main thread; a test that stops a pull from outside may not. Gives
    this thread its own (empty) record. Airflow 3 has no such thread-local: nothing to do."""
    try:
        from airflow.models.baseoperator import ExecutorSafeguard
    except ImportError:
        return
    sentinel = getattr(ExecutorSafeguard, "_sentinel", None)
    if sentinel is not None and not hasattr(sentinel, "callers"):
        sentinel.callers = {}
