"""The connection form built from the hook class (Airflow 2.x's FAB UI, Airflow 3.1's React UI):
every field of connection_fields.py, with FAB's Bootstrap 3 widgets on Airflow 2.x."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_oauthcc.airflow_compat import connection_form_style
from airflow_provider_oauthcc.connection_fields import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook


def _wtforms() -> None:
    pytest.importorskip(
        "wtforms",
        reason="WTForms (the wtforms extra) is not installed: Airflow 3.2+ reads the form "
        "from provider info, not from the hook",
    )


def _bound() -> Any:
    _wtforms()
    from wtforms import Form

    fields = OAuthCCHook.get_connection_form_widgets()
    return type("ConnectionForm", (Form,), dict(fields))()


def test_every_connection_field_is_in_the_form_with_its_kind() -> None:
    form = _bound()
    assert {field.name for field in form} == set(CONN_FIELDS)
    for key, spec in CONN_FIELDS.items():
        schema = spec["schema"]
        if schema.get("format") == "password":
            assert form[key].type == "PasswordField", key
        elif {"number", "integer"} & set(schema["type"]) and "enum" not in schema:
            assert form[key].type == "IntegerField", key
        else:
            assert form[key].type == "StringField", key


def test_the_field_behaviour_is_a_fresh_copy() -> None:
    first = OAuthCCHook.get_ui_field_behaviour()
    assert first["hidden_fields"] == list(UI_FIELD_BEHAVIOUR["hidden-fields"])
    first["placeholders"].clear()
    assert OAuthCCHook.get_ui_field_behaviour()["placeholders"]


@pytest.mark.skipif(
    connection_form_style() != "fab", reason="Airflow 2.x only: its FAB UI's BS3 widgets"
)
def test_airflow_2_fields_use_flask_appbuilder_widgets_and_translatable_labels() -> None:
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel.speaklater import LazyString

    fields = OAuthCCHook.get_connection_form_widgets()
    for key, spec in CONN_FIELDS.items():
        widget = fields[key].kwargs["widget"]
        expected = (
            BS3PasswordFieldWidget
            if spec["schema"].get("format") == "password"
            else BS3TextFieldWidget
        )
        assert isinstance(widget, expected), key
        assert isinstance(fields[key].kwargs["label"], LazyString), key
        assert str(fields[key].kwargs["label"]) == spec["label"]


@pytest.mark.skipif(
    connection_form_style() != "react", reason="Airflow 3.x only: plain WTForms fields"
)
def test_airflow_3_fields_are_plain_wtforms_fields() -> None:
    _wtforms()
    fields = OAuthCCHook.get_connection_form_widgets()
    assert all("widget" not in field.kwargs for field in fields.values())
    assert all(isinstance(field.kwargs["label"], str) for field in fields.values())
