"""The records of a pull: found in each page, and written as JSON Lines to object storage with
the summary the operator returns. Shared by the operator and the hook's ``pull_to``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_oauthcc.pull.pagination import Page, select_records

if TYPE_CHECKING:
    import requests

    from airflow_provider_oauthcc.pull.output import JsonLinesWriter
    from airflow_provider_oauthcc.pull.pages import Pull


def records_in(
    records_path: str | None = None,
    response_filter: Callable[[requests.Response], Any] | None = None,
) -> Callable[[Page], list[Any]]:
    """How to find a page's records: ``response_filter(response)`` (which must return a
    list), else the list at ``records_path`` in the JSON body (None: the body is the list)."""
    if response_filter is None:
        return lambda page: select_records(page.body, records_path)

    def filtered(page: Page) -> list[Any]:
        records = response_filter(page.response)
        if not isinstance(records, list):
            raise TypeError(
                "response_filter must return the page's records as a list, got "
                f"{type(records).__name__}"
            )
        return records

    return filtered


def write_json_lines(pull: Pull, writer: JsonLinesWriter) -> dict[str, Any]:
    """Write every record of ``pull`` through ``writer`` (published only when the pull is
    complete); returns the summary ``{"path", "records", "pages", "bytes", "duration_s",
    "truncated", "retries"}``."""
    pull.written = lambda: writer.bytes
    pull.where = pull.where or f"to {writer.target}"
    with writer:
        for page in pull:
            writer.write(page.records)
    return {
        "path": str(writer.target),
        "records": writer.records,
        "pages": pull.pages,
        "bytes": writer.bytes,
        "duration_s": round(pull.elapsed, 3),
        "truncated": pull.truncated,
        "retries": pull.retries,
    }
