"""Deferrable tasks under the real ``airflow dags test``, which runs each trigger in line:
the example export-job DAG (POST, deferrable sensor, download) against the local API, with
2-second tokens so that the triggerer must refresh them while the sensor is deferred; and a
paginated pull run both ways, whose XComs must agree. ``dags test`` runs the trigger in the
process and token cache of the tasks, so the last test runs the trigger again in a process of
its own that shares only a file token cache with the run (a real triggerer:
test_real_triggerer.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devserver import DevServer
from devserver.dataset import EPOCH, STEP
from tests.support.connections import conn_json
from tests.support.leak_scan import without_airflow_30_mask_requests

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
SECRET = "s3cret-Value-deferred-5150"
DAY = datetime(2024, 1, 5, tzinfo=UTC)


@dataclass
class DagTest:
    """One ``airflow dags test`` process with its own AIRFLOW_HOME and local API."""

    api: DevServer
    home: Path
    dags: Path
    process: subprocess.Popen[str] | None = None
    _output: str | None = None

    #: Connection extras beyond the token endpoint (a shared token cache, say).
    extras: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The environment of this run's processes: its home, its DAGs, the connection."""
        return dict(
            os.environ,
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__UNIT_TEST_MODE="False",
            AIRFLOW_CONN_EXAMPLE_API=conn_json(
                self.api.api_url,
                "dags-client",
                SECRET,
                auth_url=self.api.token_url,
                **self.extras,
            ),
        )

    def start(self, dag_id: str, logical_date: str, **env: str) -> None:
        self.process = subprocess.Popen(
            [AIRFLOW, "dags", "test", dag_id, logical_date],
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def output(self) -> str:
        """The run's output, once it finished and succeeded, without a secret or token."""
        assert self.process is not None
        if self._output is None:
            self._output, _ = self.process.communicate(timeout=240)
        output = self._output
        assert self.process.returncode == 0, output[-4000:]
        assert "state=success" in output, output[-4000:]
        output = without_airflow_30_mask_requests(output)
        assert SECRET not in output
        for capture in self.api.stats.api_captures:
            token = capture.headers["Authorization"].split()[1]
            assert token not in output and token.split(".")[2] not in output
        return output

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def bearer_tokens_of_polls(api: DevServer) -> list[str]:
    return [
        c.headers["Authorization"] for c in api.stats.api_captures if c.path == "/v1/exports/exp-1"
    ]


def drive_export(api: DevServer, timeout: float = 240.0) -> None:
    """Moves the export job on when the run has reached each point, never by the clock:
    ``running`` once the triggerer has polled with a refreshed token (the first token expired
    while the sensor was deferred), ``done`` once the triggerer polls again after that."""
    deadline = time.monotonic() + timeout
    while (job := api.exports.get("exp-1")) is None:
        if time.monotonic() > deadline:
            return
        time.sleep(0.1)
    while len(set(bearer_tokens_of_polls(api)[1:])) < 2:  # [0]: the task's own first check
        if time.monotonic() > deadline:
            return
        job.wait_polls(job.status_polls + 1, timeout=max(1.0, deadline - time.monotonic()))
    job.set_status("running")
    job.wait_polls(job.status_polls + 2, timeout=max(1.0, deadline - time.monotonic()))
    job.set_status("done")


def migrated_home(path: Path) -> Path:
    env = dict(os.environ, AIRFLOW_HOME=str(path), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    result = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, DagTest]]:
    """Both DAGs under ``airflow dags test`` at once, each with its own home and API."""
    home = migrated_home(tmp_path_factory.mktemp("airflow-home"))
    second = tmp_path_factory.mktemp("airflow-home")
    shutil.copy(home / "airflow.db", second / "airflow.db")
    with DevServer() as export_api, DevServer() as pull_api:
        export_api.add_client("dags-client", secret=SECRET, scope="read", token_lifetime=2)
        export_api.exports.manual = True  # moved on by drive_export, not by the clock
        pull_api.add_client("dags-client", secret=SECRET, scope="read")
        pull_api.dataset_size = 200
        export = DagTest(export_api, home, REPO / "dags_examples")
        export.start(
            "oauthcc_export_job",
            DAY.isoformat(),
            OAUTHCC_EXAMPLE_OUTPUT=f"file://{home / 'output'}",
            OAUTHCC_EXAMPLE_POKE_INTERVAL="0.5",
        )
        # A file token cache shared by every process of this run (see the last test).
        cache = {"cache_backend": "file", "cache_dir": str(second / "token-cache")}
        pull = DagTest(pull_api, second, Path(__file__).parent / "dags", extras=cache)
        pull.start("oauthcc_deferrable_pull", DAY.isoformat())
        driver = threading.Thread(target=drive_export, args=(export_api,), daemon=True)
        driver.start()
        try:
            yield {"export": export, "pull": pull}
        finally:
            export.stop()
            pull.stop()


