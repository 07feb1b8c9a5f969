"""OAuthHttpSensor in ``mode="reschedule"`` under the real ``airflow dags test``: each poke is a
run of its own, and between pokes the task is up for reschedule (a ``task_reschedule`` row in
the metadata database), not a process poking in a loop.

The export job is ``manual``: it stays ``pending`` until the test, woken by the API's count of
status requests (not by a timer), marks it ``done`` after the third poke."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devserver import DevServer
from tests.support.connections import conn_json
from tests.support.stage import airflow_3_0_dags_test_gap

pytestmark = [pytest.mark.e2e, airflow_3_0_dags_test_gap()]


def _airflow_version() -> tuple[int, int]:
    from airflow import __version__

    major, minor = __version__.split(".")[:2]
    return int(major), int(minor)


AIRFLOW = str(Path(sys.executable).with_name("airflow"))
SECRET = "s3cret-Value-reschedule-31c4"
NOT_DONE_POKES = 3
DAG = """
from datetime import UTC, datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_oauthcc.sensors.oauth_http import OAuthHttpSensor

with DAG(dag_id="oauthcc_reschedule", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC)):
    OAuthHttpSensor(
        task_id="wait_for_export",
        oauth_conn_id="api",
        endpoint="/v1/exports/exp-1",
        response_check=lambda response: response.json()["status"] == "done",
        mode="reschedule",
        poke_interval=1,
        timeout=600,
    )
"""


@pytest.mark.skipif(
    (3, 1) <= _airflow_version() < (3, 2),
    reason="Airflow 3.1's dag.test() hands sensors the first reschedule date as a string, so "
    "any sensor's second poke in reschedule mode fails in BaseSensorOperator.execute "
    "(TypeError: datetime - str; apache/airflow#58777); deployments are not affected",
)
def test_a_rescheduling_sensor_gives_its_slot_back_between_pokes(tmp_path: Path) -> None:
    home, dags = tmp_path / "home", tmp_path / "dags"
    dags.mkdir()
    (dags / "reschedule.py").write_text(DAG)
    env = dict(
        os.environ,
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
    )
    migrated = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert migrated.returncode == 0, migrated.stdout[-2000:] + migrated.stderr[-2000:]
    with DevServer() as api:
        api.add_client("app", secret=SECRET)
        job = api.exports.create(manual=True)
        assert job.id == "exp-1"
        env["AIRFLOW_CONN_API"] = conn_json(api.api_url, "app", SECRET, auth_url=api.token_url)
        output_file = tmp_path / "output"
        with output_file.open("w") as output:
            process = subprocess.Popen(
                [AIRFLOW, "dags", "test", "oauthcc_reschedule"],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 240
            while job.status_polls < NOT_DONE_POKES:  # woken by the API; a dead run fails now
                with contextlib.suppress(TimeoutError):
                    job.wait_polls(NOT_DONE_POKES, timeout=2)
                alive = process.poll() is None and time.monotonic() < deadline
                assert alive, f"{job.status_polls} polls\n" + output_file.read_text()[-4000:]
            job.set_status("done")
            process.wait(timeout=240)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        text = output_file.read_text()
        assert process.returncode == 0, text[-4000:]
        assert "state=success" in text, text[-4000:]
        assert SECRET not in text
        polls = job.status_polls

    with sqlite3.connect(home / "airflow.db") as db:
        if _airflow_version() >= (3, 0):
            [(state, try_number, ti_id)] = db.execute(
                "SELECT state, try_number, id FROM task_instance WHERE task_id = 'wait_for_export'"
            ).fetchall()
            reschedules = db.execute(
                "SELECT start_date, end_date, reschedule_date FROM task_reschedule WHERE ti_id = ? ORDER BY id",
                (ti_id,),
            ).fetchall()
        else:  # Airflow 2.x's schema: no task-instance id, reschedules keyed by task and run
            [(state, try_number)] = db.execute(
                "SELECT state, try_number FROM task_instance WHERE task_id = 'wait_for_export'"
            ).fetchall()
            reschedules = db.execute(
                "SELECT start_date, end_date, reschedule_date FROM task_reschedule "
                "WHERE task_id = 'wait_for_export' ORDER BY id"
            ).fetchall()
    assert (state, try_number) == ("success", 1)  # rescheduled, never failed and retried
    # One reschedule for each poke that found the job not done; the last poke found it done.
    assert polls >= NOT_DONE_POKES + 1
    assert len(reschedules) == polls - 1, (polls, reschedules)
    # Each poke was a run of its own, each due later than the one before.
    assert len({start for start, _, _ in reschedules}) == len(reschedules)
    due = [due for _, _, due in reschedules]
    assert due == sorted(set(due))
