"""Run a deferrable task as Airflow does, in this process: execute, and on each deferral
store the trigger (JSON round trip of its serialized form), rebuild it, run it in a fresh event
loop like the triggerer, and resume the task with its event."""

from __future__ import annotations

import asyncio
import importlib
import json
from dataclasses import dataclass, field
from typing import Any

from airflow.providers.common.compat.sdk import TaskDeferred


@dataclass
class Deferrals:
    """What happened while a task ran: the stored triggers and the events they fired."""

    stored: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.stored)


def rebuild_trigger(classpath: str, kwargs: dict[str, Any]) -> Any:
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


async def first_event(trigger: Any) -> Any:
    return await anext(trigger.run())


def run_deferrable(task: Any, context: dict[str, Any], deferrals: Deferrals | None = None) -> Any:
    """The task's result after every deferral; raises what the task raises."""
    record = deferrals if deferrals is not None else Deferrals()
    try:
        return task.execute(context)
    except TaskDeferred as deferred:
        current = deferred
    while True:
        classpath, kwargs = current.trigger.serialize()
        stored = json.loads(json.dumps(kwargs))  # what the metadata database keeps
        record.stored.append((classpath, stored))
        event = asyncio.run(first_event(rebuild_trigger(classpath, stored)))
        record.events.append(event.payload)
        next_kwargs = {**(current.kwargs or {}), "event": event.payload}
        try:
            return task.resume_execution(current.method_name, next_kwargs, context)
        except TaskDeferred as deferred:
            current = deferred
