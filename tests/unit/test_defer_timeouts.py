"""Deferrable mode honours Airflow's settings (issue 11 item 4, operator and sensor part).

``[operators] default_deferrable`` sets the default of ``deferrable``, as in official providers;
a deferred operator or sensor defers with a timeout (``execution_timeout`` / the sensor's
``timeout``), so a stuck trigger fails the task instead of parking it forever.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.sensors.oauth_http import OAuthHttpSensor
from tests.support.connections import airflow_conn, conn_json


@pytest.fixture(autouse=True)
def conn() -> Iterator[str]:
    # Deferring sends nothing: the connection only has to parse.
    value = conn_json(
        "http://127.0.0.1:9", "app", "s3cret-defer-2718", auth_url="http://127.0.0.1:9/token"
    )
    with airflow_conn("deferred", value):
        yield "deferred"


def deferral_of(task: OAuthHttpOperator | OAuthHttpSensor) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as caught:
        task.execute({})
    return caught.value


def test_a_deferred_operator_times_out_with_its_execution_timeout() -> None:
    task = OAuthHttpOperator(
        task_id="t",
        oauth_conn_id="deferred",
        endpoint="/v1/report",
        deferrable=True,
        execution_timeout=timedelta(minutes=7),
    )
    assert deferral_of(task).timeout == timedelta(minutes=7)


def test_a_deferred_operator_without_execution_timeout_still_has_a_bound() -> None:
    """The trigger's own worst case (every attempt timing out, every wait) plus a margin."""
    task = OAuthHttpOperator(
        task_id="t",
        oauth_conn_id="deferred",
        endpoint="/v1/report",
        deferrable=True,
        page_retries=2,
        retry_max_wait=10,
        extra_options={"timeout": 20},
    )
    timeout = deferral_of(task).timeout
    assert timeout is not None
    assert timedelta(seconds=3 * 20 + 2 * 10) < timeout <= timedelta(hours=1)


def test_a_deferred_sensor_times_out_with_its_timeout() -> None:
    task = OAuthHttpSensor(
        task_id="s",
        oauth_conn_id="deferred",
        endpoint="/v1/exports/1",
        deferrable=True,
        timeout=600,
        poke_interval=30,
    )
    task._first_check = lambda context: (False, None)  # type: ignore[method-assign]
    timeout = deferral_of(task).timeout
    assert timeout is not None
    assert timedelta(seconds=600) <= timeout <= timedelta(seconds=600 + 30 + 120)


@pytest.mark.parametrize("setting", ["True", "False"])
def test_default_deferrable_comes_from_the_operators_section(setting: str) -> None:
    code = textwrap.dedent(
        """
        from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
        from airflow_provider_oauthcc.sensors.oauth_http import OAuthHttpSensor
        print(OAuthHttpOperator(task_id="t", endpoint="/x").deferrable,
              OAuthHttpSensor(task_id="s", endpoint="/x").deferrable)
        """
    )
    env = {**os.environ, "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": setting}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    # the last line: Airflow 3.0 logs to stdout while the operator module loads
    assert done.stdout.splitlines()[-1:] == [f"{setting} {setting}"], done.stderr[-2000:]