@pytest.fixture
def export_run(runs: dict[str, DagTest]) -> DagTest:
    return runs["export"]


def test_export_job_waits_deferred_and_downloads(export_run: DagTest) -> None:
    output = export_run.output()
    landed = export_run.home / "output" / "exports" / "2024-01-05" / "export.jsonl"
    first = (DAY - EPOCH) // STEP + 1
    ids = [json.loads(line)["id"] for line in landed.read_text().splitlines()]
    assert ids == list(range(first, first + 24))
    assert "Exported 24 records in 1 pages" in output
    # The sensor waited in the triggerer, which woke it only for a new status: "running",
    # then "done" (the job stays "pending" until the triggerer polled with a second token).
    deferrals = _distinct_lines(output, "Deferring: the triggerer polls /v1/exports/exp-1")
    assert deferrals == 2
    assert (
        _distinct_lines(output, "The triggerer saw a new answer from /v1/exports/exp-1")
        == deferrals
    )
    job = export_run.api.exports.get("exp-1")
    assert job is not None and job.status_polls >= 1 + deferrals


def test_two_second_tokens_are_refreshed_in_the_triggerer(export_run: DagTest) -> None:
    export_run.output()
    stats = export_run.api.stats
    assert stats.token_requests >= 2  # the deferred wait outlived the first 2-second token
    # Refreshed before expiry: the early-refresh margin of a 2 s token is 1 s, so a poll stalled
    # longer than that on a loaded machine may meet one 401 (then refreshed and replayed), as
    # in tests/integration/test_deferrable_sensor.py; without early refresh every renewal would.
    assert set(stats.api_requests_by_status) <= {200, 202, 401}
    assert stats.api_requests_by_status.get(401, 0) <= 1, "tokens were used expired"
    # The first status request is the task's own check; the next ones, until "running", are
    # the triggerer's polls, which carried more than one token: it refreshed while deferred.
    polls = bearer_tokens_of_polls(export_run.api)
    assert len(set(polls[1:])) >= 2, len(polls)


def test_deferrable_pull_resumes_with_the_sync_xcom(runs: dict[str, DagTest]) -> None:
    run = runs["pull"]
    output = run.output()
    assert "Same XCom from both pulls: 200 records" in output
    assert "Deferring: the triggerer sends GET /v1/cursor/items" in output
    # 5 pages each way; page 1 of the deferred pull came from the triggerer, sent once.
    assert run.api.stats.api_requests_by_status == {200: 10}
    # ``dags test`` runs the tasks and the trigger in one process: one token for all of it.
    assert run.api.stats.token_requests == 1


TRIGGER_ALONE = """
import asyncio, sys
from airflow_provider_oauthcc.triggers.oauth_http import OAuthHttpTrigger

async def first_event():
    trigger = OAuthHttpTrigger("example_api", "/v1/cursor/items", data={"limit": 40})
    async for event in trigger.run():
        return event.payload

event = asyncio.run(first_event())
print("trigger event:", event["status"], event.get("response", {}).get("status_code"))
sys.exit(0 if event["status"] == "success" else 1)
"""


def test_a_trigger_in_another_process_uses_the_token_the_run_cached(
    runs: dict[str, DagTest],
) -> None:
    """The deferred pull's trigger, run alone in a fresh process (as a triggerer runs it, apart
    from the workers) with the same connection, finds the token the ``dags test`` process left
    in the shared file cache: no token request, and the API sees the same bearer token."""
    run = runs["pull"]
    run.output()  # the DAG run is over
    assert list((run.home / "token-cache").iterdir()), "the run left no token in the file cache"
    stats = run.api.stats
    tokens_before = stats.token_requests
    result = subprocess.run(
        [sys.executable, "-c", TRIGGER_ALONE],
        env=run.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "trigger event: success 200" in result.stdout
    assert stats.token_requests == tokens_before == 1
    *by_the_run, by_the_trigger = [c.headers["Authorization"] for c in stats.api_captures]
    assert len(by_the_run) == 10 and set(by_the_run) == {by_the_trigger}
    assert SECRET not in result.stdout + result.stderr


def _distinct_lines(output: str, text: str) -> int:
    """Log lines with ``text``, each event counted once: Airflow 2.x's `dags test` prints every
    task log line twice, with the time in two formats (``12:37:53,033`` and ``12:37:53.033``)."""
    events = set()
    for line in output.splitlines():
        if text in line:
            stamp = re.search(r"(\d\d:\d\d:\d\d)[.,](\d{3})", line)
            events.add((stamp.groups() if stamp else line, line[line.index(text) :]))
    return len(events)
