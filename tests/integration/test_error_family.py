"""One Airflow-native exception family (issue 10 item 12).

``OAuthCCError`` is an ``AirflowException``; what no retry can fix (a misconfigured connection,
``invalid_client`` / ``unauthorized_client`` / ``invalid_scope``, a next page on a foreign origin)
is an ``AirflowFailException``, which Airflow's task runner fails without using up the task's
retries; HttpOperator-style ``retry_args`` work on the provider's errors and never retry the
fail-fast ones; a sensor's ``soft_fail`` / ``never_fail`` act as on any sensor, in poke mode,
before deferring and after; an answer cut off mid-body ends as ``ApiConnectionError``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
import tenacity
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
)

from airflow_provider_oauthcc.auth.errors import (
    ApiConnectionError,
    ApiError,
    OAuthCCConfigError,
    OAuthCCError,
    TokenRequestError,
    TokenRequestRejected,
)
from airflow_provider_oauthcc.auth.token import parse_token_response
from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pull.pagination import LinkHeaderPaginator
from airflow_provider_oauthcc.sensors.oauth_http import OAuthHttpSensor
from devserver import DevServer
from tests.support.connections import airflow_conn, conn_json
from tests.support.deferral import run_deferrable

pytestmark = pytest.mark.integration

SECRET = "s3cret-Value-family-3141"


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    with DevServer(api_workers=16) as srv:
        srv.add_client("app", secret=SECRET, scope="read", default_scope="read")
        yield srv


@pytest.fixture(autouse=True)
def _reset(server: DevServer) -> None:
    server.reset()


def connection(server: DevServer, secret: str = SECRET, **extra: Any) -> Any:
    return airflow_conn(
        "family", conn_json(server.api_url, "app", secret, auth_url=server.token_url, **extra)
    )


# -- the classes ----------------------------------------------------------------------------------


def test_the_family_is_airflow_native() -> None:
    assert issubclass(OAuthCCError, AirflowException)
    for fail_fast in (OAuthCCConfigError, TokenRequestRejected):
        assert issubclass(fail_fast, AirflowFailException)
    for retryable in (TokenRequestError, ApiError, ApiConnectionError):
        assert not issubclass(retryable, AirflowFailException)
    assert issubclass(OAuthCCConfigError, ValueError)  # as before
    assert issubclass(TokenRequestRejected, TokenRequestError)


def test_the_core_imports_without_airflow() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["airflow"] = None  # as if Airflow were not installed
        from airflow_provider_oauthcc.auth import errors, token
        assert errors.OAuthCCError.__mro__[1] is Exception, errors.OAuthCCError.__mro__
        assert issubclass(errors.TokenRequestRejected, errors.OAuthCCFailFast)
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize(
    ("error", "fail_fast"),
    [
        ("invalid_client", True),
        ("unauthorized_client", True),
        ("invalid_scope", True),
        ("invalid_request", False),
        ("invalid_grant", False),
        ("temporarily_unavailable", False),
    ],
)
def test_token_endpoint_errors_that_no_retry_fixes_fail_fast(error: str, fail_fast: bool) -> None:
    with pytest.raises(TokenRequestError) as caught:
        parse_token_response(
            status=400 if error != "invalid_client" else 401,
            content_type="application/json",
            body=f'{{"error": "{error}", "error_description": "nope"}}'.encode(),
            sent_at=0.0,
            default_expires_in=3600,
        )
    assert caught.value.error == error
    assert isinstance(caught.value, AirflowFailException) is fail_fast


# -- the operator ---------------------------------------------------------------------------------


HTTP_OPERATOR_RETRY_ARGS = {
    "retry": tenacity.retry_if_exception_type(AirflowException),
    "stop": tenacity.stop_after_attempt(3),
    "wait": tenacity.wait_none(),
    "reraise": True,
}


def test_a_wrong_secret_fails_fast_and_retry_args_do_not_retry_it(server: DevServer) -> None:
    with connection(server, secret="wrong-secret-value"):
        task = OAuthHttpOperator(
            task_id="t",
            oauth_conn_id="family",
            endpoint="/v1/whoami",
            retry_args=HTTP_OPERATOR_RETRY_ARGS,
        )
        with pytest.raises(AirflowFailException) as caught:
            task.execute({})
    assert isinstance(caught.value, TokenRequestRejected)
    assert caught.value.error == "invalid_client"
    assert server.stats.token_requests == 1


def test_a_scope_the_client_may_not_have_fails_fast(server: DevServer) -> None:
    with connection(server, scope="admin"):
        task = OAuthHttpOperator(task_id="t", oauth_conn_id="family", endpoint="/v1/whoami")
        with pytest.raises(TokenRequestRejected) as caught:
            task.execute({})
    assert caught.value.error == "invalid_scope"


def test_retry_args_written_for_http_operator_retry_api_errors(server: DevServer) -> None:
    server.api_faults.add(status=500, times=2)
    with connection(server):
        task = OAuthHttpOperator(
            task_id="t",
            oauth_conn_id="family",
            endpoint="/v1/whoami",
            retry_args=HTTP_OPERATOR_RETRY_ARGS,
        )
        assert "app" in task.execute({})
    assert server.stats.api_requests_by_status[500] == 2


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_cut_off_after_the_last_retry_is_an_api_connection_error(
    server: DevServer, stream: bool
) -> None:
    server.dataset_size = 100
    server.api_faults.add(reset=True, every=1)
    with connection(server):
        task = OAuthHttpOperator(
            task_id="t",
            oauth_conn_id="family",
            endpoint="/v1/link/items",
            paginate=LinkHeaderPaginator(),
            page_retries=1,
            retry_max_wait=0.1,
            extra_options={"stream": stream},
        )
        with pytest.raises(ApiConnectionError, match=r"^Page 1: .*gave up after 2 attempts"):
            task.execute({})


# -- the sensor -----------------------------------------------------------------------------------


def sensor(**kwargs: Any) -> OAuthHttpSensor:
    kwargs.setdefault("endpoint", "/v1/whoami")
    return OAuthHttpSensor(
        task_id="wait", oauth_conn_id="family", poke_interval=0.1, timeout=10, **kwargs
    )


@pytest.mark.parametrize("deferrable", [False, True])
def test_soft_fail_skips_on_a_fail_fast_error_in_every_mode(
    server: DevServer, deferrable: bool
) -> None:
    with connection(server, secret="wrong-secret-value"):
        with pytest.raises(AirflowSkipException):
            run_deferrable(sensor(soft_fail=True, deferrable=deferrable), {})
        with pytest.raises(TokenRequestRejected):
            run_deferrable(sensor(deferrable=deferrable), {})


@pytest.mark.parametrize("deferrable", [False, True])
def test_an_api_error_fails_a_soft_fail_sensor_but_skips_a_never_fail_one(
    server: DevServer, deferrable: bool
) -> None:
    """As any sensor: soft_fail is for fail-fast errors, never_fail for every error."""
    with connection(server):
        server.api_faults.add(status=500, every=1)
        with pytest.raises(ApiError):
            run_deferrable(sensor(soft_fail=True, deferrable=deferrable), {})
        with pytest.raises(AirflowSkipException):
            run_deferrable(sensor(never_fail=True, deferrable=deferrable), {})


def test_an_error_in_the_triggerer_skips_a_soft_fail_sensor(server: DevServer) -> None:
    """The task's first check says "not yet"; the triggerer's poll then gets a 500."""
    job = server.exports.create(ready_after=30.0)
    server.api_faults.add(status=500, every=2)  # the task's check passes, the triggerer's fails
    with connection(server):
        task = sensor(
            endpoint=f"/v1/exports/{job.id}",
            response_check=lambda response: response.json()["status"] == "done",
            soft_fail=True,
            deferrable=True,
        )
        with pytest.raises(AirflowSkipException):
            run_deferrable(task, {})


def test_a_refused_credential_in_the_triggerer_fails_fast_too(server: DevServer) -> None:
    """Deferred, the token is fetched in the triggerer: its refusal must come back fail-fast."""
    with connection(server, secret="wrong-secret-value"):
        task = OAuthHttpOperator(
            task_id="t", oauth_conn_id="family", endpoint="/v1/whoami", deferrable=True
        )
        with pytest.raises(TokenRequestRejected) as caught:
            run_deferrable(task, {})
    assert isinstance(caught.value, AirflowFailException)
    assert caught.value.error == "invalid_client"
