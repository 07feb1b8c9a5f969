"""The connection form for Airflow before 3.2, which asks the hook class for it.

Airflow 3.2+ reads the form from provider info (``conn-fields``, ``ui-field-behaviour``).
Airflow 3.1 calls ``get_connection_form_widgets()`` and ``get_ui_field_behaviour()`` on the
hook and wants WTForms fields (``/ui/connections/hook_meta`` swaps in stand-ins while it asks).
Airflow 2.x (Flask AppBuilder's UI) calls the same methods and renders the fields with FAB's
Bootstrap 3 widgets and translatable labels, as official providers' hooks do.
All are built here from the data in :mod:`connection_fields`, so the forms cannot drift.
WTForms (and FAB) are imported on call, never when the hook is imported.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_oauthcc.connection_fields import CONN_FIELDS, UI_FIELD_BEHAVIOUR


def connection_form_widgets() -> dict[str, Any]:
    """WTForms fields (string, password, integer; a choice list as a string with ``any_of``);
    on Airflow 2.x with FAB's BS3 widgets and ``lazy_gettext`` labels."""
    from wtforms import IntegerField, PasswordField, StringField
    from wtforms.validators import any_of

    from airflow_provider_oauthcc.airflow_compat import connection_form_style

    text_widget: dict[str, Any] = {}
    password_widget: dict[str, Any] = {}
    label: Any = str
    if connection_form_style() == "fab":
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
        from flask_babel import lazy_gettext

        text_widget = {"widget": BS3TextFieldWidget()}
        password_widget = {"widget": BS3PasswordFieldWidget()}
        label = lazy_gettext

    widgets: dict[str, Any] = {}
    for key, field in CONN_FIELDS.items():
        schema = field["schema"]
        common = {
            "label": label(field["label"]),
            "description": field.get("description", ""),
            "default": schema.get("default"),
        }
        if schema.get("format") == "password":
            widgets[key] = PasswordField(**common, **password_widget)
        elif "enum" in schema:
            choices = [value for value in schema["enum"] if value is not None]
            widgets[key] = StringField(validators=[any_of(choices)], **common, **text_widget)
        elif {"number", "integer"} & set(schema["type"]):
            widgets[key] = IntegerField(**common, **text_widget)
        else:
            widgets[key] = StringField(**common, **text_widget)
    return widgets


def ui_field_behaviour() -> dict[str, Any]:
    """The standard fields' labels, placeholders and hidden ones, in the hook method's format.

    A new dict on every call: Airflow 3.1 rewrites the placeholders' keys in place.
    """
    return {
        "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
        "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
        "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
    }
