"""A real triggerer proof: an Airflow deployment (api-server, scheduler with LocalExecutor,
dag-processor, triggerer; SQLite) runs a DAG of 50 deferrable OAuthHttpOperator tasks over 10
connections with the Redis token cache. Every task defers, its request is sent from the
triggerer, and it resumes and succeeds; the whole run costs one token request per connection.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devserver import DevServer
from tests.support.airflow_deployment import AirflowDeployment
from tests.support.connections import conn_json
from tests.support.redis_server import RedisServer, redis_server

__all__ = ["redis_server"]  # fixture

pytestmark = [pytest.mark.e2e, pytest.mark.load, pytest.mark.timeout(900)]

SECRET = "s3cret-Value-triggerer-8080"
DAG_ID = "oauthcc_real_triggerer"
TASKS = 50
CONNECTIONS = 10
# Seconds from trigger to the run's end. About 2.5 min on a 2-core machine shared with other
# test runs, where a task process takes 25 s to parse its DAG file: the bound is for that.
RUN_WITHIN = 420.0

DAG_SOURCE = f'''
from datetime import UTC, datetime

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator

with DAG(
    dag_id="{DAG_ID}",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_tasks={TASKS},
):
    for number in range({TASKS}):
        OAuthHttpOperator(
            task_id=f"call_{{number:02d}}",
            oauth_conn_id=f"e2e_conn_{{number % {CONNECTIONS}}}",
            # A call that takes seconds, as deferral is for: an instant answer can fire the
            # trigger before the scheduler has seen the task defer, and Airflow's LocalExecutor
            # then fails the task ("finished with state success, but ... queued").
            endpoint="/v1/sleep",
            data={{"seconds": 10}},
            deferrable=True,
        )
'''


def client_id(number: int) -> str:
    return f"e2e-client-{number}"


@pytest.fixture
def api() -> Iterator[DevServer]:
    with DevServer(api_workers=64) as srv:
        for number in range(CONNECTIONS):
            srv.add_client(client_id(number), secret=SECRET, scope="read")
        yield srv


@pytest.fixture
def deployment(
    api: DevServer, redis_server: RedisServer, tmp_path: Path
) -> Iterator[AirflowDeployment]:
    import redis

    raw = redis.Redis(port=redis_server.port)
    raw.flushall()
    raw.close()
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "real_triggerer.py").write_text(textwrap.dedent(DAG_SOURCE))
    connections = {
        f"AIRFLOW_CONN_E2E_CONN_{number}": conn_json(
            api.api_url,
            client_id(number),
            SECRET,
            auth_url=api.token_url,
            scope="read",
            cache_backend="redis",
            cache_redis_conn_id="e2e_redis",
        )
        for number in range(CONNECTIONS)
    }
    connections["AIRFLOW_CONN_E2E_REDIS"] = json.dumps(
        {"conn_type": "redis", "host": "127.0.0.1", "port": redis_server.port}
    )
    airflow = AirflowDeployment(dags, connections)
    try:
        yield airflow.start()
    finally:
        airflow.stop()


def test_fifty_deferred_tasks_over_ten_connections_in_a_real_triggerer(
    api: DevServer, deployment: AirflowDeployment
) -> None:
    deployment.wait_for(
        "the DAG parsed",
        lambda: deployment.query("select 1 from dag where dag_id = ?", DAG_ID),
        within=120,
    )
    assert deployment.cli("dags", "unpause", DAG_ID).returncode == 0
    triggered = deployment.cli("dags", "trigger", DAG_ID)
    assert triggered.returncode == 0, triggered.stderr[-2000:]
    started = time.monotonic()

    def finished() -> str | None:
        rows = deployment.query("select state from dag_run where dag_id = ?", DAG_ID)
        state = rows[0][0] if rows else None
        return state if state in ("success", "failed") else None

    state = deployment.wait_for("the DAG run's end", finished, within=RUN_WITHIN)
    elapsed = time.monotonic() - started
    print(f"{TASKS} deferred tasks over {CONNECTIONS} connections: {elapsed:.0f} s")
    states = dict(
        deployment.query("select task_id, state from task_instance where dag_id = ?", DAG_ID)
    )
    not_done = {task: task_state for task, task_state in states.items() if task_state != "success"}
    if not_done:
        print(_task_logs(deployment, not_done), deployment.log("scheduler"), sep="\n")
    assert state == "success", not_done
    assert sorted(states.values()) == ["success"] * TASKS

    # One token request per connection for the whole run, through the Redis cache.
    assert api.stats.token_requests_by_client == {client_id(n): 1 for n in range(CONNECTIONS)}
    # Every API call came from the triggerer (aiohttp), none again from a resumed worker.
    agents = [c.headers.get("User-Agent", "") for c in api.stats.api_captures]
    assert len(agents) == TASKS and all("aiohttp" in agent for agent in agents), agents[:3]
    # The triggerer logged nothing secret.
    assert SECRET not in deployment.full_log("triggerer")


def _task_logs(deployment: AirflowDeployment, tasks: dict[str, str], chars: int = 3000) -> str:
    """The end of each failed task's log, to say why it failed."""
    parts = []
    for task in sorted(tasks):
        for path in sorted((deployment.home / "logs").rglob(f"task_id={task}/*.log")):
            parts.append(f"--- {path.name} of {task}:\n{path.read_text(errors='replace')[-chars:]}")
    return "\n".join(parts) or "(no task logs found)"
