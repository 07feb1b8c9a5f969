"""Scale-out proof on a real CeleryExecutor deployment (issue 12), started by
``scripts/celery-deployment.sh`` (as ``make airflow-celery`` does): PostgreSQL, a Redis broker,
a token-cache Redis, api-server, scheduler, dag-processor, triggerer and two Celery workers with
their own AIRFLOW_HOME (their own task logs and ``file`` token cache): two "machines".

One deployment serves the whole module. The fan-out runs (40 mapped pulls, ``redis`` and ``file``
cache) and the deferrable run go at once; then the token-cache Redis is restarted mid-run; last, a
worker is killed with SIGKILL in the middle of a pull.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devserver import DevServer
from tests.support.airflow_api_server import AIRFLOW
from tests.support.celery_deployment import WORKERS, CeleryDeployment, run_id_from
from tests.support.connections import conn_json

pytestmark = [pytest.mark.e2e, pytest.mark.celery, pytest.mark.timeout(1200)]

SECRET = "s3cret-Value-celery-5555"
RECORDS = 500  # the dev server's dataset
COPIES = 10  # x 4 pagination styles = 40 mapped pulls per fan-out run
DEFERRED = 16
RESTART_PULLS = 12
# Bounds for a 2-core machine shared with other test runs (a task process takes ~10 s there).
RUN_WITHIN = 420.0

CLIENTS = {
    "fan_redis": {"cache_backend": "redis", "cache_redis_conn_id": "token_cache_redis"},
    "fan_file": {"cache_backend": "file"},
    "deferred": {"cache_backend": "redis", "cache_redis_conn_id": "token_cache_redis"},
    "restart": {"cache_backend": "redis", "cache_redis_conn_id": "token_cache_redis"},
    "killed": {"cache_backend": "redis", "cache_redis_conn_id": "token_cache_redis"},
}

DAG_SOURCE = """
from datetime import UTC, datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pagination import (
    CursorPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    PageNumberPaginator,
)

OUT = "file://__OUTPUT__"
START = datetime(2024, 1, 1, tzinfo=UTC)
# The four endpoints of dags_examples/example_fan_out.py, each pulled __COPIES__ times.
STYLES = {
    "next": ("/v1/next/items", NextUrlPaginator(next_url_path="next"), "data"),
    "cursor": (
        "/v1/cursor/items",
        CursorPaginator(cursor_path="next_cursor", cursor_param="cursor"),
        "items",
    ),
    "page": (
        "/v1/page/items",
        PageNumberPaginator(page_param="page", total_pages_path="total_pages", page_size=250),
        "data",
    ),
    "offset": ("/v1/offset/items", OffsetPaginator(limit=250, total_path="total"), "results"),
}


def fan_out(dag_id, conn_id, pulls):
    with DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False, max_active_tasks=64):
        OAuthHttpOperator.partial(
            task_id="pull", oauth_conn_id=conn_id, data={"limit": 250}, max_pages=1000
        ).expand_kwargs(
            [
                {
                    "endpoint": endpoint,
                    "paginate": paginate,
                    "records_path": records_path,
                    "output": OUT + "/" + dag_id + "/{{ run_id }}/" + f"{n:02d}_{name}.jsonl",
                }
                for n in range(pulls // len(STYLES))
                for name, (endpoint, paginate, records_path) in STYLES.items()
            ]
        )


fan_out("celery_fan_out_redis", "fan_redis", __PULLS__)
fan_out("celery_fan_out_file", "fan_file", __PULLS__)
fan_out("celery_redis_restart", "restart", __RESTART_PULLS__)

with DAG(dag_id="celery_deferred", schedule=None, start_date=START, catchup=False,
         max_active_tasks=64):
    for number in range(__DEFERRED__):
        OAuthHttpOperator(
            task_id=f"call_{number:02d}", oauth_conn_id="deferred", endpoint="/v1/whoami",
            deferrable=True,
        )

with DAG(dag_id="celery_killed", schedule=None, start_date=START, catchup=False):
    OAuthHttpOperator(
        task_id="pull",
        oauth_conn_id="killed",
        endpoint="/v1/page/items",
        paginate=PageNumberPaginator(page_param="page", total_pages_path="total_pages", page_size=50),
        data={"limit": 50},
        records_path="data",
        output=OUT + "/celery_killed/{{ run_id }}/items.jsonl",
        retries=1,
        retry_delay=timedelta(seconds=1),
    )
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def api() -> Iterator[DevServer]:
    with DevServer(api_workers=64, dataset_size=RECORDS) as srv:
        for client in CLIENTS:
            srv.add_client(client, secret=SECRET, scope="read")
        yield srv


@pytest.fixture(scope="module")
def output() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="oauthcc-celery-output-") as folder:
        yield Path(folder)


