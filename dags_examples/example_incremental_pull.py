"""Hourly incremental pull from an OAuth-protected API into object storage.

Every hour, ``pull_items`` asks the API for the records updated in the run's data interval
(``updated_since`` / ``updated_before``), follows the ``Link: rel="next"`` pages, and streams
them as JSON Lines to a dated path. The file appears only once the pull completed. The task's
return value (XCom) is a summary, which ``check_pull`` verifies against the file.

The output is declared as an Asset (a Dataset on Airflow 2.x) named by its URI: the DAG
``oauthcc_items_landed`` below is scheduled on it and runs each time a pull lands.

Runs unchanged on Airflow 2.11 to 3.3: the Airflow names come from
``airflow.providers.common.compat.sdk`` (``airflow.sdk`` on 3.x, the 2.x modules on 2.11).

Set up: a connection ``example_api`` of type ``oauth2_client_credentials`` (host = API base
URL, login = client ID, password = client secret, extra ``auth_url`` and ``scope``), and
``OAUTHCC_EXAMPLE_OUTPUT`` to a base URI (default ``file:///tmp/oauthcc-example``; e.g.
``s3://aws_default@my-bucket/raw``). To catch up on a longer window in a manual run, trigger
with the ``updated_since`` param, and a logical date (the trigger form fills one in; with the
CLI pass ``-l``): a run without one has no data interval.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Asset, ObjectStoragePath, Param, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pagination import LinkHeaderPaginator

OUTPUT_ROOT = os.environ.get("OAUTHCC_EXAMPLE_OUTPUT", "file:///tmp/oauthcc-example").rstrip("/")
# By URI only: Airflow 2.x's Dataset has no name (on 3.x the name is the URI).
ITEMS = Asset(uri=f"{OUTPUT_ROOT}/items")

with DAG(
    dag_id="oauthcc_incremental_pull",
    description="Hourly incremental pull of /v1/link/items to JSON Lines",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    params={
        "updated_since": Param(
            None,
            type=["null", "string"],
            description="Start of the window (ISO 8601) instead of the data interval start",
        ),
    },
    tags=["oauthcc", "example"],
    doc_md=__doc__,
):
    pull_items = OAuthHttpOperator(
        task_id="pull_items",
        oauth_conn_id="example_api",
        endpoint="/v1/link/items",
        data={
            "updated_since": "{{ params.updated_since or data_interval_start.isoformat() }}",
            "updated_before": "{{ data_interval_end.isoformat() }}",
            "limit": 100,
        },
        paginate=LinkHeaderPaginator(),
        output_path=OUTPUT_ROOT + "/items/{{ ds }}/items_{{ ts_nodash }}.jsonl",
        outlets=[ITEMS],
        retries=2,
        retry_delay=timedelta(seconds=30),
    )

    @task
    def check_pull(summary: dict[str, Any]) -> dict[str, Any]:
        """The file is where the summary says, with as many lines as records pulled."""
        path = ObjectStoragePath(summary["path"])
        lines = 0
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                lines += chunk.count(b"\n")
        if lines != summary["records"] or path.stat().st_size != summary["bytes"]:
            raise ValueError(f"{path} has {lines} lines; the pull reported {summary}")
        print(
            f"Checked {path}: {lines} records in {summary['pages']} pages, "
            f"{summary['bytes']} bytes, pulled in {summary['duration_s']} s"
        )
        return summary

    check_pull(pull_items.output)


with DAG(
    dag_id="oauthcc_items_landed",
    description="Runs when oauthcc_incremental_pull lands a file",
    schedule=[ITEMS],
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["oauthcc", "example"],
):

    @task
    def report_landed_files(
        triggering_asset_events: Any = None, triggering_dataset_events: Any = None
    ) -> list[str]:
        """The pull's summary travels on the asset event: no need to guess the path.
        (Airflow 2.x names the context key ``triggering_dataset_events``.)"""
        paths = []
        for events in (triggering_asset_events or triggering_dataset_events or {}).values():
            for event in events:
                extra = event.extra or {}
                print(f"New file {extra.get('path')}: {extra.get('records')} records")
                paths.append(extra.get("path"))
        return paths

    report_landed_files()
