"""The connection form built from the hook class (Airflow 2.x's FAB UI, Airflow 3.1's React UI):
every field of connection_fields.py, with FAB's Bootstrap 3 widgets on Airflow 2.x."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_oauthcc.airflow_compat import connection_form_style
from airflow_provider_oauthcc.connection_fields import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_oauthcc.hooks.oauth_cc import OAuthCCHook
from tests.support import stage


def _wtforms() -> None:
    stage.importorskip(
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


class _PostData(dict[str, list[str]]):
    """Form data as a browser posts it (WTForms reads it through ``getlist``)."""

    def getlist(self, key: str) -> list[str]:
        return self.get(key, [])


def _posted(values: dict[str, str]) -> Any:
    _wtforms()
    from wtforms import Form

    form_class = type("ConnectionForm", (Form,), dict(OAuthCCHook.get_connection_form_widgets()))
    return form_class(_PostData({key: [value] for key, value in values.items()}))


def test_a_form_with_every_extra_field_left_empty_validates() -> None:
    """Airflow 2.x validates the form on Save: an empty choice list (Signing algorithm:
    "from the key type") or number must not block saving the connection."""
    form = _posted(dict.fromkeys(CONN_FIELDS, ""))
    assert form.validate(), form.errors
    assert form["signing_algorithm"].data == ""
    assert form["timeout"].data is None


def test_a_value_outside_a_choice_list_is_refused() -> None:
    form = _posted({"auth_method": "client_secret", "signing_algorithm": "RS1", "timeout": "x"})
    assert not form.validate()
    assert set(form.errors) == {"auth_method", "signing_algorithm", "timeout"}
    assert "client_secret_basic" in form.errors["auth_method"][0]


@pytest.mark.skipif(
    connection_form_style() != "fab", reason="Airflow 2.x only: a choice list is a text input"
)
def test_airflow_2_choice_lists_name_their_values_in_the_description() -> None:
    fields = OAuthCCHook.get_connection_form_widgets()
    for key, spec in CONN_FIELDS.items():
        values = [value for value in spec["schema"].get("enum", []) if value is not None]
        description = fields[key].kwargs["description"]
        assert description.startswith(spec["description"]), key
        if values:
            assert description.endswith(f" One of: {', '.join(values)}."), key
        else:
            assert description == spec["description"], key


@pytest.mark.skipif(
    connection_form_style() != "fab", reason="Airflow 2.x only: its edit view's placeholder"
)
def test_airflow_2_secret_extras_show_the_placeholder_never_the_secret() -> None:
    """Airflow 2.x's edit view keeps a secret extra only if it comes back as its placeholder:
    an empty input deletes it on save. The stored value itself never reaches the page."""
    from airflow.www.views import SENSITIVE_FIELD_PLACEHOLDER as AIRFLOW_PLACEHOLDER
    from flask import Flask
    from flask_babel import Babel
    from wtforms import Form

    from airflow_provider_oauthcc.legacy_connection_form import SENSITIVE_FIELD_PLACEHOLDER

    assert SENSITIVE_FIELD_PLACEHOLDER == AIRFLOW_PLACEHOLDER
    secret = "stored-Passphrase-91c2"
    form_class = type("ConnectionForm", (Form,), dict(OAuthCCHook.get_connection_form_widgets()))
    app = Flask(__name__)
    Babel(app)  # the labels are translatable
    with app.test_request_context():
        for key in ("private_key", "private_key_passphrase"):
            assert form_class.__dict__[key].field_class.widget.input_type == "password"
            reopened = form_class()  # the edit page: the view sets the stored value after
            reopened[key].data = secret
            shown = str(reopened[key]())
            assert f'value="{SENSITIVE_FIELD_PLACEHOLDER}"' in shown, key
            assert secret not in shown and 'type="password"' in shown, key
            assert 'value=""' in str(form_class()[key]()), key  # the add page
            retyped = form_class(_PostData({key: [secret]}))  # a new secret, form refused
            assert secret not in str(retyped[key]()) and 'value=""' in str(retyped[key]()), key
            kept = form_class(_PostData({key: [SENSITIVE_FIELD_PLACEHOLDER]}))
            assert f'value="{SENSITIVE_FIELD_PLACEHOLDER}"' in str(kept[key]()), key
