"""Token endpoint refusals say what to change, against the real local authorization server:
which client and auth method were refused, which scope was asked for; never the secret."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_oauthcc.auth.client import TokenClient
from airflow_provider_oauthcc.auth.config import ClientConfig
from airflow_provider_oauthcc.auth.errors import TokenRequestRejected
from devserver import DevServer

pytestmark = pytest.mark.integration

SECRET = "s3cret-Value-hints-2718"


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    with DevServer() as srv:
        srv.add_client("etl", secret=SECRET, auth_methods=["client_secret_post"], scope="read")
        yield srv


def refusal(server: DevServer, **extra: Any) -> TokenRequestRejected:
    config = ClientConfig.from_connection(
        client_id="etl", client_secret=SECRET, extra={"auth_url": server.token_url, **extra}
    )
    with pytest.raises(TokenRequestRejected) as caught:
        TokenClient(config).fetch_token()
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.args)
    return caught.value


def test_a_client_registered_for_the_other_secret_method_is_told_so(server: DevServer) -> None:
    error = refusal(server)  # the connection's default: client_secret_basic
    assert error.error == "invalid_client"
    assert "Client ID 'etl', auth method client_secret_basic" in str(error)
    assert "set the extra 'auth_method' to 'client_secret_post'" in str(error)


def test_a_refused_scope_is_echoed(server: DevServer) -> None:
    error = refusal(server, auth_method="client_secret_post", scope="read admin")
    assert error.error == "invalid_scope"
    assert "The request asked for scope 'read admin'" in str(error)
