"""Fail-fast errors under the real ``airflow dags test``: a task with ``retries=2`` whose client
secret is wrong fails on its first try (one token request), while the same task meeting a 500
from the API is tried three times: Airflow's task runner, not a test double, decides."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devserver import DevServer
from tests.support.connections import conn_json
from tests.support.stage import airflow_3_0_dags_test_gap

pytestmark = [pytest.mark.e2e, airflow_3_0_dags_test_gap()]

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
SECRET = "s3cret-Value-failfast-6061"
DAG = """
from datetime import timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator

with DAG("oauthcc_fail_fast", schedule=None):
    OAuthHttpOperator(
        task_id="call",
        oauth_conn_id="api",
        endpoint="/v1/whoami",
        page_retries=0,
        retries=2,
        retry_delay=timedelta(seconds=0),
    )
"""


def airflow_env(home: Path, dags: Path, api: DevServer, secret: str) -> dict[str, str]:
    return dict(
        os.environ,
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW_CONN_API=conn_json(api.api_url, "app", secret, auth_url=api.token_url),
    )


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    dags = tmp_path_factory.mktemp("dags")
    (dags / "fail_fast.py").write_text(DAG)
    first = tmp_path_factory.mktemp("airflow-home")
    env = dict(os.environ, AIRFLOW_HOME=str(first), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    done = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    second = tmp_path_factory.mktemp("airflow-home")
    shutil.copy(first / "airflow.db", second / "airflow.db")
    yield dags, first, second


def test_a_refused_credential_does_not_burn_retries_but_an_api_error_does(
    homes: tuple[Path, Path, Path],
) -> None:
    dags, wrong_home, flaky_home = homes
    with DevServer() as wrong_api, DevServer() as flaky_api:
        for api in (wrong_api, flaky_api):
            api.add_client("app", secret=SECRET)
        flaky_api.api_faults.add(status=500, every=1)
        command = [AIRFLOW, "dags", "test", "oauthcc_fail_fast"]
        # Both runs at once: two cores, half the wait.
        wrong = subprocess.Popen(
            command,
            env=airflow_env(wrong_home, dags, wrong_api, "wrong-secret-value"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        flaky = subprocess.Popen(
            command,
            env=airflow_env(flaky_home, dags, flaky_api, SECRET),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wrong_out, _ = wrong.communicate(timeout=400)
        flaky_out, _ = flaky.communicate(timeout=400)

        assert "TokenRequestRejected" in wrong_out, wrong_out[-4000:]
        assert "invalid_client" in wrong_out
        assert wrong_api.stats.token_requests == 1, wrong_out[-4000:]
        assert wrong_api.stats.api_requests_by_status == {}
        assert "wrong-secret-value" not in wrong_out

        assert "ApiError" in flaky_out, flaky_out[-4000:]
        assert flaky_api.stats.api_requests_by_status == {500: 3}, flaky_out[-4000:]
