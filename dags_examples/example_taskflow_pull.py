"""TaskFlow: the hook's pull API in ``@task`` code.

``count_items`` walks the records of a cursor-paginated endpoint in Python with
``hook.paginate(...).records()`` (one page in memory at a time) and returns a small result.
``land_items`` streams a ``Link``-paginated endpoint to object storage with ``hook.pull_to(...)``
and returns the same summary ``OAuthHttpOperator`` returns; the file appears only once the pull
completed. ``compare`` checks that both saw the same records. Both pulls get the operator's
per-request retries (429/503 after Retry-After, 5xx and lost connections with backoff), its
origin rule and its progress lines in the task log.

Set up as for ``example_incremental_pull``: a connection ``example_api`` and, optionally,
``OAUTHCC_EXAMPLE_OUTPUT``. The window is the run's data interval (the previous day), or from
the ``updated_since`` param.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Param, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from airflow_provider_oauthcc.pull.pagination import CursorPaginator, LinkHeaderPaginator

OUTPUT_ROOT = os.environ.get("OAUTHCC_EXAMPLE_OUTPUT", "file:///tmp/oauthcc-example").rstrip("/")


def window(params: dict[str, Any], start: datetime, end: datetime) -> dict[str, str]:
    """The API's query for this run's window."""
    return {
        "updated_since": params.get("updated_since") or start.isoformat(),
        "updated_before": end.isoformat(),
    }


with DAG(
    dag_id="oauthcc_taskflow_pull",
    description="The hook's pull API in TaskFlow tasks",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
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

    @task
    def count_items(
        params: Any = None, data_interval_start: Any = None, data_interval_end: Any = None
    ) -> dict[str, Any]:
        """Records walked in Python: count them and find the newest, one page at a time."""
        hook = OAuthCCHook(oauth_conn_id="example_api")
        pull = hook.paginate(
            "/v1/cursor/items",
            paginator=CursorPaginator(cursor_path="next_cursor", cursor_param="cursor"),
            records_path="items",
            data={**window(params, data_interval_start, data_interval_end), "limit": 200},
            max_pages=1_000,  # a safety bound: pull.truncated says if it was reached
        )
        count, newest = 0, ""
        for record in pull.records():
            count += 1
            newest = max(newest, record["updated_at"])
        print(f"Counted {count} records in {pull.pages} pages; newest updated at {newest}")
        return {"records": count, "newest": newest, "truncated": pull.truncated}

    @task
    def land_items(
        params: Any = None,
        data_interval_start: Any = None,
        data_interval_end: Any = None,
        ds: str | None = None,
        ts_nodash: str | None = None,
    ) -> dict[str, Any]:
        """Records streamed to storage: the summary comes back (path, records, pages ...)."""
        hook = OAuthCCHook(oauth_conn_id="example_api")
        return hook.pull_to(
            f"{OUTPUT_ROOT}/taskflow/{ds}/items_{ts_nodash}.jsonl",
            "/v1/link/items",
            paginator=LinkHeaderPaginator(),
            data={**window(params, data_interval_start, data_interval_end), "limit": 100},
        )

    @task
    def compare(counted: dict[str, Any], landed: dict[str, Any]) -> None:
        if counted["records"] != landed["records"]:
            raise ValueError(f"counted {counted}, but landed {landed}")
        print(f"Both pulls saw {landed['records']} records; landed at {landed['path']}")

    compare(count_items(), land_items())
