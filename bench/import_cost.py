"""DAG-parse import cost: a DAG file using our operator/hook vs one using HttpOperator/HttpHook.

Each sample is a fresh interpreter importing a DAG-style module; the two kinds alternate so
machine noise hits both alike. Prints medians and the ratio (target <= 1.02).

    uv run python bench/import_cost.py [--runs 15]
    AIRFLOW_HOME=$(mktemp -d) .venv-2.11/bin/python bench/import_cost.py   # on Airflow 2.11
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from importlib.metadata import version
from pathlib import Path

BASELINE = """
from airflow.providers.http.hooks.http import HttpHook
from airflow.providers.http.operators.http import HttpOperator
{dag_import}

with DAG("pull", schedule=None):
    HttpOperator(task_id="get", http_conn_id="api", endpoint="/v1/items", method="GET")
"""

OURS_WITH_OPERATOR = """
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
{dag_import}

with DAG("pull", schedule=None):
    OAuthHttpOperator(task_id="get", oauth_conn_id="api", endpoint="/v1/items", method="GET")
"""

OURS_HOOK_ONLY = """
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from airflow.providers.http.operators.http import HttpOperator
{dag_import}

with DAG("pull", schedule=None):
    HttpOperator(task_id="get", http_conn_id="api", endpoint="/v1/items", method="GET")
"""

HEAVY = ("authlib", "cryptography", "redis", "joserfc")


def time_import(folder: Path, module: str, env: dict[str, str]) -> tuple[float, set[str]]:
    code = (
        "import sys, time; t = time.perf_counter(); "
        f"import {module}; "
        "print(time.perf_counter() - t); "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    return float(out[0]), set(filter(None, out[1].split(",")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    try:
        import airflow_provider_oauthcc.operators.oauth_http  # noqa: F401

        ours, label = OURS_WITH_OPERATOR, "OAuthCCHook + OAuthHttpOperator"
    except ImportError:
        ours, label = OURS_HOOK_ONLY, "OAuthCCHook (operator not built yet)"

    # What a user writes: airflow.sdk's DAG on Airflow 3, airflow's on 2.x.
    try:
        import airflow.sdk  # noqa: F401

        dag_import = "from airflow.sdk import DAG"
    except ImportError:
        dag_import = "from airflow import DAG"

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, text in (("dag_baseline.py", BASELINE), ("dag_ours.py", ours)):
            (folder / name).write_text(textwrap.dedent(text).format(dag_import=dag_import))
        env = dict(os.environ, AIRFLOW_HOME=str(folder / "home"), PYTHONDONTWRITEBYTECODE="1")
        # Warm the OS file cache once each; note which heavy modules only ours pulls in.
        _, heavy_baseline = time_import(folder, "dag_baseline", env)
        _, heavy_ours = time_import(folder, "dag_ours", env)
        extra_heavy = sorted(heavy_ours - heavy_baseline)
        baseline: list[float] = []
        candidate: list[float] = []
        started = time.perf_counter()
        for _ in range(args.runs):
            baseline.append(time_import(folder, "dag_baseline", env)[0])
            candidate.append(time_import(folder, "dag_ours", env)[0])
    base, cand = statistics.median(baseline), statistics.median(candidate)
    print(
        f"DAG file import on Airflow {version('apache-airflow')}, median of {args.runs} fresh "
        "interpreters each, interleaved"
    )
    print(f"  HttpHook + HttpOperator      : {base * 1000:8.1f} ms")
    print(f"  {label:29s}: {cand * 1000:8.1f} ms")
    print(f"  ratio (ours / baseline)      : {cand / base:8.3f}   (target <= 1.02)")
    print(f"  heavy modules only ours loads: {', '.join(extra_heavy) or 'none'}")
    print(f"  bench wall time              : {time.perf_counter() - started:8.1f} s")


if __name__ == "__main__":
    main()
