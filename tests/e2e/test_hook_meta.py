"""``GET /ui/connections/hook_meta``, which the UI builds the connection form from, serves every
field of the OAuth2 Client Credentials form with its label and schema (real API server)."""

from __future__ import annotations

from typing import Any

import pytest
from packaging.version import Version

from airflow_provider_oauthcc.connection_fields import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from tests.support import stage
from tests.support.airflow_api_server import AirflowApiServer, shared_api_server

pytestmark = pytest.mark.e2e

CONN_TYPE = "oauth2_client_credentials"


def _airflow_version() -> Version:
    import airflow

    return Version(airflow.__version__)


if _airflow_version() < Version("3.0.0"):
    pytest.skip(
        "Airflow 2.x has no API server and no React UI (`airflow api-server`, "
        "`/ui/connections/hook_meta`): its connection form is Flask AppBuilder's, whose fields "
        "tests/unit/test_legacy_connection_form.py checks; no browser test of it yet",
        allow_module_level=True,
    )


# 3.2+ serves the form from provider info; older versions from the hook's WTForms classmethods.
FORM_FROM_PROVIDER_INFO = _airflow_version() >= Version("3.2.0")


@pytest.fixture(scope="module")
def api_server() -> AirflowApiServer:
    if not FORM_FROM_PROVIDER_INFO:
        stage.importorskip(
            "wtforms",
            reason=f"Airflow {_airflow_version()} builds provider connection forms only when "
            "WTForms is installed (apache/airflow#55841; it comes with the FAB provider): "
            "without it no provider's custom fields reach the UI",
        )
    return shared_api_server()


@pytest.fixture(scope="module")
def hook_meta(api_server: AirflowApiServer) -> dict[str, Any]:
    response = api_server.api("GET", "/ui/connections/hook_meta")
    assert response.status_code == 200, response.text[:1000]
    served: list[dict[str, Any]] = response.json()
    ours = [meta for meta in served if meta["connection_type"] == CONN_TYPE]
    assert len(ours) == 1, [meta["connection_type"] for meta in served]
    return ours[0]


def test_the_connection_type_names_our_hook(hook_meta: dict[str, Any]) -> None:
    assert hook_meta["hook_name"] == "OAuth2 Client Credentials"
    assert hook_meta["hook_class_name"] == "airflow_provider_oauthcc.hooks.oauth_cc.OAuthCCHook"


def test_every_extra_field_is_served_in_form_order(hook_meta: dict[str, Any]) -> None:
    assert list(hook_meta["extra_fields"] or {}) == list(CONN_FIELDS)


@pytest.mark.parametrize("key", list(CONN_FIELDS))
def test_each_field_has_its_label_description_and_schema(
    hook_meta: dict[str, Any], key: str
) -> None:
    declared = CONN_FIELDS[key]
    served = hook_meta["extra_fields"][key]
    schema = served["schema"]
    assert schema["title"] == declared["label"]
    assert served["description"] == declared["description"]
    assert served["value"] == declared["schema"].get("default")
    declared_type = next(t for t in declared["schema"]["type"] if t != "null")
    # Airflow 3.1's WTForms stand-ins know integers, not numbers.
    accepted = {declared_type, "integer"} if declared_type == "number" else {declared_type}
    assert set(schema["type"]) - {"null"} <= accepted and "null" in schema["type"]
    is_password = declared["schema"].get("format") == "password"
    assert (schema.get("format") == "password") is is_password
    declared_choices = set(declared["schema"].get("enum") or []) - {None}
    assert set(schema.get("enum") or []) - {None} == declared_choices
    if FORM_FROM_PROVIDER_INFO:
        assert schema == {**declared["schema"], "title": declared["label"]}


def test_secret_fields_are_password_fields(hook_meta: dict[str, Any]) -> None:
    passwords = {
        key
        for key, field in hook_meta["extra_fields"].items()
        if field["schema"].get("format") == "password"
    }
    assert passwords == {"private_key", "private_key_passphrase"}


def test_standard_fields_are_relabelled_and_the_schema_hidden(hook_meta: dict[str, Any]) -> None:
    standard = hook_meta["standard_fields"]
    assert standard is not None
    for name, label in UI_FIELD_BEHAVIOUR["relabeling"].items():
        assert standard[name]["title"] == label
        assert standard[name]["hidden"] is False
        assert standard[name]["placeholder"] == UI_FIELD_BEHAVIOUR["placeholders"][name]
    assert standard["url_schema"]["hidden"] is True
