"""Event-driven pull: run when the API has new data, pull exactly that data.

An ``AssetWatcher`` with ``OAuthHttpEventTrigger`` polls the API's change feed from the
triggerer (``GET /v1/changes?since=<cursor>``, with the connection's token). When records
arrive it fires one asset event carrying the cursors (``cursor_from`` -> ``cursor``) and a
count, never the records. The DAG below is scheduled on that asset: its pull starts at the
announced cursor, follows the feed's pages, writes the records as JSON Lines, and puts the
cursor it reached (``high_water_mark``) on its own outlet asset, where the next run, listing
that asset in ``inlets``, starts from. A triggerer restart resumes from the cursor the watcher
stored; nothing is announced twice or skipped.

Needs Airflow 3.0 or newer (asset watchers); on Airflow 2 this file defines no DAG.

Set up: the connection ``example_api`` (as for the other examples), and optionally
``OAUTHCC_EXAMPLE_OUTPUT`` (default ``file:///tmp/oauthcc-example``) and
``OAUTHCC_EXAMPLE_POLL_INTERVAL`` (seconds, default 30).
"""

from __future__ import annotations

import os

from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pagination import CursorPaginator

try:
    from airflow.sdk import DAG, Asset, AssetWatcher
except ImportError:  # Airflow 2: no asset watchers
    AssetWatcher = None

OUTPUT_ROOT = os.environ.get("OAUTHCC_EXAMPLE_OUTPUT", "file:///tmp/oauthcc-example").rstrip("/")
POLL_INTERVAL = float(os.environ.get("OAUTHCC_EXAMPLE_POLL_INTERVAL", "30"))

if AssetWatcher is not None:
    from airflow_provider_oauthcc.triggers.oauth_http_event import OAuthHttpEventTrigger

    FEED = {
        "oauth_conn_id": "example_api",
        "endpoint": "/v1/changes",
        "data": {"limit": 100},
    }
    CHANGES = Asset(
        "oauthcc_example_changes",
        watchers=[
            AssetWatcher(
                name="oauthcc_example_changes_watcher",
                trigger=OAuthHttpEventTrigger(
                    **FEED,
                    cursor_param="since",
                    cursor_path="next_cursor",
                    records_path="records",
                    poll_interval=POLL_INTERVAL,
                ),
            )
        ],
    )
    PULLED = Asset(name="oauthcc_example_changes_pulled", uri=f"{OUTPUT_ROOT}/changes")

    with DAG(
        dag_id="oauthcc_event_driven_pull",
        description="Pull the change feed's new records when the watcher sees them",
        schedule=[CHANGES],
        catchup=False,
        max_active_runs=1,
        tags=["oauthcc", "example"],
        doc_md=__doc__,
    ):
        OAuthHttpOperator(
            task_id="pull_changes",
            **FEED,
            paginate=CursorPaginator("next_cursor", "since", has_more_path="has_more"),
            records_path="records",
            start_cursor="asset_events",
            output_path=OUTPUT_ROOT
            + "/changes/{{ run_id | replace(':', '') | replace('+', '') }}.jsonl",
            inlets=[PULLED],
            outlets=[PULLED],
        )
