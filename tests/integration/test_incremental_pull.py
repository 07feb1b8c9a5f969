"""OAuthHttpOperator's incremental pulls against the local API's change feed: the start cursor
from the triggering events or the task's own high-water mark, every page followed, the cursor
reached published on the outlet events."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from airflow.providers.common.compat.sdk import Asset

from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pagination import CursorPaginator, LinkHeaderPaginator
from devserver import DevServer

from .conftest import api_connection

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def feed(api: DevServer, monkeypatch: pytest.MonkeyPatch) -> str:
    api_connection(api, monkeypatch, records=0)
    api.feed.clear()
    requests.post(f"{api.api_url}/_control/feed", json={"count": 5}, timeout=5).raise_for_status()
    return "crm"


def OutletEvents() -> Any:
    try:
        from airflow.sdk.execution_time.context import OutletEventAccessors
    except ImportError:  # Airflow 2.x
        from airflow.utils.context import OutletEventAccessors  # type: ignore[no-redef]
    return OutletEventAccessors()


class InletEvents:
    def __init__(self, events: dict[str, list[Any]]) -> None:
        self.events = events

    def __getitem__(self, asset: Any) -> list[Any]:
        return self.events[asset.uri]


def incremental(tmp_path: Path, start: str, asset: Any) -> OAuthHttpOperator:
    return OAuthHttpOperator(
        task_id="pull_changes",
        oauth_conn_id="crm",
        endpoint="/v1/changes",
        data={"limit": 2},
        paginate=CursorPaginator("next_cursor", "since", has_more_path="has_more"),
        records_path="records",
        start_cursor=start,
        output_path=str(tmp_path / "changes.jsonl"),
        outlets=[asset],
    )


def ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_a_pull_started_by_watcher_events_starts_at_the_announced_cursor(tmp_path: Path) -> None:
    asset = Asset(uri=(tmp_path / "changes").as_uri())
    announced = SimpleNamespace(
        extra={"from_trigger": True, "payload": {"cursor_from": "2", "cursor": "5", "count": 3}},
        timestamp="2026-01-01T00:00:00",
    )
    outlet_events = OutletEvents()
    context = {
        "triggering_asset_events": {"feed": [announced]},
        "inlet_events": InletEvents({asset.uri: []}),
        "outlet_events": outlet_events,
    }
    summary = incremental(tmp_path, "asset_events", asset).execute(context)  # type: ignore[arg-type]
    assert ids(tmp_path / "changes.jsonl") == ["change-3", "change-4", "change-5"]
    assert summary["high_water_mark"] == "5"
    assert summary["pages"] == 2  # pages of 2, the second says has_more false
    assert outlet_events[asset].extra["high_water_mark"] == "5"


def test_a_scheduled_pull_starts_at_its_own_high_water_mark(tmp_path: Path) -> None:
    asset = Asset(uri=(tmp_path / "changes").as_uri())
    last_run = SimpleNamespace(extra={"high_water_mark": "4", "records": 4})
    context = {
        "inlet_events": InletEvents({asset.uri: [last_run]}),
        "outlet_events": OutletEvents(),
    }
    summary = incremental(tmp_path, "high_water_mark", asset).execute(context)  # type: ignore[arg-type]
    assert ids(tmp_path / "changes.jsonl") == ["change-5"]
    assert summary["high_water_mark"] == "5"


def test_nothing_new_keeps_the_high_water_mark(tmp_path: Path) -> None:
    asset = Asset(uri=(tmp_path / "changes").as_uri())
    last_run = SimpleNamespace(extra={"high_water_mark": "5"})
    context = {
        "inlet_events": InletEvents({asset.uri: [last_run]}),
        "outlet_events": OutletEvents(),
    }
    summary = incremental(tmp_path, "high_water_mark", asset).execute(context)  # type: ignore[arg-type]
    assert summary["records"] == 0 and summary["high_water_mark"] == "5"


def test_start_cursor_needs_a_cursor_paginator() -> None:
    with pytest.raises(ValueError, match="CursorPaginator"):
        OAuthHttpOperator(
            task_id="t",
            endpoint="/v1/changes",
            paginate=LinkHeaderPaginator(),
            start_cursor="asset_events",
        )
    with pytest.raises(ValueError, match="start_cursor must be one of"):
        OAuthHttpOperator(
            task_id="t", endpoint="/v1/changes", paginate=CursorPaginator(), start_cursor="now"
        )
