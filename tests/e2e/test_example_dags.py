"""The example DAGs under the real ``airflow dags test``, against the local authorization
server and API: a migrated SQLite AIRFLOW_HOME, the connection as an environment variable."""

from __future__ import annotations

import base64
import inspect
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from devserver import DevServer
from devserver.dataset import EPOCH, STEP
from tests.support.connections import conn_json
from tests.support.leak_scan import (
    Secret,
    find_leaks,
    secrets_seen_by,
    without_airflow_30_mask_requests,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags_examples"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
SECRET = "s3cret-Value-dags-8080"


@dataclass
class DagRun:
    """One ``airflow dags test`` process, with its own API server and AIRFLOW_HOME."""

    api: DevServer
    home: Path
    process: subprocess.Popen[str] | None = None
    _output: str | None = None

    def start(self, *args: str) -> None:
        env = dict(
            os.environ,
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__UNIT_TEST_MODE="False",
            OAUTHCC_EXAMPLE_OUTPUT=f"file://{self.home / 'output'}",
            AIRFLOW_CONN_EXAMPLE_API=conn_json(
                self.api.api_url, "dags-client", SECRET, auth_url=self.api.token_url, scope="read"
            ),
        )
        if version("apache-airflow").startswith("3.0."):
            # Airflow 3.0's `dags test` fails a task whose outlet asset no DAG parse has
            # activated yet (apache/airflow#51644); a deployment's DAG processor parses the file
            # first, as `dags reserialize` does here (scripts/test-wheel.sh does the same).
            done = subprocess.run(
                [AIRFLOW, "dags", "reserialize"], env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        self.process = subprocess.Popen(
            [AIRFLOW, "dags", "test", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def output(self) -> str:
        """Waits for the run; its output, once it succeeded."""
        assert self.process is not None
        if self._output is None:
            self._output, _ = self.process.communicate(timeout=300)
        output = self._output
        assert self.process.returncode == 0, output[-4000:]
        assert "state=success" in output, output[-4000:]
        output = without_airflow_30_mask_requests(output)
        assert SECRET not in output
        return output

    def secrets(self) -> list[Secret]:
        """The client secret in each form it took, and every token the API server issued."""
        basic = base64.b64encode(f"dags-client:{SECRET}".encode()).decode()
        found = [Secret("client secret", SECRET), Secret("client secret (Basic)", basic)]
        found += secrets_seen_by(self.api)
        assert any(s.kind == "access token" for s in found)  # the run's token(s) are known
        return found

    def xcoms(self) -> list[tuple[str, str, str]]:
        """``(task_id, key, value)`` of every XCom the run stored in its metadata database."""
        with sqlite3.connect(self.home / "airflow.db") as db:
            rows = db.execute("SELECT task_id, key, value FROM xcom").fetchall()
        return [
            (task, key, value if isinstance(value, str) else repr(value))
            for task, key, value in rows
        ]

    def database_dump(self) -> str:
        """Every row of every table of the run's metadata database, as SQL text."""
        with sqlite3.connect(self.home / "airflow.db") as db:
            return "\n".join(db.iterdump())


def migrated_home(path: Path) -> Path:
    env = dict(os.environ, AIRFLOW_HOME=str(path), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    result = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, DagRun]]:
    """The example DAGs under ``airflow dags test`` at once (each its own home and server)."""
    home = migrated_home(tmp_path_factory.mktemp("airflow-home"))
    second = tmp_path_factory.mktemp("airflow-home")
    shutil.copy(home / "airflow.db", second / "airflow.db")
    third = tmp_path_factory.mktemp("airflow-home")
    shutil.copy(home / "airflow.db", third / "airflow.db")
    with (
        DevServer(dataset_size=5_000) as pull_api,
        DevServer(dataset_size=5_000) as fan_api,
        DevServer(dataset_size=5_000) as taskflow_api,
    ):
        for api in (pull_api, fan_api, taskflow_api):
            api.add_client("dags-client", secret=SECRET, scope="read")
        # Every fourth API request of the pulls fails twice with 503; their first gets a 429.
        for api in (pull_api, taskflow_api):
            api.api_faults.add(status=503, every=4, times=2)
            api.api_faults.add(status=429, retry_after=1, times=1)
        pull = DagRun(pull_api, home)
        pull.start(
            "oauthcc_incremental_pull",
            "2024-03-01T00:00:00+00:00",
            "--conf",
            json.dumps({"updated_since": "2024-01-01T00:00:00+00:00"}),
        )
        fan_out = DagRun(fan_api, second)
        fan_out.start("oauthcc_fan_out", "2024-03-01T00:00:00+00:00")
        taskflow = DagRun(taskflow_api, third)
        taskflow.start(
            "oauthcc_taskflow_pull",
            "2024-03-01T00:00:00+00:00",
            "--conf",
            json.dumps({"updated_since": "2024-01-01T00:00:00+00:00"}),
        )
        try:
            yield {"pull": pull, "fan_out": fan_out, "taskflow": taskflow}
        finally:
            for run in (pull, fan_out, taskflow):
                if run.process is not None and run.process.poll() is None:
                    run.process.kill()
                    run.process.communicate()


def ids_in(path: Path) -> list[int]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_example_dags_parse_without_import_errors() -> None:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    kwargs: dict[str, Any] = {"dag_folder": str(DAGS)}
    if "include_examples" in inspect.signature(DagBag).parameters:
        kwargs["include_examples"] = False
    bag = DagBag(**kwargs)
    assert bag.import_errors == {}
    expected = {
        "oauthcc_incremental_pull",
        "oauthcc_items_landed",
        "oauthcc_fan_out",
        "oauthcc_taskflow_pull",
    }
    assert expected <= set(bag.dag_ids)


def test_incremental_pull_lands_the_window_despite_api_hiccups(runs: dict[str, DagRun]) -> None:
    run = runs["pull"]
    output = run.output()
    landed = run.home / "output" / "items" / "2024-03-01" / "items_20240301T000000.jsonl"
    # From updated_since to the end of the data interval, 2024-03-01T00:00 (excluded).
    last = (datetime(2024, 3, 1, tzinfo=UTC) - EPOCH) // STEP
    assert ids_in(landed) == list(range(1, last + 1))
    assert f"Pulled {last:,} records in 15 pages" in output
    assert "Page 1: 429:" in output and "retrying in" in output
    assert f"Checked file://{landed}: {last} records in 15 pages" in output
    assert run.api.stats.token_requests == 1
    assert run.api.stats.api_requests_by_status == {200: 15, 503: 2, 429: 1}
    assert [p.name for p in landed.parent.iterdir()] == [landed.name]


def test_fan_out_maps_one_pull_per_endpoint(runs: dict[str, DagRun]) -> None:
    run = runs["fan_out"]
    output = run.output()
    [run_dir] = (run.home / "output" / "fan_out" / "2024-03-01").iterdir()
    files = sorted(p.name for p in run_dir.iterdir())
    assert files == ["cursor.jsonl", "next.jsonl", "offset.jsonl", "page.jsonl"]
    for name in files:
        assert ids_in(run_dir / name) == list(range(1, 5_001)), name
    assert "Total: {'files': 4, 'records': 20000, 'pages': 80," in output
    assert run.api.stats.token_requests == 1


def test_taskflow_pull_walks_and_lands_the_window_with_the_hook(
    runs: dict[str, DagRun],
) -> None:
    run = runs["taskflow"]
    output = run.output()
    [landed] = (run.home / "output" / "taskflow" / "2024-03-01").iterdir()
    last = (datetime(2024, 3, 1, tzinfo=UTC) - EPOCH) // STEP
    assert ids_in(landed) == list(range(1, last + 1))
    assert f"Counted {last} records in 8 pages" in output  # hook.paginate(...).records()
    assert f"Pulled {last:,} records in 15 pages" in output  # hook.pull_to(...)
    assert f"Both pulls saw {last} records; landed at file://{landed}" in output
    assert "Page 1: 429:" in output and "retrying in" in output
    assert run.api.stats.api_requests_by_status == {200: 8 + 15, 503: 2, 429: 1}


@pytest.mark.parametrize("name", ["pull", "fan_out", "taskflow"])
def test_no_secret_or_token_in_the_output_or_the_metadata_database(
    runs: dict[str, DagRun], name: str
) -> None:
    """The ``dags test`` process's output, its XComs and every other row of its database hold
    neither the client secret nor any token the API server issued (whole or a segment)."""
    run = runs[name]
    output = run.output()
    secrets = run.secrets()
    xcoms = run.xcoms()
    # The scan reads what the tasks returned: the pull's summary or the mapped pulls' totals.
    assert {task for task, key, _ in xcoms if key == "return_value"} >= {
        "pull": {"pull_items", "check_pull"},
        "fan_out": {"pull", "summarize"},
        "taskflow": {"count_items", "land_items"},
    }[name], xcoms
    texts = {
        "dags test output": output,
        "xcom table": "\n".join(f"{task} {key} {value}" for task, key, value in xcoms),
        "metadata database": run.database_dump(),
    }
    leaks = find_leaks(texts, secrets, issuers=[run.api.issuer, "dags-client"])
    assert not leaks, "\n".join(map(str, leaks))
