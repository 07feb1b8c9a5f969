"""OpenLineage datasets for a pull: the API endpoint it reads, the object-storage path it writes.

Imported only when OpenLineage asks (the openlineage provider is optional).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow.providers.common.compat.openlineage.facet import Dataset

    from airflow_provider_oauthcc.airflow_compat import ObjectStoragePath


def api_dataset(url: str) -> Dataset:
    """The endpoint as a dataset: namespace ``scheme://host[:port]``, name the path.

    The query is left out: it holds the run's parameters (dates, cursors), not the dataset,
    and may hold values that are not for a lineage backend. So are any user name and password.
    """
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    authority = f"{host}:{parts.port}" if parts.port else host
    return Dataset(namespace=f"{parts.scheme}://{authority}", name=parts.path or "/")


def storage_dataset(path: ObjectStoragePath) -> Dataset:
    """An object-storage path as OpenLineage names it: ``s3://bucket`` + key, ``file`` + path."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    if path.bucket:
        return Dataset(namespace=f"{path.protocol}://{path.bucket}", name=path.key)
    return Dataset(namespace=path.protocol or "file", name=path.path)
