"""Scale-out proof on a real CeleryExecutor deployment (issue 12), started by
``scripts/celery-deployment.sh`` (as ``make airflow-celery`` does): PostgreSQL, a Redis broker,
a token-cache Redis, api-server, scheduler, dag-processor, triggerer and two Celery workers with
their own AIRFLOW_HOME (their own task logs and ``file`` token cache): two "machines".

One deployment serves the whole module. The fan-out runs (40 mapped pulls, ``redis`` and ``file``
cache) and the deferrable run go at once; then the token-cache Redis is restarted mid-run; last, a
worker is killed with SIGKILL in the middle of a pull, twice: once writing to ``file://``, once to
``s3://`` on a local S3 (moto's server mode, in this process, reached by every component through
the ``aws`` connection ``aws_moto``). The killed worker is started again between the two.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devserver import DevServer
from tests.support.airflow_api_server import AIRFLOW
from tests.support.celery_deployment import WORKERS, CeleryDeployment, run_id_from
from tests.support.connections import conn_json
from tests.support.moto_s3 import MotoS3, aws_conn_json, moto_s3

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
S3_CONN = "aws_moto"
S3_BUCKET = "celery-output"
# The DAG each destination's killed pull runs in.
KILLED = {"file": "celery_killed", "s3": "celery_killed_s3"}
# On s3:// the killed pull is big enough for s3fs to have started a multipart upload of its
# temporary key before the kill (it keeps the first 50 MiB in the writing process): 120 records
# of 600 kB, 50 a page; the hold on page 3 comes after 60 MB.
S3_KILLED_RECORDS = 120
S3_KILLED_PAD = 600_000
KILLED_RECORDS = {"file": RECORDS, "s3": S3_KILLED_RECORDS}

DAG_SOURCE = """
from datetime import UTC, datetime, timedelta

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pull.pagination import (
    CursorPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    PageNumberPaginator,
)

OUT = "file://__OUTPUT__"
OUT_S3 = "s3://__S3_CONN__@__S3_BUCKET__"  # ObjectStoragePath's conn_id@bucket form
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


def killed(dag_id, out, **query):
    with DAG(dag_id=dag_id, schedule=None, start_date=START, catchup=False):
        OAuthHttpOperator(
            task_id="pull",
            oauth_conn_id="killed",
            endpoint="/v1/page/items",
            paginate=PageNumberPaginator(
                page_param="page", total_pages_path="total_pages", page_size=50
            ),
            data={"limit": 50, **query},
            records_path="data",
            output=out + "/" + dag_id + "/{{ run_id }}/items.jsonl",
            retries=1,
            retry_delay=timedelta(seconds=1),
        )


