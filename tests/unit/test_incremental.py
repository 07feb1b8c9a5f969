"""Where an incremental pull starts: the triggering events' announced cursor, or the task's own
high-water mark, which wins where the task can read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from airflow_provider_oauthcc.pull.incremental import IncrementalPullError, start_cursor


@dataclass
class Event:
    extra: dict[str, Any]
    timestamp: str = "2026-01-01T00:00:00"


@dataclass
class Asset:
    name: str


@dataclass
class InletEvents:
    """Airflow's inlet_events: a KeyError for an asset not in the task's inlets."""

    events: dict[str, list[Event]] = field(default_factory=dict)

    def __getitem__(self, asset: Asset) -> list[Event]:
        return self.events[asset.name]


def watcher_event(cursor_from: str | None, cursor: str, at: str) -> Event:
    payload = {"cursor_from": cursor_from, "cursor": cursor, "count": 1, "pages": 1}
    return Event({"from_trigger": True, "payload": payload}, at)


PULLED = Asset("pulled")


def test_the_earliest_triggering_event_says_where_to_start() -> None:
    context = {
        "triggering_asset_events": {
            "changes": [watcher_event("5", "7", "t2"), watcher_event("3", "5", "t1")]
        },
        "inlet_events": InletEvents({"pulled": []}),
    }
    assert start_cursor(context, "asset_events", [PULLED]) == "3"


def test_a_first_announcement_starts_from_the_beginning() -> None:
    context = {"triggering_asset_events": {"changes": [watcher_event(None, "3", "t1")]}}
    assert start_cursor(context, "asset_events", []) is None


def test_the_high_water_mark_wins_over_an_announcement_made_twice() -> None:
    context = {
        "triggering_asset_events": {"changes": [watcher_event("3", "5", "t1")]},
        "inlet_events": InletEvents(
            {"pulled": [Event({"high_water_mark": "3"}), Event({"high_water_mark": "5"})]}
        ),
    }
    assert start_cursor(context, "asset_events", [PULLED]) == "5"


def test_high_water_mark_mode_needs_the_asset_in_inlets() -> None:
    with pytest.raises(IncrementalPullError, match="list it in inlets"):
        start_cursor({"inlet_events": InletEvents()}, "high_water_mark", [PULLED])
    with pytest.raises(IncrementalPullError, match="outlets"):
        start_cursor({}, "high_water_mark", [])


def test_high_water_mark_mode_starts_from_the_beginning_on_a_first_run() -> None:
    context = {"inlet_events": InletEvents({"pulled": [Event({"records": 3})]})}
    assert start_cursor(context, "high_water_mark", [PULLED]) is None


def test_a_run_without_watcher_events_is_refused_clearly() -> None:
    with pytest.raises(IncrementalPullError, match="not started by asset events"):
        start_cursor({"triggering_asset_events": {}}, "asset_events", [])
    other = {"triggering_asset_events": {"x": [Event({"from_trigger": True, "payload": {}})]}}
    with pytest.raises(IncrementalPullError, match="carry no cursor"):
        start_cursor(other, "asset_events", [])
    with pytest.raises(IncrementalPullError, match="start_cursor must be one of"):
        start_cursor({}, "yesterday", [])
