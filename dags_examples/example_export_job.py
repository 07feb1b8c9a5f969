"""Export job: start an export, wait for it in the triggerer, download the result.

APIs often serve large extracts as jobs: a POST starts the export, a status endpoint says
``pending`` / ``running`` / ``done`` for minutes or hours, then a download URL serves it.

1. ``start_export`` POSTs the run's day (``ds``) to ``/v1/exports``; the job's status (with
   its ``id``) goes to XCom.
2. ``wait_for_export`` is a deferrable ``OAuthHttpSensor``: it holds no worker slot while the
   export runs. The triggerer polls the job with its own token (refreshed there as it
   expires) and wakes the task only when the status changes; ``export_ready`` then decides:
   done (the download path goes to XCom), not yet (back to the triggerer) or failed.
3. ``download`` fetches the export as one NDJSON file (``response_format="ndjson"``) and
   streams it to ``OAUTHCC_EXAMPLE_OUTPUT`` as it arrives, in bounded memory whatever its size;
   the records are counted on the way and the file appears only once complete. An answer that
   breaks off is fetched again from the start. (A gzip export would be kept compressed, or
   decompressed on the way with ``decompress=True``.)

Set up as for ``example_incremental_pull``: a connection ``example_api`` and, optionally,
``OAUTHCC_EXAMPLE_OUTPUT``. ``OAUTHCC_EXAMPLE_POKE_INTERVAL`` sets how often the triggerer
polls (default 30 s).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

# Airflow 2.11 to 3.3 alike (airflow.sdk on 3.x)
from airflow.providers.common.compat.sdk import DAG, AirflowFailException, PokeReturnValue, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.sensors.oauth_http import OAuthHttpSensor

OUTPUT_ROOT = os.environ.get("OAUTHCC_EXAMPLE_OUTPUT", "file:///tmp/oauthcc-example").rstrip("/")
POKE_INTERVAL = float(os.environ.get("OAUTHCC_EXAMPLE_POKE_INTERVAL", "30"))


def export_ready(response: Any) -> bool | PokeReturnValue:
    """Done: the download path, to XCom. Failed: fail the task now, no more polling."""
    job = response.json()
    if job["status"] == "failed":
        raise AirflowFailException(f"export {job['id']} failed: {job.get('error')}")
    if job["status"] != "done":
        print(f"export {job['id']} is {job['status']}")
        return False
    return PokeReturnValue(is_done=True, xcom_value=urlsplit(job["download"]).path)


with DAG(
    dag_id="oauthcc_export_job",
    description="POST an export, wait for it deferred, stream its NDJSON file to storage",
    # Each run exports the day before it (ds = its data interval start), on Airflow 2 and 3;
    # with schedule="@daily", Airflow 3 would set ds to the day just starting.
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["oauthcc", "example"],
    doc_md=__doc__,
):
    start_export = OAuthHttpOperator(
        task_id="start_export",
        oauth_conn_id="example_api",
        method="POST",
        endpoint="/v1/exports",
        data={
            "updated_since": "{{ ds }}T00:00:00+00:00",
            "updated_before": "{{ macros.ds_add(ds, 1) }}T00:00:00+00:00",
        },
        response_filter=lambda response: response.json(),
    )

    wait_for_export = OAuthHttpSensor(
        task_id="wait_for_export",
        oauth_conn_id="example_api",
        endpoint="/v1/exports/{{ ti.xcom_pull(task_ids='start_export')['id'] }}",
        response_check=export_ready,
        deferrable=True,
        poke_interval=POKE_INTERVAL,
        timeout=6 * 3600,
    )

    download = OAuthHttpOperator(
        task_id="download",
        oauth_conn_id="example_api",
        endpoint="{{ ti.xcom_pull(task_ids='wait_for_export') }}",
        data={"format": "ndjson"},
        response_format="ndjson",
        output_path=OUTPUT_ROOT + "/exports/{{ ds }}/export.jsonl",
    )

    @task
    def report(summary: dict[str, Any]) -> None:
        print(
            f"Exported {summary['records']} records in {summary['pages']} pages to {summary['path']}"
        )

    start_export >> wait_for_export >> download
    report(download.output)
