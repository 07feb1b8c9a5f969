"""The same paginated pull twice, once deferred: a downstream task checks the XComs agree."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.providers.common.compat.sdk import DAG, task  # airflow.sdk on 3.x; 2.11 too

from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pagination import CursorPaginator

PULL: dict[str, Any] = {
    "oauth_conn_id": "example_api",
    "endpoint": "/v1/cursor/items",
    "data": {"limit": 40},
    "paginate": CursorPaginator("next_cursor", "cursor"),
    "records_path": "items",
}

with DAG(
    dag_id="oauthcc_deferrable_pull",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
):
    sync_pull = OAuthHttpOperator(task_id="sync_pull", **PULL)
    deferred_pull = OAuthHttpOperator(task_id="deferred_pull", deferrable=True, **PULL)

    @task
    def compare(sync: list[Any], deferred: list[Any]) -> None:
        if sync != deferred:
            raise ValueError(f"sync pulled {len(sync)} records, deferred {len(deferred)}")
        print(f"Same XCom from both pulls: {len(sync)} records")

    sync_pull >> deferred_pull
    compare(sync_pull.output, deferred_pull.output)
