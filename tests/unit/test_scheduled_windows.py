"""The README's quick-start DAG and the example DAGs ask the API for a non-empty time window when
the scheduler runs them, on this Airflow (run on 3.3 and 2.11).

Each DAG file is parsed as written; its first scheduled run's data interval comes from its own
timetable, and the OAuth tasks' ``data`` (and output path) are rendered with Airflow's template
environment for that run. And the trap the README warns of: ``schedule="@daily"`` gives Airflow 3
runs an empty interval, Airflow 2 runs the previous day.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.timetables.base import DataInterval, TimeRestriction

from airflow_provider_oauthcc.airflow_compat import AIRFLOW_V_3_0_PLUS
from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator

REPO = Path(__file__).resolve().parents[2]
START = pendulum.datetime(2024, 1, 1, tz="UTC")  # the timetables compute with pendulum


def quickstart_dag_source() -> str:
    """The python block that follows the quick-start marker in README.md, as written."""
    readme = (REPO / "README.md").read_text()
    marker = readme.index("<!-- quickstart-dag")
    block = re.search(r"```python\n(.*?)```", readme[marker:], re.DOTALL)
    assert block is not None, "README.md: no python block after the quickstart-dag marker"
    return block.group(1)


def parse(folder: Path) -> dict[str, Any]:
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3.2+
    except ImportError:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    bag = DagBag(dag_folder=str(folder))  # examples off: scripts/pytest.sh sets LOAD_EXAMPLES
    assert not bag.import_errors, bag.import_errors
    return dict(bag.dags)


def first_scheduled_interval(dag: Any) -> DataInterval:
    """What the scheduler computes for the DAG's first run."""
    try:  # Airflow 3.2+: the scheduler's counterpart of the DAG file's timetable
        from airflow.serialization.encoders import coerce_to_core_timetable
    except ImportError:  # Airflow 2: the DAG file's timetable is the scheduler's
        timetable = dag.timetable
    else:
        timetable = coerce_to_core_timetable(dag.timetable)
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=START, latest=None, catchup=True),
    )
    assert info is not None and info.data_interval is not None
    return info.data_interval  # type: ignore[no-any-return]


def rendered(task: OAuthHttpOperator, interval: DataInterval) -> dict[str, Any]:
    """The task's data and output path as a scheduled run renders them."""
    logical = interval.start  # a scheduled run's logical date, on Airflow 2 and 3 alike
    context = {
        "data_interval_start": interval.start,
        "data_interval_end": interval.end,
        "logical_date": logical,
        "ds": logical.strftime("%Y-%m-%d"),
        "ts_nodash": logical.strftime("%Y%m%dT%H%M%S"),
        "params": {name: None for name in task.dag.params} if task.dag else {},
        "macros": _macros(),
    }
    env = task.dag.get_template_env() if task.dag else None
    data = task.render_template(task.data, context, jinja_env=env)
    output = task.output_path
    if isinstance(output, str):
        output = task.render_template(output, context, jinja_env=env)
    return {"data": data, "output_path": output}


def _macros() -> Any:
    try:
        from airflow.sdk.execution_time import macros  # Airflow 3
    except ImportError:
        from airflow import macros  # type: ignore[no-redef]
    return macros


def window_of(data: dict[str, Any]) -> tuple[datetime, datetime]:
    return (
        datetime.fromisoformat(data["updated_since"]),
        datetime.fromisoformat(data["updated_before"]),
    )


def test_the_quickstart_dag_pulls_the_previous_day(tmp_path: Path) -> None:
    (tmp_path / "my_api_daily.py").write_text(quickstart_dag_source())
    dag = parse(tmp_path)["my_api_daily"]
    interval = first_scheduled_interval(dag)
    assert (interval.start, interval.end) == (START, START + timedelta(days=1))
    task = dag.get_task("pull_items")
    assert task.fail_on_empty
    values = rendered(task, interval)
    assert window_of(values["data"]) == (START, START + timedelta(days=1))
    assert values["output_path"] == "file:///tmp/my_api/items_2024-01-01.jsonl"


@pytest.mark.parametrize("dag_id", ["oauthcc_incremental_pull", "oauthcc_export_job"])
def test_each_scheduled_example_asks_for_a_non_empty_window(dag_id: str) -> None:
    dags = parse(REPO / "dags_examples")
    interval = first_scheduled_interval(dags[dag_id])
    assert interval.start < interval.end
    windowed = [
        task
        for task in dags[dag_id].tasks
        if isinstance(task, OAuthHttpOperator)
        and isinstance(task.data, dict)
        and "updated_since" in task.data
    ]
    assert windowed, f"{dag_id} has no windowed pull any more: update this test"
    for task in windowed:
        since, before = window_of(rendered(task, interval)["data"])
        assert since < before <= interval.end, (task.task_id, since, before)


def test_a_daily_cron_schedule_is_an_empty_interval_on_airflow_3_only() -> None:
    from airflow.providers.common.compat.sdk import DAG

    from airflow_provider_oauthcc.airflow_compat import BaseOperator  # noqa: F401  (Airflow loaded)

    interval = first_scheduled_interval(DAG(dag_id="plain", schedule="@daily", start_date=START))
    if AIRFLOW_V_3_0_PLUS:
        assert interval.start == interval.end  # what the README warns of
    else:
        assert interval.end - interval.start == timedelta(days=1)
