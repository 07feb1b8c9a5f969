"""Lineage of a pull (issue 14, item 3): the API endpoint in, the final object-storage path out.

Hook-level lineage (what Airflow's ``HookLineageCollector`` gathers during the task) names the
published path once and never the temporary ``.partial`` file; ``OAuthHttpOperator``'s
``get_openlineage_facets_on_complete`` gives OpenLineage the same two datasets.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pull.pagination import LinkHeaderPaginator
from devserver import DevServer

from .conftest import API_SECRET, api_connection

pytestmark = pytest.mark.integration

SECRET = API_SECRET
OPENLINEAGE_MISSING = (
    "the OpenLineage provider is not installed: add "
    '"apache-airflow-providers-openlineage>=2.20.3" to the dev dependency group in '
    "pyproject.toml (then uv sync)"
)


@pytest.fixture(autouse=True)
def crm(api: DevServer, monkeypatch: pytest.MonkeyPatch) -> str:
    return api_connection(api, monkeypatch, records=120)  # 3 pages of 50


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A real HookLineageCollector, as Airflow uses when a lineage reader is registered,
    wherever Airflow (ObjectStoragePath included) and this package look it up."""
    import airflow.providers.common.compat.sdk as compat_sdk
    from airflow.providers.common.compat.sdk import HookLineageCollector

    collector = HookLineageCollector()
    monkeypatch.setattr(compat_sdk, "get_hook_lineage_collector", lambda: collector, raising=False)
    for name in ("airflow.sdk.lineage", "airflow.lineage.hook"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "get_hook_lineage_collector"):
            monkeypatch.setattr(module, "get_hook_lineage_collector", lambda: collector)
    return collector


def pull_to(target: Path, **kwargs: Any) -> OAuthHttpOperator:
    operator = OAuthHttpOperator(
        task_id="pull",
        oauth_conn_id="crm",
        endpoint="/v1/link/items",
        data={"limit": 50},
        paginate=LinkHeaderPaginator(),
        output=f"file://{target}",
        **kwargs,
    )
    operator.execute({})
    return operator


def test_hook_lineage_reports_the_final_path_once_never_the_partial(
    collector: Any, tmp_path: Path
) -> None:
    target = tmp_path / "items.jsonl"
    pull_to(target)
    lineage = collector.collected_assets
    outputs = [(info.asset.uri, info.count) for info in lineage.outputs]
    assert outputs == [(f"file://{target}", 1)]
    assert not any(".partial" in info.asset.uri for info in lineage.inputs + lineage.outputs)
    assert len(target.read_text().splitlines()) == 120


def test_a_failed_pull_reports_no_output(collector: Any, api: DevServer, tmp_path: Path) -> None:
    api.api_faults.add(status=500, every=3)  # page 3 fails on every attempt
    with pytest.raises(Exception, match="Page 3"):
        pull_to(tmp_path / "items.jsonl", page_retries=0)
    assert collector.collected_assets.outputs == []
    assert list(tmp_path.iterdir()) == []


def openlineage_dataset() -> Any:
    try:
        importlib.import_module("airflow.providers.openlineage")
    except ImportError:
        pytest.fail(OPENLINEAGE_MISSING)
    from airflow.providers.common.compat.openlineage.facet import Dataset

    return Dataset


def test_openlineage_facets_name_the_endpoint_and_the_final_path(
    api: DevServer, tmp_path: Path
) -> None:
    dataset = openlineage_dataset()
    from airflow.providers.openlineage.extractors import OperatorLineage

    target = tmp_path / "day=2026-01-01" / "items.jsonl"
    operator = pull_to(target)
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert isinstance(lineage, OperatorLineage)
    api_origin = api.api_url.rstrip("/")
    assert lineage.inputs == [dataset(namespace=api_origin, name="/v1/link/items")]
    assert lineage.outputs == [dataset(namespace="file", name=str(target))]


def test_openlineage_without_output_has_the_endpoint_only(api: DevServer) -> None:
    dataset = openlineage_dataset()
    operator = OAuthHttpOperator(
        task_id="call", oauth_conn_id="crm", endpoint="/v1/link/items", data={"limit": 5}
    )
    operator.execute({})
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert lineage.inputs == [dataset(namespace=api.api_url.rstrip("/"), name="/v1/link/items")]
    assert lineage.outputs == []
