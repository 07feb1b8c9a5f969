"""Paginators, at the import path of earlier releases; they live in ``pull.pagination``."""

from airflow_provider_oauthcc.pull.pagination import (
    CursorPaginator,
    FunctionPaginator,
    LinkHeaderPaginator,
    NextUrlPaginator,
    OffsetPaginator,
    Page,
    PageNumberPaginator,
    PageRequest,
    Paginator,
    select_records,
)

__all__ = [
    "CursorPaginator",
    "FunctionPaginator",
    "LinkHeaderPaginator",
    "NextUrlPaginator",
    "OffsetPaginator",
    "Page",
    "PageNumberPaginator",
    "PageRequest",
    "Paginator",
    "select_records",
]
