"""The rule that keeps the Test button from sending a stored secret to a tester's server
(the real API server path: tests/e2e/test_connection_test_guard.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_oauthcc.hooks import connection_test_guard as guard
from airflow_provider_oauthcc.hooks.connection_test_guard import TestForm

SECRET = "stored-Secret-91ac"
STORED = {"auth_url": "https://idp.example/oauth/token", "scope": "read", "verify": True}


def _stored() -> Mapping[str, Any]:
    return STORED


def _refusal(form: TestForm, password: str | None, tested_extra: Mapping[str, Any]) -> str | None:
    return guard.refusal(form, password, tested_extra, _stored)


def test_a_changed_token_endpoint_with_the_stored_secret_is_refused() -> None:
    tested = {**STORED, "auth_url": "https://tester.example/token"}
    form = TestForm("crm_api", password="***", extra=tested)

    message = _refusal(form, SECRET, tested)

    assert message is not None
    assert "auth_url" in message and "password" in message and "'crm_api'" in message
    assert SECRET not in message and "tester.example" not in message


def test_a_password_the_form_left_out_counts_as_stored() -> None:
    tested = {**STORED, "issuer": "https://tester.example"}
    assert _refusal(TestForm("crm_api", password=None, extra=tested), SECRET, tested)


def test_the_stored_secret_may_test_the_stored_destination() -> None:
    tested = {**STORED, "scope": "read write", "timeout": 5}
    assert _refusal(TestForm("crm_api", password="***", extra=tested), SECRET, tested) is None


def test_a_secret_typed_into_the_form_may_go_anywhere() -> None:
    tested = {**STORED, "auth_url": "https://tester.example/token"}
    form = TestForm("crm_api", password="typed-by-tester", extra=tested)
    assert _refusal(form, "typed-by-tester", tested) is None


@pytest.mark.parametrize(
    "change",
    [
        {"proxies": {"https": "http://tester.example:3128"}},
        {"verify": False},
        {"verify_ssl": "false"},
        {"client_cert": "/tmp/tester.pem"},
        {"allow_insecure_http": True},
        {"trust_env": False},
        {"auth_url": None, "issuer": "https://tester.example"},
    ],
)
def test_every_destination_setting_counts(change: dict[str, Any]) -> None:
    tested = {k: v for k, v in {**STORED, **change}.items() if v is not None}
    message = _refusal(TestForm("crm_api", password="***", extra=tested), SECRET, tested)
    assert message is not None
    for key in change:
        assert key in message


def test_a_masked_extra_secret_counts_as_stored() -> None:
    """private_key_jwt: the credential is the private key extra, masked in the form."""
    form_extra = {**STORED, "auth_url": "https://tester.example/token", "private_key": "***"}
    tested = {**form_extra, "private_key": "-----BEGIN PRIVATE KEY-----..."}
    message = _refusal(TestForm("crm_api", password="", extra=form_extra), None, tested)
    assert message is not None and "private_key" in message and "BEGIN" not in message


def test_a_masked_value_nested_in_an_extra_counts() -> None:
    form_extra = {**STORED, "auth_url": "https://tester.example/t", "headers": {"X-Key": "***"}}
    tested = {**form_extra, "headers": {"X-Key": "k-123"}}
    message = _refusal(TestForm("crm_api", password="", extra=form_extra), None, tested)
    assert message is not None and "headers" in message


def test_spellings_of_one_value_are_not_a_change() -> None:
    stored = {"auth_url": " https://idp.example/t ", "verify": "True", "proxies": '{"https": "p"}'}
    tested = {"auth_url": "https://idp.example/t", "verify": True, "proxies": {"https": "p"}}
    assert guard.changed_destination(stored, tested) == []


def test_a_stored_connection_that_cannot_be_read_changes_everything_set() -> None:
    tested = {**STORED}
    message = guard.refusal(TestForm("gone", password="***", extra=tested), SECRET, tested, dict)
    assert message is not None and "auth_url" in message


# Airflow's route, as the API server runs it: the hook is called from inside it.
ROUTE_MODULE, ROUTE_FUNCTION = guard._TEST_ROUTE


def _call_inside_route(local: dict[str, Any], conn_id: str) -> TestForm | None:
    namespace: dict[str, Any] = {"__name__": ROUTE_MODULE, "guard": guard}
    source = (
        f"def {ROUTE_FUNCTION}(local, conn_id):\n"
        "    test_body = local.get('test_body')\n"
        "    transient_conn_id = local.get('transient_conn_id')\n"
        "    team_name = local.get('team_name')\n"
        "    return guard.form_under_test(conn_id)\n"
    )
    exec(compile(source, "<airflow route>", "exec"), namespace)
    result: TestForm | None = namespace[ROUTE_FUNCTION](local, conn_id)
    return result


def _body(**fields: Any) -> Any:
    values = {"connection_id": "crm_api", "password": None, "extra": None, **fields}
    return SimpleNamespace(**values, model_fields_set=set(fields))


def test_the_form_is_read_from_airflows_test_route() -> None:
    extra = {"auth_url": "https://tester.example/token"}
    body = _body(password="***", extra=json.dumps(extra))
    local = {"test_body": body, "transient_conn_id": "Xy12abCD", "team_name": "blue"}

    form = _call_inside_route(local, "Xy12abCD")

    assert form == TestForm("crm_api", password="***", extra=extra, team_name="blue")


def test_fields_the_form_did_not_send_are_none() -> None:
    local = {"test_body": _body(), "transient_conn_id": "Xy12abCD"}
    form = _call_inside_route(local, "Xy12abCD")
    assert form is not None and form.password is None and form.extra is None


def test_outside_a_test_route_or_for_another_connection_nothing_is_checked() -> None:
    assert guard.form_under_test("crm_api") is None
    local = {"test_body": _body(password="***"), "transient_conn_id": "Xy12abCD"}
    assert _call_inside_route(local, "another_conn") is None


def test_a_route_whose_shape_changed_is_not_trusted() -> None:
    with pytest.raises(guard.UncheckableTest):
        _call_inside_route({"transient_conn_id": "Xy12abCD"}, "Xy12abCD")
