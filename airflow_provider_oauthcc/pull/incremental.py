"""Incremental pulls: where a cursor pull starts, and the high-water mark it leaves.

``start_cursor="asset_events"``: the run was started by asset events, e.g. an
:class:`~airflow_provider_oauthcc.triggers.oauth_http_event.OAuthHttpEventTrigger`'s; the pull
starts at the cursor the earliest of them starts from (its ``cursor_from``).

``start_cursor="high_water_mark"``: the pull starts where this task's last successful pull
stopped: the ``high_water_mark`` on the latest event of its outlet asset. A task reads the
events of an asset it lists in ``inlets``: list the outlet asset there too.

With ``"asset_events"``, a high-water mark, where the task can read one, wins: it says how far
the data was actually pulled, so an event announced twice (a triggerer killed at the wrong
moment) pulls nothing twice.

The pull's high-water mark, the cursor its last page gave, goes on the outlet asset events and
in the summary, for the next run to start from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

START_CURSOR_SOURCES = ("asset_events", "high_water_mark")
HIGH_WATER_MARK = "high_water_mark"


class IncrementalPullError(ValueError):
    """The start of an incremental pull cannot be found where the task says it is."""


def start_cursor(context: Mapping[str, Any], source: str, assets: Sequence[Any]) -> str | None:
    """The cursor to start the pull from; None: from the API's beginning (a first run)."""
    if source not in START_CURSOR_SOURCES:
        raise IncrementalPullError(
            f"start_cursor must be one of {', '.join(START_CURSOR_SOURCES)}, got {source!r}"
        )
    mark = last_high_water_mark(context, assets, required=source == "high_water_mark")
    if mark is not None or source == "high_water_mark":
        return mark
    return _earliest_cursor_from(context)


def last_high_water_mark(
    context: Mapping[str, Any], assets: Sequence[Any], *, required: bool
) -> str | None:
    """The ``high_water_mark`` of the latest event of the first of ``assets`` that has one."""
    inlet_events = context.get("inlet_events")
    if not assets:
        if required:
            raise IncrementalPullError(
                "start_cursor='high_water_mark' reads the task's own outlet asset: give the "
                "task an Asset in outlets (and in inlets)"
            )
        return None
    for asset in assets:
        try:
            events = list(inlet_events[asset]) if inlet_events is not None else None
        except (KeyError, IndexError, TypeError):
            events = None
        if events is None:
            if required:
                raise IncrementalPullError(
                    f"start_cursor='high_water_mark': the task cannot read the events of "
                    f"{getattr(asset, 'name', asset)}; list it in inlets as well as in outlets"
                )
            continue
        for event in reversed(events):
            mark = (getattr(event, "extra", None) or {}).get(HIGH_WATER_MARK)
            if mark is not None:
                return str(mark)
    return None


def _earliest_cursor_from(context: Mapping[str, Any]) -> str | None:
    triggering = context.get("triggering_asset_events") or context.get("triggering_dataset_events")
    events = [event for _, batch in (triggering or {}).items() for event in batch]
    if not events:
        raise IncrementalPullError(
            "start_cursor='asset_events': this run was not started by asset events (run it "
            "from an asset schedule, e.g. an AssetWatcher with OAuthHttpEventTrigger)"
        )
    announced = [payload for payload in map(_announcement, _by_time(events)) if "cursor" in payload]
    if not announced:
        raise IncrementalPullError(
            "start_cursor='asset_events': the triggering events carry no cursor (they are not "
            "OAuthHttpEventTrigger events)"
        )
    cursor = announced[0].get("cursor_from")
    return None if cursor is None else str(cursor)


def _announcement(event: Any) -> Mapping[str, Any]:
    """What a watcher announced: Airflow keeps a trigger's payload under the event's extra
    ``payload`` (``{"from_trigger": True, "payload": {...}}``)."""
    extra = getattr(event, "extra", None) or {}
    payload = extra.get("payload") if extra.get("from_trigger") else extra
    return payload if isinstance(payload, Mapping) else {}


def _by_time(events: Iterable[Any]) -> list[Any]:
    return sorted(events, key=lambda event: str(getattr(event, "timestamp", "")))