@pytest.fixture(scope="module")
def deployment(api: DevServer, output: Path) -> Iterator[CeleryDeployment]:
    dags = output / "dags"
    dags.mkdir()
    source = (
        DAG_SOURCE.replace("__OUTPUT__", str(output))
        .replace("__COPIES__", str(COPIES))
        .replace("__PULLS__", str(COPIES * 4))
        .replace("__RESTART_PULLS__", str(RESTART_PULLS))
        .replace("__DEFERRED__", str(DEFERRED))
    )
    (dags / "celery_dags.py").write_text(textwrap.dedent(source))
    cache_port = free_port()
    env = {
        f"AIRFLOW_CONN_{client.upper()}": conn_json(
            api.api_url, client, SECRET, auth_url=api.token_url, scope="read", **extras
        )
        for client, extras in CLIENTS.items()
    }
    env["REDIS_CACHE_PORT"] = str(cache_port)
    # A lost worker's task is failed (then retried) after this many seconds without heartbeat.
    env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] = "30"
    airflow = CeleryDeployment(dags, env)
    try:
        try:
            airflow.start()
        except RuntimeError as exc:  # the script's reason (a missing dependency, say) only
            pytest.fail(str(exc), pytrace=False)
        print(f"\ncelery deployment started in {airflow.start_seconds:.0f} s")
        wanted = {
            "celery_fan_out_redis",
            "celery_fan_out_file",
            "celery_deferred",
            "celery_redis_restart",
            "celery_killed",
        }
        airflow.wait_for(
            "the DAGs parsed",
            lambda: wanted <= {r[0] for r in airflow.query("select dag_id from dag")},
            within=180,
        )
        yield airflow
    finally:
        airflow.stop()


