"""Fan-out: one mapped task per API endpoint, each with its own pagination style.

``OAuthHttpOperator.partial(...).expand_kwargs([...])`` creates one task instance per
endpoint at run time; they share the connection and the output location, and each streams
its records to its own JSON Lines file. ``summarize`` collects the mapped summaries.

Set up as for ``example_incremental_pull``: a connection ``example_api`` and, optionally,
``OAUTHCC_EXAMPLE_OUTPUT``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.providers.common.compat.sdk import DAG, task  # airflow.sdk on 3.x; 2.11 too

from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pagination import (
    CursorPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    PageNumberPaginator,
)

OUTPUT_ROOT = os.environ.get("OAUTHCC_EXAMPLE_OUTPUT", "file:///tmp/oauthcc-example").rstrip("/")
RUN_DIR = OUTPUT_ROOT + "/fan_out/{{ ds }}/{{ ts_nodash }}"

ENDPOINTS = [
    {
        "endpoint": "/v1/next/items",
        "paginate": NextUrlPaginator(next_url_path="next"),
        "records_path": "data",
        "output_path": RUN_DIR + "/next.jsonl",
    },
    {
        "endpoint": "/v1/cursor/items",
        "paginate": CursorPaginator(cursor_path="next_cursor", cursor_param="cursor"),
        "records_path": "items",
        "output_path": RUN_DIR + "/cursor.jsonl",
    },
    {
        "endpoint": "/v1/page/items",
        "paginate": PageNumberPaginator(
            page_param="page", total_pages_path="total_pages", page_size=250
        ),
        "records_path": "data",
        "output_path": RUN_DIR + "/page.jsonl",
    },
    {
        "endpoint": "/v1/offset/items",
        "paginate": OffsetPaginator(limit=250, total_path="total"),
        "records_path": "results",
        "output_path": RUN_DIR + "/offset.jsonl",
    },
]

with DAG(
    dag_id="oauthcc_fan_out",
    description="One mapped OAuthHttpOperator per endpoint",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["oauthcc", "example"],
    doc_md=__doc__,
):
    pulls = OAuthHttpOperator.partial(
        task_id="pull",
        oauth_conn_id="example_api",
        data={"limit": 250},
        max_pages=1000,
    ).expand_kwargs(ENDPOINTS)

    @task
    def summarize(summaries: Sequence[dict[str, Any]]) -> dict[str, int]:
        totals = {"files": 0, "records": 0, "pages": 0, "bytes": 0}
        for summary in summaries[:]:  # one request for all, not one per item
            print(f"{summary['path']}: {summary['records']} records in {summary['pages']} pages")
            totals["files"] += 1
            for key in ("records", "pages", "bytes"):
                totals[key] += summary[key]
        print(f"Total: {totals}")
        return totals

    summarize(pulls.output)
