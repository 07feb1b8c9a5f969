"""A 200,000-record pull to a file runs in bounded memory: the peak RSS of a task process
pulling 200k records is within a few MiB of one pulling 2k records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from devserver import DevServer
from devserver.dataset import EPOCH, STEP, format_timestamp
from tests.support.connections import conn_json

pytestmark = pytest.mark.integration

SECRET = "s3cret-Value-mem-5150"
# Holding 200k small records as Python objects takes ~100 MiB; streaming holds one page.
ALLOWED_GROWTH_MIB = 25

TASK = textwrap.dedent(
    """
    import json, resource, sys
    from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
    from airflow_provider_oauthcc.pull.pagination import CursorPaginator

    summary = OAuthHttpOperator(
        task_id="pull",
        oauth_conn_id="crm",
        endpoint="/v1/cursor/items",
        data=json.loads(sys.argv[2]),
        paginate=CursorPaginator(),
        records_path="items",
        output=sys.argv[1],
    ).execute({})
    summary["peak_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("SUMMARY " + json.dumps(summary))
    """
)


@pytest.fixture(scope="module")
def api() -> Iterator[DevServer]:
    with DevServer(capture=False) as srv:
        srv.add_client("app", secret=SECRET, scope="read")
        yield srv


def start_task_process(
    api: DevServer, target: Path, data: dict[str, object]
) -> subprocess.Popen[str]:
    env = dict(
        os.environ,
        AIRFLOW_CONN_CRM=conn_json(api.api_url, "app", SECRET, auth_url=api.token_url),
    )
    return subprocess.Popen(
        [sys.executable, "-c", TASK, target.as_uri(), json.dumps(data)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def summary_of(process: subprocess.Popen[str]) -> dict[str, int]:
    stdout, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    line = next(x for x in stdout.splitlines() if x.startswith("SUMMARY "))
    summary: dict[str, int] = json.loads(line.removeprefix("SUMMARY "))
    return summary


def test_a_200k_record_pull_runs_in_bounded_memory(api: DevServer, tmp_path: Path) -> None:
    api.dataset_size = 200_000
    first_2k = {"limit": 1000, "updated_before": format_timestamp(EPOCH + 2_000 * STEP)}
    # Both task processes run at once; each measures its own peak.
    small_process = start_task_process(api, tmp_path / "small.jsonl", first_2k)
    large_process = start_task_process(api, tmp_path / "large.jsonl", {"limit": 1000})
    small, large = summary_of(small_process), summary_of(large_process)
    assert small["records"] == 2_000 and large["records"] == 200_000
    assert large["pages"] == 200
    with (tmp_path / "large.jsonl").open() as file:
        assert sum(1 for _ in file) == 200_000
    growth_mib = (large["peak_rss_kib"] - small["peak_rss_kib"]) / 1024
    assert growth_mib < ALLOWED_GROWTH_MIB, (
        f"peak RSS grew by {growth_mib:.1f} MiB from 2k to 200k records "
        f"({small['peak_rss_kib'] // 1024} -> {large['peak_rss_kib'] // 1024} MiB)"
    )