@pytest.fixture(scope="module")
def first_runs(deployment: CeleryDeployment) -> dict[str, str]:
    """The two fan-out runs and the deferrable run, triggered together (the workers' slots are
    what bounds the time, not the order)."""
    dag_ids = ["celery_fan_out_redis", "celery_fan_out_file", "celery_deferred"]
    processes = {
        dag_id: subprocess.Popen(
            [AIRFLOW, "dags", "trigger", dag_id, "-o", "json"],
            env=deployment.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for dag_id in dag_ids
    }
    runs = {}
    for dag_id, process in processes.items():
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err[-2000:]
        runs[dag_id] = run_id_from(out)
    return runs


def wait_for_run(deployment: CeleryDeployment, dag_id: str, run_id: str) -> float:
    started = time.monotonic()
    state = deployment.wait_for(
        f"the end of {dag_id}", lambda: deployment.run_state(dag_id, run_id), within=RUN_WITHIN
    )
    states = deployment.task_states(dag_id, run_id)
    assert state == "success", states
    return time.monotonic() - started


def workers_of(deployment: CeleryDeployment, dag_id: str, run_id: str) -> dict[str, list[Path]]:
    """The task log files each worker wrote for the run."""
    return {
        worker: [p for p in deployment.task_logs(worker, dag_id) if f"run_id={run_id}" in str(p)]
        for worker in WORKERS
    }


def check_outputs(output: Path, dag_id: str, run_id: str, files: int) -> None:
    folder = output / dag_id / run_id
    found = sorted(folder.iterdir())
    assert [p.name for p in found if p.name.startswith(".")] == []  # no temporary file
    assert len(found) == files
    for path in found:
        ids = [json.loads(line)["id"] for line in path.read_text().splitlines()]
        assert len(ids) == RECORDS and len(set(ids)) == RECORDS, path.name


def test_fan_out_with_the_redis_cache_makes_one_token_request_across_both_workers(
    api: DevServer, deployment: CeleryDeployment, first_runs: dict[str, str], output: Path
) -> None:
    dag_id = "celery_fan_out_redis"
    run_id = first_runs[dag_id]
    elapsed = wait_for_run(deployment, dag_id, run_id)
    logs = workers_of(deployment, dag_id, run_id)
    print(
        f"\n{COPIES * 4} mapped pulls (redis cache): {elapsed:.0f} s; per worker "
        f"{ {w: len(p) for w, p in logs.items()} }; token requests "
        f"{api.stats.token_requests_by_client['fan_redis']}"
    )
    assert sum(len(p) for p in logs.values()) == COPIES * 4
    assert all(logs.values()), "both workers ran pulls"
    assert api.stats.token_requests_by_client["fan_redis"] == 1
    check_outputs(output, dag_id, run_id, COPIES * 4)


def test_fan_out_with_the_file_cache_makes_at_most_one_token_request_per_worker(
    api: DevServer, deployment: CeleryDeployment, first_runs: dict[str, str], output: Path
) -> None:
    dag_id = "celery_fan_out_file"
    run_id = first_runs[dag_id]
    elapsed = wait_for_run(deployment, dag_id, run_id)
    logs = workers_of(deployment, dag_id, run_id)
    requests_made = api.stats.token_requests_by_client["fan_file"]
    print(
        f"\n{COPIES * 4} mapped pulls (file cache): {elapsed:.0f} s; per worker "
        f"{ {w: len(p) for w, p in logs.items()} }; token requests {requests_made}"
    )
    assert all(logs.values()), "both workers ran pulls"
    assert 1 <= requests_made <= len(WORKERS)
    # Each worker machine keeps its own cache folder, in its own AIRFLOW_HOME.
    for worker in WORKERS:
        assert list((deployment.worker_home(worker) / "oauthcc-token-cache").iterdir()), worker
    check_outputs(output, dag_id, run_id, COPIES * 4)


def test_deferred_tasks_resume_on_either_worker(
    api: DevServer, deployment: CeleryDeployment, first_runs: dict[str, str]
) -> None:
    dag_id = "celery_deferred"
    run_id = first_runs[dag_id]
    wait_for_run(deployment, dag_id, run_id)
    states = deployment.task_states(dag_id, run_id)
    assert sorted(s for s, _ in states.values()) == ["success"] * DEFERRED
    # A task's log is in the home of each worker that ran a part of it: the one that deferred
    # it logs "Deferring"; one that only resumed it does not.
    deferred_on: dict[str, set[str]] = {}
    resumed_on: dict[str, set[str]] = {}
    for worker, paths in workers_of(deployment, dag_id, run_id).items():
        for path in paths:
            task = path.parent.name  # task_id=call_NN
            text = path.read_text(errors="replace")
            if "Deferring: the triggerer sends" in text:
                deferred_on.setdefault(task, set()).add(worker)
            resumed_on.setdefault(task, set()).add(worker)
    assert len(deferred_on) == DEFERRED
    resumers: dict[str, str] = {}
    for task, workers in resumed_on.items():
        others = workers - deferred_on[task]
        resumers[task] = next(iter(others)) if others else next(iter(workers))
    moved = sum(1 for task in resumers if resumers[task] not in deferred_on[task])
    print(
        f"\n{DEFERRED} deferred tasks: resumed on {sorted(set(resumers.values()))}; "
        f"{moved} on the other worker than the one that deferred"
    )
    assert set(resumers.values()) == set(WORKERS), "resumes landed on both workers"
    # One token request for all (the Redis cache, triggerer and workers alike).
    assert api.stats.token_requests_by_client["deferred"] == 1


def test_a_token_cache_redis_restart_mid_run_fails_nothing(
    api: DevServer, deployment: CeleryDeployment, first_runs: dict[str, str]
) -> None:
    dag_id = "celery_redis_restart"
    run_id = deployment.trigger(dag_id)
    deployment.wait_for(
        "the first pull running",
        lambda: any(
            s in ("running", "success") for s, _ in deployment.task_states(dag_id, run_id).values()
        ),
        within=RUN_WITHIN,
    )

    deployment.stop_component("redis-cache")
    down_at = time.monotonic()
    ((stopped_at,),) = deployment.query("select now()")
    started_before = len(
        deployment.query(
            "select 1 from task_instance where dag_id = %s and run_id = %s and start_date <= %s",
            dag_id,
            run_id,
            stopped_at,
        )
    )
    wanted = min(3, RESTART_PULLS - started_before)
    assert wanted > 0, "every pull started before Redis went down"

    def started_and_done_while_down() -> list[int]:
        rows = deployment.query(
            "select map_index from task_instance where dag_id = %s and run_id = %s"
            " and start_date > %s and state = 'success'",
            dag_id,
            run_id,
            stopped_at,
        )
        return [row[0] for row in rows] if len(rows) >= wanted else []

    # Down until pulls that started after the stop (each task process looks for a token at
    # start, in a cold process cache) have finished.
    while_down = deployment.wait_for(
        "pulls run while Redis was down", started_and_done_while_down, RUN_WITHIN
    )
    deployment.start_component("redis-cache")
    print(
        f"\ntoken-cache Redis down for {time.monotonic() - down_at:.0f} s; "
        f"{len(while_down)} pulls started and finished in that time"
    )
    wait_for_run(deployment, dag_id, run_id)
    states = deployment.task_states(dag_id, run_id)
    # Every pull succeeded at its first try: the cache failed none of them.
    assert sorted(states.values()) == [("success", 1)] * RESTART_PULLS
    logs = {
        p: p.read_text(errors="replace")
        for paths in workers_of(deployment, dag_id, run_id).values()
        for p in paths
    }
    # Each pull that ran while Redis was down said so once and fetched directly.
    for map_index in while_down:
        (text,) = (t for p, t in logs.items() if f"/map_index={map_index}/" in str(p))
        assert "Token cache 'redis' failed to" in text, map_index
    assert SECRET not in "".join(logs.values())
    assert api.stats.token_requests_by_client["restart"] >= 1


@pytest.fixture(scope="module")
def killed_run(
    api: DevServer, deployment: CeleryDeployment, first_runs: dict[str, str], output: Path
) -> dict[str, Any]:
    """A pull held on its third page; the worker running it is SIGKILLed; the pull is retried."""
    dag_id = "celery_killed"
    hold = api.api_faults.add(hold=True, every=3, times=1, hold_max=120)
    try:
        run_id = deployment.trigger(dag_id)
        deployment.wait_for(
            "the pull held mid-way",
            lambda: hold.held >= 1,
            within=RUN_WITHIN,
        )
        logs = workers_of(deployment, dag_id, run_id)
        (victim,) = (w for w, paths in logs.items() if paths)
        deployment.kill_worker(victim)
    finally:
        hold.release()
    killed_at = time.monotonic()
    elapsed = wait_for_run(deployment, dag_id, run_id)
    left = sorted(p.name for p in (output / dag_id / run_id).iterdir())
    print(f"\nworker {victim} killed mid-pull; the retry succeeded {elapsed:.0f} s later: {left}")
    return {"run_id": run_id, "victim": victim, "killed_at": killed_at}


def test_a_worker_killed_mid_pull_is_retried_on_the_other_worker(
    deployment: CeleryDeployment, killed_run: dict[str, Any], output: Path
) -> None:
    dag_id, run_id, victim = "celery_killed", killed_run["run_id"], killed_run["victim"]
    (other,) = (w for w in WORKERS if w != victim)
    assert deployment.task_states(dag_id, run_id) == {("pull", -1): ("success", 2)}
    logs = workers_of(deployment, dag_id, run_id)
    assert [p.name for p in logs[victim]] == ["attempt=1.log"]
    assert [p.name for p in logs[other]] == ["attempt=2.log"]
    final = output / dag_id / run_id / "items.jsonl"
    ids = [json.loads(line)["id"] for line in final.read_text().splitlines()]
    assert len(ids) == RECORDS and len(set(ids)) == RECORDS  # every record exactly once


def test_a_worker_killed_mid_pull_leaves_no_temporary_file(
    killed_run: dict[str, Any], output: Path
) -> None:
    folder = output / "celery_killed" / killed_run["run_id"]
    assert sorted(p.name for p in folder.iterdir()) == ["items.jsonl"]


def test_the_deployment_logged_no_secret(deployment: CeleryDeployment) -> None:
    for name in ("scheduler", "triggerer", "api-server", *WORKERS):
        assert SECRET not in deployment.log(name, chars=10**8), name
    for worker in WORKERS:
        for path in (deployment.worker_home(worker) / "logs").rglob("*.log"):
            assert SECRET not in path.read_text(errors="replace"), path
    assert os.environ.get("AIRFLOW_CONN_FAN_REDIS") is None  # nothing leaked into this process
