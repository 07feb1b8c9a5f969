"""The event-driven example (dags_examples/example_event_driven_pull.py) in a real Airflow
deployment (api-server, scheduler, dag-processor, triggerer): records appended to the local
API's change feed start exactly one DAG run each time, whose pull writes exactly those
records; a quiet feed starts nothing; a triggerer killed while records arrive resumes without
a duplicate or a miss; revoked tokens are refreshed."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devserver import DevServer
from tests.support.airflow_deployment import AirflowDeployment
from tests.support.connections import conn_json

pytestmark = [pytest.mark.e2e, pytest.mark.load, pytest.mark.timeout(900)]

airflow_sdk = pytest.importorskip("airflow.sdk", reason="asset watchers are Airflow 3+")

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "dags_examples" / "example_event_driven_pull.py"
DAG_ID = "oauthcc_event_driven_pull"
SECRET = "s3cret-Value-events-5151"
POLL_INTERVAL = 2.0
RUN_WITHIN = 240.0


@pytest.fixture
def api() -> Iterator[DevServer]:
    with DevServer(api_workers=16) as srv:
        srv.add_client("dags-client", secret=SECRET, scope="read")
        yield srv


@pytest.fixture
def deployment(api: DevServer, tmp_path: Path) -> Iterator[AirflowDeployment]:
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(EXAMPLE, dags / EXAMPLE.name)
    env = {
        "AIRFLOW_CONN_EXAMPLE_API": conn_json(
            api.api_url, "dags-client", SECRET, auth_url=api.token_url, scope="read"
        ),
        "OAUTHCC_EXAMPLE_OUTPUT": f"file://{tmp_path / 'output'}",
        "OAUTHCC_EXAMPLE_POLL_INTERVAL": str(POLL_INTERVAL),
    }
    airflow = AirflowDeployment(dags, env)
    try:
        yield airflow.start()
    finally:
        airflow.stop()


def runs(deployment: AirflowDeployment) -> list[tuple[str, str]]:
    return deployment.query(
        "select run_id, state from dag_run where dag_id = ? order by id", DAG_ID
    )


def append(api: DevServer, count: int) -> None:
    requests.post(
        f"{api.api_url}/_control/feed", json={"count": count}, timeout=5
    ).raise_for_status()


def pulled(tmp_path: Path) -> dict[str, list[str]]:
    """The ids in each run's output file."""
    files = sorted((tmp_path / "output" / "changes").glob("*.jsonl"))
    return {f.name: [json.loads(line)["id"] for line in f.read_text().splitlines()] for f in files}


def wait_for_runs(deployment: AirflowDeployment, count: int) -> list[tuple[str, str]]:
    def done() -> list[tuple[str, str]] | None:
        found = runs(deployment)
        finished = [r for r in found if r[1] in ("success", "failed")]
        return found if len(finished) >= count and len(found) == len(finished) else None

    found: list[tuple[str, str]] = deployment.wait_for(f"{count} finished runs", done, RUN_WITHIN)
    failed = [run for run in found if run[1] != "success"]
    assert not failed, f"{failed}\n{_task_logs(deployment)}"
    return found


def test_new_records_start_one_run_each_and_nothing_is_pulled_twice_or_missed(
    api: DevServer, deployment: AirflowDeployment, tmp_path: Path
) -> None:
    deployment.wait_for(
        "the DAG parsed",
        lambda: deployment.query("select 1 from dag where dag_id = ?", DAG_ID),
        within=120,
    )
    assert deployment.cli("dags", "unpause", DAG_ID).returncode == 0
    deployment.wait_for(
        "the watcher running in the triggerer",
        lambda: deployment.query("select 1 from trigger where triggerer_id is not null"),
        within=120,
    )

    append(api, 3)
    assert len(wait_for_runs(deployment, 1)) == 1
    assert sorted(pulled(tmp_path).values()) == [["change-1", "change-2", "change-3"]]

    append(api, 2)
    assert len(wait_for_runs(deployment, 2)) == 2
    time.sleep(POLL_INTERVAL * 4)  # a quiet feed: no run
    assert len(runs(deployment)) == 2
    assert sorted(pulled(tmp_path).values()) == [
        ["change-1", "change-2", "change-3"],
        ["change-4", "change-5"],
    ]

    # The triggerer dies; records arrive while none runs; another starts.
    deployment.kill("triggerer")
    append(api, 2)
    time.sleep(POLL_INTERVAL * 2)
    assert len(runs(deployment)) == 2
    deployment.restart("triggerer")
    assert len(wait_for_runs(deployment, 3)) == 3

    # Every token revoked: the watcher and the pull each refresh once and go on.
    before = api.stats.token_requests
    api.revoke_all_tokens()
    append(api, 1)
    assert len(wait_for_runs(deployment, 4)) == 4
    time.sleep(POLL_INTERVAL * 3)
    assert len(runs(deployment)) == 4, "no duplicate event after the restart or the refresh"

    files = pulled(tmp_path)
    every_id = [i for ids in files.values() for i in ids]
    fed = [record["id"] for record in api.feed.all()]
    assert sorted(every_id) == sorted(fed), files  # each record exactly once
    assert len(files) == 4
    assert api.stats.token_requests - before <= 3  # the triggerer's and the task's, no storm
    assert SECRET not in deployment.full_log("triggerer")


def _task_logs(deployment: AirflowDeployment, chars: int = 3000) -> str:
    parts = []
    for path in sorted((deployment.home / "logs").rglob("*.log")):
        parts.append(f"--- {path}:\n{path.read_text(errors='replace')[-chars:]}")
    return "\n".join(parts) or "(no task logs found)"
