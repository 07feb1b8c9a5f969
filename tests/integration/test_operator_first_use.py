"""What a user moving from HttpOperator meets first, against the real local servers: the
``http_conn_id`` and ``output`` names, the request line in the log, an empty time window made
visible, and ``fail_on_empty``."""

from __future__ import annotations

import inspect
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.exceptions import AirflowProviderDeprecationWarning

from airflow_provider_oauthcc.auth.errors import EmptyPullError
from airflow_provider_oauthcc.operators.oauth_http import OAuthHttpOperator
from airflow_provider_oauthcc.pull.pagination import LinkHeaderPaginator
from devserver import DevServer

from .conftest import API_SECRET, api_connection

pytestmark = pytest.mark.integration

DAY = datetime(2024, 1, 2, tzinfo=UTC)


@pytest.fixture(autouse=True)
def crm(api: DevServer, monkeypatch: pytest.MonkeyPatch) -> str:
    return api_connection(api, monkeypatch, records=120)


def test_http_conn_id_names_the_connection_as_in_httpoperator() -> None:
    operator = OAuthHttpOperator(task_id="pull", http_conn_id="crm", endpoint="/v1/whoami")
    assert operator.oauth_conn_id == "crm"
    assert operator.execute({})  # the token and the call went through connection crm


def test_http_conn_id_and_oauth_conn_id_may_agree_but_not_differ() -> None:
    same = OAuthHttpOperator(task_id="same", oauth_conn_id="crm", http_conn_id="crm")
    assert same.oauth_conn_id == "crm"
    with pytest.raises(TypeError, match="oauth_conn_id='crm' and http_conn_id='other' differ"):
        OAuthHttpOperator(task_id="differ", oauth_conn_id="crm", http_conn_id="other")


def test_the_sensor_takes_http_conn_id_too() -> None:
    from airflow_provider_oauthcc.sensors.oauth_http import OAuthHttpSensor

    sensor = OAuthHttpSensor(task_id="wait", http_conn_id="crm", endpoint="/v1/whoami")
    assert sensor.oauth_conn_id == "crm"
    assert sensor.poke({})  # type: ignore[arg-type]  (the token came through connection crm)
    with pytest.raises(TypeError, match="differ"):
        OAuthHttpSensor(task_id="w", oauth_conn_id="crm", http_conn_id="other", endpoint="/")


def test_the_output_argument_has_the_name_of_its_template_field() -> None:
    arguments = inspect.signature(OAuthHttpOperator.__init__).parameters
    assert "output_path" in arguments and "output_path" in OAuthHttpOperator.template_fields


def test_output_is_still_accepted_with_a_deprecation_warning(tmp_path: Path) -> None:
    target = str(tmp_path / "items.jsonl")
    with pytest.warns(AirflowProviderDeprecationWarning, match="now called 'output_path'"):
        operator = OAuthHttpOperator(
            task_id="old", oauth_conn_id="crm", endpoint="/v1/link/items",
            paginate=LinkHeaderPaginator(), output=target,
        )  # fmt: skip
    assert operator.output_path == target
    assert operator.execute({})["records"] == 120
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        OAuthHttpOperator(task_id="new", oauth_conn_id="crm", output_path=target)
    with pytest.raises(TypeError, match="output_path only"):
        OAuthHttpOperator(task_id="both", output=target, output_path=target)


def window_pull(start: datetime, end: datetime, **kwargs: Any) -> OAuthHttpOperator:
    return OAuthHttpOperator(
        task_id="pull",
        oauth_conn_id="crm",
        endpoint="/v1/link/items",
        data={"updated_since": start.isoformat(), "updated_before": end.isoformat()},
        paginate=LinkHeaderPaginator(),
        **kwargs,
    )


def test_the_first_request_line_shows_the_query(capfd: pytest.CaptureFixture[str]) -> None:
    window_pull(DAY, DAY).execute({})
    logs = "".join(capfd.readouterr())
    assert (
        "Pulling GET /v1/link/items?updated_since=2024-01-02T00:00:00%2B00:00"
        "&updated_before=2024-01-02T00:00:00%2B00:00 into XCom"
    ) in logs


def test_the_request_line_keeps_secret_looking_parameters_out(
    capfd: pytest.CaptureFixture[str],
) -> None:
    operator = window_pull(DAY, DAY)
    operator.data = {**operator.data, "api_key": "k3y-Value-in-query-577"}
    operator.execute({})
    logs = "".join(capfd.readouterr())
    assert "&api_key=*** into XCom" in logs and "k3y-Value-in-query-577" not in logs


def test_an_empty_data_interval_used_by_the_request_is_a_warning(
    capfd: pytest.CaptureFixture[str],
) -> None:
    context: Any = {"data_interval_start": DAY, "data_interval_end": DAY}
    assert window_pull(DAY, DAY).execute(context) == []
    logs = "".join(capfd.readouterr())
    assert "data interval is empty" in logs and "CronDataIntervalTimetable" in logs


def test_a_full_data_interval_is_no_warning(capfd: pytest.CaptureFixture[str]) -> None:
    later = datetime(2030, 1, 1, tzinfo=UTC)
    context: Any = {"data_interval_start": DAY, "data_interval_end": later}
    window_pull(DAY, later).execute(context)
    assert "data interval is empty" not in "".join(capfd.readouterr())


def test_fail_on_empty_fails_a_pull_of_no_record(tmp_path: Path) -> None:
    assert window_pull(DAY, DAY).execute({}) == []  # off by default
    with pytest.raises(EmptyPullError, match="returned no record and fail_on_empty is set"):
        window_pull(DAY, DAY, fail_on_empty=True).execute({})
    target = tmp_path / "items.jsonl"
    with pytest.raises(EmptyPullError, match="GET /v1/link/items\\?updated_since="):
        window_pull(DAY, DAY, fail_on_empty=True, output_path=str(target)).execute({})
    everything = window_pull(datetime(2000, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))
    everything.fail_on_empty = True
    assert len(everything.execute({})) == 120


def test_fail_on_empty_needs_records_to_count() -> None:
    with pytest.raises(ValueError, match="fail_on_empty counts records"):
        OAuthHttpOperator(task_id="call", oauth_conn_id="crm", fail_on_empty=True)


def test_token_url_works_and_the_log_says_why_auth_url_is_better(
    api: DevServer, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from tests.support.connections import conn_json

    value = conn_json(api.api_url, "app", API_SECRET, token_url=api.token_url, scope="read")
    monkeypatch.setenv("AIRFLOW_CONN_CRM_TOKEN_URL", value)
    operator = OAuthHttpOperator(task_id="t", oauth_conn_id="crm_token_url", endpoint="/v1/whoami")
    assert operator.execute({})
    logs = "".join(capfd.readouterr())
    assert "extra token_url is read as auth_url" in logs and "has extras this hook" not in logs
