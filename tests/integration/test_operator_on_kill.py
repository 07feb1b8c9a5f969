"""on_kill stops a running pull: the partial output is discarded, no further page is sent, and
the session's sockets are closed (issue 14, item 4).

A real pull runs in a thread against the devserver; page 3 is held by the server (a hold
fault, which signals when the request arrives), and ``on_kill`` is called from the test's
thread, as Airflow calls it when a task is stopped.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pull.engine import PullStopped
from airflow_provider_oauthcc.pull.output import OutputAborted
from airflow_provider_oauthcc.pull.pagination import LinkHeaderPaginator
from devserver import DevServer
from tests.support.threads import allow_execute_on_this_thread

from .conftest import API_SECRET, api_connection

pytestmark = pytest.mark.integration

SECRET = API_SECRET


@pytest.fixture(autouse=True)
def crm(api: DevServer, monkeypatch: pytest.MonkeyPatch) -> str:
    return api_connection(api, monkeypatch, records=250)  # 5 pages of 50


class Run(threading.Thread):
    """``operator.execute`` in a thread; ``error`` is what it raised."""

    def __init__(self, operator: OAuthHttpOperator) -> None:
        super().__init__(daemon=True)
        self.operator = operator
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            allow_execute_on_this_thread()
            self.operator.execute({})
        except BaseException as exc:
            self.error = exc


def connections_to(api: DevServer) -> list[Any]:
    port = int(api.api_url.rsplit(":", 1)[1])
    return [
        c
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    ]


def kill_at_page_3(api: DevServer, operator: OAuthHttpOperator, folder: Path | None) -> Run:
    """Start the pull, wait until page 3 is held by the server, call on_kill, then let page 3
    be answered; returns the finished run."""
    held = api.api_faults.add(hold=True, every=3, times=1, hold_max=60)
    run = Run(operator)
    run.start()
    try:
        held.wait_held(timeout=60)
        if folder is not None:  # pages 1 and 2 are in the temporary file, nothing is final yet
            [partial] = [p for p in folder.iterdir() if p.name.endswith(".partial")]
            assert partial.stat().st_size > 0
        operator.on_kill()
        if folder is not None:
            assert list(folder.iterdir()) == []  # discarded at once, not when the task ends
    finally:
        held.release()
        run.join(60)
    assert not run.is_alive()
    return run


def test_on_kill_discards_the_partial_output_and_publishes_nothing(
    api: DevServer, tmp_path: Path
) -> None:
    folder = tmp_path / "out"
    operator = OAuthHttpOperator(
        task_id="pull",
        oauth_conn_id="crm",
        endpoint="/v1/link/items",
        data={"limit": 50},
        paginate=LinkHeaderPaginator(),
        output=str(folder / "items.jsonl"),
    )
    run = kill_at_page_3(api, operator, folder)
    assert isinstance(run.error, OutputAborted), run.error
    assert list(folder.iterdir()) == []  # neither the final file nor a .partial
    assert api.stats.api_requests == 3  # page 3 was in flight; page 4 was never asked for
    assert connections_to(api) == []


def test_on_kill_stops_an_http_operator_style_pull_before_the_next_page(api: DevServer) -> None:
    def next_page(response: requests.Response) -> dict[str, Any] | None:
        body = response.json()
        return {"data": {"page": body["page"] + 1}} if body["page"] < body["total_pages"] else None

    operator = OAuthHttpOperator(
        task_id="pull",
        oauth_conn_id="crm",
        endpoint="/v1/page/items",
        data={"per_page": 50},
        pagination_function=next_page,
    )
    run = kill_at_page_3(api, operator, None)
    assert isinstance(run.error, PullStopped), run.error
    assert str(run.error) == "Page 4: not sent, the pull was stopped"
    assert api.stats.api_requests == 3
    assert connections_to(api) == []


def test_on_kill_before_or_after_a_run_does_nothing(tmp_path: Path) -> None:
    operator = OAuthHttpOperator(
        task_id="pull", oauth_conn_id="crm", endpoint="/v1/link/items", output=str(tmp_path / "x")
    )
    operator.on_kill()
    operator.execute({})
    operator.on_kill()
    assert [p.name for p in tmp_path.iterdir()] == ["x"]
