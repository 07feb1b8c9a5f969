"""The Test button and workload identity: the assertion file belongs to the API server's host,
so a Test of an edited form sends it only where the stored connection already sends it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from airflow_provider_oauthcc.hooks import connection_test_guard as guard
from airflow_provider_oauthcc.hooks.connection_test_guard import TestForm

STORED = {
    "auth_url": "https://login.microsoftonline.com/t/oauth2/v2.0/token",
    "auth_method": "federated_assertion",
    "client_assertion_file": "/var/run/secrets/azure/tokens/azure-identity-token",
}


def refusal(tested: Mapping[str, Any], stored: Mapping[str, Any] = STORED) -> str | None:
    form = TestForm("wl", password=None, extra=tested)
    return guard.refusal(form, None, tested, lambda: stored)


@pytest.mark.parametrize(
    "change",
    [
        {"auth_url": "https://tester.example/token"},
        {"issuer": "https://tester.example"},
        {"proxies": {"https": "http://tester.example:3128"}},
        {"client_assertion_file": "/var/run/secrets/other/token"},
    ],
)
def test_an_edited_destination_is_refused_though_no_secret_is_stored(
    change: dict[str, Any],
) -> None:
    message = refusal({**STORED, **change})
    assert message is not None and "workload identity assertion" in message
    assert next(iter(change)) in message and "tester.example" not in message


def test_a_new_connection_that_names_an_endpoint_is_refused() -> None:
    tested = {"auth_url": "https://tester.example/token", "client_assertion_file": "/t"}
    assert refusal(tested, stored={}) is not None


def test_the_stored_destination_may_be_tested() -> None:
    assert refusal({**STORED, "scope": "https://graph.microsoft.com/.default"}) is None