killed("celery_killed", OUT)
# Records 1 to __S3_KILLED_RECORDS__ (one an hour from START), __S3_KILLED_PAD__ bytes of pad each.
killed(
    "celery_killed_s3",
    OUT_S3,
    pad=__S3_KILLED_PAD__,
    updated_before=(START + timedelta(hours=__S3_KILLED_RECORDS__)).isoformat(),
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
def s3() -> Iterator[MotoS3]:
    """Started before the deployment and stopped after it (teardown runs in reverse)."""
    with moto_s3(bucket=S3_BUCKET, conn_id=S3_CONN) as server:
        yield server


@pytest.fixture(scope="module")
def deployment(api: DevServer, output: Path, s3: MotoS3) -> Iterator[CeleryDeployment]:
    dags = output / "dags"
    dags.mkdir()
    source = (
        DAG_SOURCE.replace("__OUTPUT__", str(output))
        .replace("__COPIES__", str(COPIES))
        .replace("__PULLS__", str(COPIES * 4))
        .replace("__RESTART_PULLS__", str(RESTART_PULLS))
        .replace("__DEFERRED__", str(DEFERRED))
        .replace("__S3_CONN__", S3_CONN)
        .replace("__S3_BUCKET__", S3_BUCKET)
        .replace("__S3_KILLED_RECORDS__", str(S3_KILLED_RECORDS))
        .replace("__S3_KILLED_PAD__", str(S3_KILLED_PAD))
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
    # Every component reaches the local S3 through this connection (moto_s3 also pointed
    # AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE at /dev/null in this environment, which
    # the deployment inherits: never a developer's real AWS profile).
    env[f"AIRFLOW_CONN_{S3_CONN.upper()}"] = aws_conn_json(s3.endpoint_url)
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
            *KILLED.values(),
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


def destination(
    kind: str, output: Path, s3: MotoS3, run_id: str
) -> tuple[list[str], Callable[[], bytes]]:
    """The names in the killed run's output folder (``file``) or under its key prefix (``s3``,
    listed with boto3, not through s3fs and its listing cache), and a reader of the final file."""
    dag_id = KILLED[kind]
    if kind == "file":
        folder = output / dag_id / run_id
        names = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
        return names, (folder / "items.jsonl").read_bytes
    prefix = f"{dag_id}/{run_id}/"
    names = [key.removeprefix(prefix) for key in s3.keys(prefix)]
    return names, lambda: s3.read(prefix + "items.jsonl")


@pytest.fixture(scope="module", params=["file", "s3"])
def killed_run(
    request: pytest.FixtureRequest,
    api: DevServer,
    deployment: CeleryDeployment,
    output: Path,
    s3: MotoS3,
) -> dict[str, Any]:
    """A pull held on its third page; the worker running it is SIGKILLed; the pull is retried.
    A worker killed by the previous destination's run is started again first."""
    kind = request.param
    dag_id = KILLED[kind]
    for worker in WORKERS:
        if not deployment.alive(worker):
            took = deployment.restart_worker(worker)
            print(f"\nworker {worker} started again in {took:.0f} s")
    # The hold catches the third API request: no other run may be making any.
    deployment.wait_for(
        "no other run going on",
        lambda: not deployment.query("select 1 from dag_run where state in ('queued', 'running')"),
        within=RUN_WITHIN,
    )
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
        # What the attempt about to be killed has put at the destination (pages 1 and 2 are
        # written; page 3 is held).
        at_kill, _ = destination(kind, output, s3, run_id)
        uploads_at_kill = s3.multipart_uploads()
        deployment.kill_worker(victim)
    finally:
        hold.release()
    killed_at = time.monotonic()
    elapsed = wait_for_run(deployment, dag_id, run_id)
    left, _ = destination(kind, output, s3, run_id)
    print(
        f"\n{kind}: worker {victim} killed mid-pull (destination then: {at_kill}, multipart "
        f"uploads: {uploads_at_kill}); the retry succeeded {elapsed:.0f} s later: {left}"
    )
    return {
        "kind": kind,
        "dag_id": dag_id,
        "run_id": run_id,
        "victim": victim,
        "killed_at": killed_at,
        "at_kill": at_kill,
        "uploads_at_kill": uploads_at_kill,
    }


def test_a_worker_killed_mid_pull_is_retried_on_the_other_worker(
    deployment: CeleryDeployment, killed_run: dict[str, Any], output: Path, s3: MotoS3
) -> None:
    dag_id, run_id, victim = killed_run["dag_id"], killed_run["run_id"], killed_run["victim"]
    (other,) = (w for w in WORKERS if w != victim)
    assert deployment.task_states(dag_id, run_id) == {("pull", -1): ("success", 2)}
    logs = workers_of(deployment, dag_id, run_id)
    assert [p.name for p in logs[victim]] == ["attempt=1.log"]
    assert [p.name for p in logs[other]] == ["attempt=2.log"]
    _, read_final = destination(killed_run["kind"], output, s3, run_id)
    ids = [json.loads(line)["id"] for line in read_final().decode().splitlines()]
    expected = KILLED_RECORDS[killed_run["kind"]]
    assert len(ids) == expected and set(ids) == set(range(1, expected + 1))  # each once


def test_a_worker_killed_mid_pull_leaves_no_temporary_file(
    deployment: CeleryDeployment, killed_run: dict[str, Any], output: Path, s3: MotoS3
) -> None:
    kind, dag_id, run_id = killed_run["kind"], killed_run["dag_id"], killed_run["run_id"]
    left, _ = destination(kind, output, s3, run_id)
    assert left == ["items.jsonl"]  # no .partial file or object, no folder marker
    assert s3.multipart_uploads() == []  # no upload started and never completed or aborted
    (other,) = (w for w in WORKERS if w != killed_run["victim"])
    (retry_log,) = workers_of(deployment, dag_id, run_id)[other]
    retry_said = retry_log.read_text(errors="replace")
    if kind == "file":
        # The killed attempt's partial file was there, and the retry removed it.
        (partial,) = killed_run["at_kill"]
        assert partial.startswith(".items.jsonl.") and partial.endswith(".partial"), partial
        assert "Removing the temporary file of an earlier, interrupted attempt" in retry_said
    else:
        # On S3 the killed attempt's partial is no object but a multipart upload of its
        # temporary key, its first 50 MiB part stored; the retry aborted it.
        assert killed_run["at_kill"] == []
        (upload,) = killed_run["uploads_at_kill"]
        partial = upload.removeprefix(f"{dag_id}/{run_id}/")
        assert partial.startswith(".items.jsonl.") and partial.endswith(".partial"), upload
        assert "Aborting the upload of an earlier, interrupted attempt" in retry_said


def test_the_deployment_logged_no_secret(deployment: CeleryDeployment) -> None:
    for name in ("scheduler", "triggerer", "api-server", *WORKERS):
        assert SECRET not in deployment.log(name, chars=10**8), name
    for worker in WORKERS:
        for path in (deployment.worker_home(worker) / "logs").rglob("*.log"):
            assert SECRET not in path.read_text(errors="replace"), path
    assert os.environ.get("AIRFLOW_CONN_FAN_REDIS") is None  # nothing leaked into this process
