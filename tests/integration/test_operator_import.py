"""A DAG file importing OAuthHttpOperator parses about as fast as one importing HttpOperator:
beyond what HttpOperator imports, only this package's light modules are loaded."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

PROBE = textwrap.dedent(
    """
    import json, sys
    import airflow.providers.http.operators.http
    before = set(sys.modules)
    from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
    from airflow_provider_oauthcc.pagination import LinkHeaderPaginator
    OAuthHttpOperator(
        task_id="t", oauth_conn_id="c", endpoint="/x", paginate=LinkHeaderPaginator(),
        output="file:///tmp/{{ ds }}.jsonl",
    )
    print(json.dumps(sorted(set(sys.modules) - before)))
    """
)
LIGHT = {
    "airflow_provider_oauthcc",
    "airflow_provider_oauthcc.airflow_compat",  # stdlib only; Airflow names resolve on use
    "airflow_provider_oauthcc.operators",
    "airflow_provider_oauthcc.argument_aliases",  # http_conn_id / output: names only
    # allowed_origins is checked at parse time by the egress gate (the standard library; urllib3
    # is imported on use, and HttpOperator has it loaded already) and its error type
    "airflow_provider_oauthcc.auth",
    "airflow_provider_oauthcc.auth.egress",
    "airflow_provider_oauthcc.auth.errors",
    # a task's scope / audience / resource are checked at parse time (json, os and the above)
    "airflow_provider_oauthcc.auth.config",
    "airflow_provider_oauthcc.auth.token_params",
    # auth.config reads the request budget's settings with these (the standard library only)
    "airflow_provider_oauthcc.auth.metrics",
    "airflow_provider_oauthcc.auth.rate_limit_core",
    "airflow_provider_oauthcc.auth.rate_limit_headers",
    "airflow_provider_oauthcc.operators.oauth_http",
    "airflow_provider_oauthcc.pagination",  # the public path of the paginators
    "airflow_provider_oauthcc.pull",  # the package: its __init__ imports nothing
    "airflow_provider_oauthcc.pull.pagination",
}


def test_dag_files_do_not_pay_for_the_oauth_core() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    added = set(json.loads(result.stdout.strip().splitlines()[-1]))
    heavy = {
        m
        for m in added
        if m.split(".")[0] in ("authlib", "joserfc", "redis", "tenacity", "fsspec", "upath")
    }
    assert not heavy, f"imported at parse time: {sorted(heavy)}"
    assert {m for m in added if m.startswith("airflow_provider_oauthcc")} <= LIGHT
