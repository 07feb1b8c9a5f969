"""OAuthHttpSensor in poke and deferrable mode, and OAuthHttpSensorTrigger, against export jobs
of the local API; a token that expires while the task is deferred is refreshed there."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    PokeReturnValue,
)

from airflow_provider_oauthcc.auth.errors import ApiError
from airflow_provider_oauthcc.sensors.oauth_http import OAuthHttpSensor
from airflow_provider_oauthcc.triggers import events
from airflow_provider_oauthcc.triggers.oauth_http import OAuthHttpSensorTrigger
from devserver import DevServer
from devserver.exports import ExportJob
from tests.support.connections import airflow_conn, conn_json
from tests.support.deferral import Deferrals, first_event, run_deferrable

from .conftest import SECRET

CONN = "jobs_api"


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    """One server for the module (the tests reset it): starting one per test costs more."""
    with DevServer(api_workers=64) as srv:
        srv.add_client("app", secret=SECRET, scope="read write", default_scope="read")
        yield srv


@pytest.fixture(autouse=True)
def _reset(server: DevServer) -> None:
    server.reset()


@pytest.fixture
def conn(server: DevServer) -> Iterator[str]:
    with airflow_conn(CONN, conn_json(server.api_url, "app", SECRET, auth_url=server.token_url)):
        yield CONN


def start_export(server: DevServer, ready_after: float, fail: bool = False) -> str:
    job = server.exports.create(ready_after=ready_after, fail=fail)
    return f"/v1/exports/{job.id}"


def manual_export(server: DevServer) -> tuple[str, ExportJob]:
    """A job that changes state only when the test says so (no clock involved)."""
    job = server.exports.create(manual=True)
    return f"/v1/exports/{job.id}", job


@contextmanager
def in_background(action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` (which waits on the server's signals) beside the task; re-raise its error."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    thread.join(timeout=60)
    assert not thread.is_alive(), "the background driver hung"
    if errors:
        raise errors[0]


def export_ready(response: requests.Response) -> bool | PokeReturnValue:
    job = response.json()
    if job["status"] == "failed":
        raise AirflowFailException(f"export {job['id']} failed")
    if job["status"] != "done":
        return False
    return PokeReturnValue(is_done=True, xcom_value=job["download"])


def sensor(endpoint: str, **kwargs: Any) -> OAuthHttpSensor:
    kwargs.setdefault("poke_interval", 0.2)
    kwargs.setdefault("timeout", 30)
    return OAuthHttpSensor(task_id="wait", oauth_conn_id=CONN, endpoint=endpoint, **kwargs)


def test_poke_mode_waits_for_the_job(server: DevServer, conn: str) -> None:
    endpoint, job = manual_export(server)
    task = sensor(endpoint, response_check=export_ready)

    def finish_after_two_polls() -> None:
        job.wait_polls(2)  # "not yet" twice
        job.set_status("done")

    with in_background(finish_after_two_polls):
        download = task.execute({})
    assert download.endswith(f"{endpoint}/download")
    assert job.status_polls >= 3
    assert server.stats.token_requests == 1


def test_poke_mode_404_is_not_yet_and_other_errors_fail(server: DevServer, conn: str) -> None:
    assert sensor("/v1/exports/exp-missing").poke({}) is False
    server.api_faults.add(status=500)
    with pytest.raises(ApiError, match="500"):
        sensor("/v1/whoami").poke({})


def test_deferrable_mode_wakes_the_task_once_per_job_state(server: DevServer, conn: str) -> None:
    endpoint, job = manual_export(server)
    task = sensor(endpoint, response_check=export_ready, deferrable=True)

    def advance() -> None:
        job.wait_polls(3)  # the task's check, then the triggerer polls "pending" twice
        job.set_status("running")
        # The triggerer sees "running" (the task wakes, defers again), then the new trigger
        # polls "running" again without waking the task.
        job.wait_polls(job.status_polls + 2)
        job.set_status("done")

    deferrals = Deferrals()
    with in_background(advance):
        download = run_deferrable(task, {}, deferrals)
    assert download.endswith(f"{endpoint}/download")
    # pending (checked in the task), then the triggerer: running, done.
    assert deferrals.count == 2
    assert [e["status"] for e in deferrals.events] == ["success", "success"]
    statuses = [events.decode_response(e["response"]).json()["status"] for e in deferrals.events]
    assert statuses == ["running", "done"]
    assert job.status_polls > 2 + deferrals.count  # polls the task never saw
    for classpath, kwargs in deferrals.stored:
        assert classpath.endswith("OAuthHttpSensorTrigger")
        assert kwargs["oauth_conn_id"] == CONN and kwargs["endpoint"] == endpoint
        assert SECRET not in json.dumps(kwargs)


def test_deferrable_mode_without_response_check_ends_on_the_first_answer(
    server: DevServer, conn: str
) -> None:
    task = sensor("/v1/whoami", deferrable=True)
    assert run_deferrable(task, {}) is None
    assert server.stats.api_requests == 1  # the first check in the task; no deferral


def test_deferrable_mode_waits_through_404s(server: DevServer, conn: str) -> None:
    job_id = f"exp-{len(server.exports) + 1}"  # the id of the next export
    task = sensor(f"/v1/exports/{job_id}", deferrable=True, response_check=export_ready)

    def create_after_three_404s() -> None:
        # The export appears (done at once) after the API answered 404 for it three times.
        server.exports.wait_misses(job_id, 3)
        server.exports.create(ready_after=0)

    deferrals = Deferrals()
    with in_background(create_after_three_404s):
        assert run_deferrable(task, {}, deferrals).endswith(f"/v1/exports/{job_id}/download")
    assert deferrals.count == 1
    assert server.stats.api_requests_by_status[404] >= 3


def test_token_expiring_while_deferred_is_refreshed_in_the_triggerer(server: DevServer) -> None:
    server.add_client("short", secret=SECRET, token_lifetime=2)
    value = conn_json(server.api_url, "short", SECRET, auth_url=server.token_url)
    endpoint = start_export(server, ready_after=3.5)
    with airflow_conn(CONN, value):
        task = sensor(endpoint, response_check=export_ready, deferrable=True, poke_interval=0.25)
        started = time.monotonic()
        assert run_deferrable(task, {}).endswith("/download")
    assert time.monotonic() - started >= 3.0
    # One token for the task's own check, then one per second of the 2-second tokens.
    assert server.stats.token_requests >= 3
    # Refreshed before expiry: the early-refresh margin of a 2 s token is 1 s, so a poll stalled
    # longer than that on a loaded machine may meet one 401 (then refreshed and replayed).
    assert server.stats.api_requests_by_status.get(401, 0) <= 1


def test_deferrable_mode_error_fails_the_task_with_api_error(server: DevServer, conn: str) -> None:
    endpoint = start_export(server, ready_after=10.0)
    task = sensor(endpoint, response_check=export_ready, deferrable=True)
    server.api_faults.add(status=500, every=2)  # the task's check passes, the triggerer's fails
    deferrals = Deferrals()
    with pytest.raises(ApiError) as caught:
        run_deferrable(task, {}, deferrals)
    assert type(caught.value) is ApiError and caught.value.status == 500
    assert [e["status"] for e in deferrals.events] == ["error"]


def test_failed_job_fails_the_task(server: DevServer, conn: str) -> None:
    endpoint = start_export(server, ready_after=0.5, fail=True)
    task = sensor(endpoint, response_check=export_ready, deferrable=True)
    with pytest.raises(AirflowFailException, match="failed"):
        run_deferrable(task, {})


def test_timeout_in_the_triggerer(server: DevServer, conn: str) -> None:
    endpoint = start_export(server, ready_after=60.0)
    task = sensor(endpoint, response_check=export_ready, deferrable=True, timeout=1)
    with pytest.raises(AirflowSensorTimeout, match="timed out"):
        run_deferrable(task, {})
    soft = sensor(endpoint, response_check=export_ready, deferrable=True, timeout=1, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        run_deferrable(soft, {})


def test_sensor_trigger_skips_the_answer_the_task_already_rejected(
    server: DevServer, conn: str
) -> None:
    endpoint, job = manual_export(server)
    first = requests.get(
        server.api_url + endpoint,
        headers={"Authorization": f"Bearer {_token(server)}"},
        timeout=5,
    )
    assert first.json()["status"] == "pending"
    trigger = OAuthHttpSensorTrigger(
        CONN, endpoint, poke_interval=0.1, seen_digest=events.response_digest(first)
    )

    def run_after_the_trigger_saw_pending_again() -> None:
        job.wait_polls(3)
        job.set_status("running")

    with in_background(run_after_the_trigger_saw_pending_again):
        event = asyncio.run(first_event(trigger)).payload
    assert events.decode_response(event["response"]).json()["status"] == "running"
    assert event["deadline"] is None


def _token(server: DevServer) -> str:
    response = requests.post(
        server.token_url,
        data={"grant_type": "client_credentials"},
        auth=("app", SECRET),
        timeout=5,
    )
    return str(response.json()["access_token"])


@pytest.mark.parametrize("deferrable", [False, True])
def test_check_response_false_shows_every_status_to_response_check(
    server: DevServer, conn: str, deferrable: bool
) -> None:
    """As HttpSensor: the allowlist no longer applies, response_check judges a 404 too."""
    seen: list[int] = []

    def gone(response: requests.Response) -> bool:
        seen.append(response.status_code)
        return response.status_code == 404

    task = sensor(
        "/v1/exports/exp-deleted",
        response_check=gone,
        extra_options={"check_response": False},
        deferrable=deferrable,
    )
    assert run_deferrable(task, {}) is None
    assert seen == [404]
