"""OAuthHttpOperator when the API misbehaves: per-page retries that never repeat a page,
Retry-After honoured and bounded, and output that only appears once the pull completed."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests

from airflow_provider_oauthcc.auth.errors import ApiError
from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pull.pagination import LinkHeaderPaginator
from devserver import DevServer
from tests.support.connections import conn_json

from .conftest import API_SECRET, api_connection

pytestmark = pytest.mark.integration

SECRET = API_SECRET


@pytest.fixture(autouse=True)
def crm(api: DevServer, monkeypatch: pytest.MonkeyPatch) -> str:
    return api_connection(api, monkeypatch, records=250)


def link_pull(target: Path, **kwargs: Any) -> OAuthHttpOperator:
    kwargs.setdefault("data", {"limit": 40})
    return OAuthHttpOperator(
        task_id="pull",
        oauth_conn_id="crm",
        endpoint="/v1/link/items",
        paginate=LinkHeaderPaginator(),
        output=str(target),
        **kwargs,
    )


def ids_in(path: Path) -> list[int]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def page_afters(api: DevServer, status: int) -> list[str]:
    """The ``after`` parameter of every API request answered with ``status``."""
    return [
        parse_qs(c.query_string).get("after", ["0"])[0]
        for c in api.stats.api_captures
        if c.status == status
    ]


# -- retries --------------------------------------------------------------------------------------


def test_5xx_mid_pull_retries_that_page_only(api: DevServer, tmp_path: Path) -> None:
    api.api_faults.add(status=503, every=3)  # every third request, all pull long
    target = tmp_path / "items.jsonl"
    summary = link_pull(target).execute({})
    assert ids_in(target) == list(range(1, 251))
    served = page_afters(api, 200)
    assert len(served) == len(set(served)) == 7, "a page was fetched twice"
    assert served[0] == "0", "the pull restarted"
    failed = page_afters(api, 503)
    assert len(failed) == summary["retries"] >= 3
    assert set(failed) <= set(served)


@pytest.mark.parametrize("status", [500, 502, 504])
def test_other_5xx_are_retried_with_backoff(status: int, api: DevServer, tmp_path: Path) -> None:
    api.api_faults.add(status=status, times=2)
    summary = link_pull(tmp_path / "items.jsonl").execute({})
    assert summary["records"] == 250 and summary["retries"] == 2


def test_429_waits_for_retry_after(api: DevServer, tmp_path: Path) -> None:
    api.dataset_size = 80
    api.api_faults.add(status=429, retry_after=1, times=1)
    started = time.monotonic()
    summary = link_pull(tmp_path / "items.jsonl").execute({})
    assert time.monotonic() - started >= 1.0
    assert summary["retries"] == 1 and summary["records"] == 80


def test_retry_after_is_bounded_by_retry_max_wait(
    api: DevServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    api.dataset_size = 80
    api.api_faults.add(status=503, retry_after=3600, times=1)
    summary = link_pull(tmp_path / "items.jsonl", retry_max_wait=0.2).execute({})
    assert summary["retries"] == 1
    # The wait the operator chose, as it logs it (an hour if Retry-After were obeyed blindly).
    logs = "".join(capfd.readouterr())
    assert "Page 1: 503:Service Unavailable on attempt 1; retrying in 0.2 s" in logs, logs[-2000:]


def test_read_timeouts_are_retried(api: DevServer, tmp_path: Path) -> None:
    api.dataset_size = 80
    # The first request is held until released: slower than the 3 s timeout on any machine.
    held = api.api_faults.add(hold=True, times=1)
    try:
        summary = link_pull(tmp_path / "items.jsonl", extra_options={"timeout": 3}).execute({})
    finally:
        held.release()
    assert held.held == 1
    assert summary["retries"] == 1 and summary["records"] == 80


def test_retries_give_up_after_page_retries(api: DevServer, tmp_path: Path) -> None:
    api.api_faults.add(status=503, times=10)
    with pytest.raises(ApiError) as info:
        link_pull(tmp_path / "items.jsonl", page_retries=2).execute({})
    assert info.value.status == 503
    assert api.stats.api_requests_by_status[503] == 3
    assert list(tmp_path.iterdir()) == []


def test_401_refreshes_the_token_and_replays_once(api: DevServer, tmp_path: Path) -> None:
    api.api_faults.add(status=401, times=1)
    summary = link_pull(tmp_path / "items.jsonl").execute({})
    assert summary["records"] == 250 and summary["retries"] == 0
    assert api.stats.token_requests == 2


def test_post_is_not_resent_after_a_500(api: DevServer) -> None:
    api.api_faults.add(status=500, times=1)
    operator = OAuthHttpOperator(
        task_id="post", oauth_conn_id="crm", endpoint="/v1/echo", method="POST", data={"a": "1"}
    )
    with pytest.raises(ApiError):
        operator.execute({})
    assert api.stats.api_requests_by_status == {500: 1}


def test_post_is_resent_after_a_503_that_says_it_did_nothing(api: DevServer) -> None:
    api.api_faults.add(status=503, times=1)
    operator = OAuthHttpOperator(
        task_id="post", oauth_conn_id="crm", endpoint="/v1/echo", method="POST", data={"a": "1"}
    )
    assert json.loads(operator.execute({}))["form"] == {"a": ["1"]}
    assert api.stats.api_requests == 2


def test_retry_args_replace_the_default_policy(api: DevServer, tmp_path: Path) -> None:
    import tenacity

    api.api_faults.add(status=503, times=10)
    retry_args = {
        "stop": tenacity.stop_after_attempt(4),
        "wait": tenacity.wait_none(),
        "retry": tenacity.retry_if_exception_type(ApiError),
        "reraise": True,
    }
    with pytest.raises(ApiError):
        link_pull(tmp_path / "items.jsonl", retry_args=retry_args).execute({})
    assert api.stats.api_requests_by_status == {503: 4}


# -- atomic output --------------------------------------------------------------------------------


def test_a_pull_failing_half_way_leaves_nothing_at_the_final_path(
    api: DevServer, tmp_path: Path
) -> None:
    api.api_faults.add(status=400, every=4)  # page 4 is refused, not retried
    target = tmp_path / "out" / "items.jsonl"
    with pytest.raises(ApiError):
        link_pull(target).execute({})
    assert api.stats.api_requests == 4
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == [], "a temporary file was left behind"


def test_a_failed_rerun_keeps_the_previous_complete_file(api: DevServer, tmp_path: Path) -> None:
    target = tmp_path / "items.jsonl"
    link_pull(target).execute({})
    before = target.read_bytes()
    api.api_faults.add(status=400, every=3)
    with pytest.raises(ApiError):
        link_pull(target).execute({})
    assert target.read_bytes() == before
    assert list(tmp_path.iterdir()) == [target]


def test_a_retried_task_writes_each_record_once(api: DevServer, tmp_path: Path) -> None:
    target = tmp_path / "items.jsonl"
    fault = api.api_faults.add(status=400, every=5)
    with pytest.raises(ApiError):
        link_pull(target).execute({})  # try 1 fails on page 5
    api.api_faults.clear()
    assert fault.fired == 1
    summary = link_pull(target).execute({})  # try 2, as Airflow's task retry would run it
    assert ids_in(target) == list(range(1, 251)) and summary["records"] == 250


def test_an_empty_window_still_lands_an_empty_file(api: DevServer, tmp_path: Path) -> None:
    api.dataset_size = 0
    target = tmp_path / "items.jsonl"
    summary = link_pull(target).execute({})
    assert target.read_bytes() == b"" and summary["records"] == 0 and summary["pages"] == 1


def test_session_connection_errors_are_retried_then_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: DevServer
) -> None:
    """Nothing listens on the API port: connection errors are retried, then raised."""
    dead = conn_json("http://127.0.0.1:9", "app", SECRET, auth_url=api.token_url, scope="read")
    monkeypatch.setenv("AIRFLOW_CONN_CRM", dead)
    with pytest.raises(requests.exceptions.ConnectionError):
        link_pull(tmp_path / "items.jsonl", page_retries=2, retry_max_wait=0.05).execute({})
    assert list(tmp_path.iterdir()) == []
