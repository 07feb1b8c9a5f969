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

# What Airflow 2.x's connection view (airflow.www.views) puts in place of a stored secret extra,
# and swaps back for the stored value when the form comes back with it unchanged.
SENSITIVE_FIELD_PLACEHOLDER = "RATHER_LONG_SENSITIVE_FIELD_PLACEHOLDER"


def connection_form_widgets() -> dict[str, Any]:
    """WTForms fields (string, password, integer; a choice list as a string with ``any_of``);
    on Airflow 2.x with FAB's BS3 widgets and ``lazy_gettext`` labels.

    A choice list or a number may be left empty (``Optional`` first: Airflow 2.x validates the
    form on save, and an empty Signing algorithm means "from the key type"). FAB shows a choice
    list as a text input, so its description there names the values to type, and a stored
    secret extra as Airflow's placeholder (see :func:`_fab_secret_widget`).
    """
    from wtforms import IntegerField, PasswordField, StringField
    from wtforms.validators import Optional, any_of

    from airflow_provider_oauthcc.airflow_compat import connection_form_style

    text_widget: dict[str, Any] = {}
    password_widget: dict[str, Any] = {}
    label: Any = str
    fab = connection_form_style() == "fab"
    if fab:
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext

        text_widget = {"widget": BS3TextFieldWidget()}
        password_widget = {"widget": _fab_secret_widget()}
        label = lazy_gettext

    widgets: dict[str, Any] = {}
    for key, field in CONN_FIELDS.items():
        schema = field["schema"]
        optional = [Optional()] if "null" in schema["type"] else []
        common = {
            "label": label(field["label"]),
            "description": field.get("description", ""),
            "default": schema.get("default"),
        }
        if schema.get("format") == "password":
            widgets[key] = PasswordField(**common, **password_widget)
        elif "enum" in schema:
            choices = [value for value in schema["enum"] if value is not None]
            validators: list[Any] = [*optional, any_of(choices)]
            if fab:
                common["description"] = f"{common['description']} One of: {', '.join(choices)}."
            widgets[key] = StringField(validators=validators, **common, **text_widget)
        elif {"number", "integer"} & set(schema["type"]):
            widgets[key] = IntegerField(validators=optional, **common, **text_widget)
        else:
            widgets[key] = StringField(**common, **text_widget)
    return widgets


def _fab_secret_widget() -> Any:
    """FAB's password input that shows a stored secret as Airflow's placeholder, never the secret.

    Airflow 2.x's edit view fills a secret extra's field with the stored value and expects it
    back as the placeholder when unchanged; but a plain password input renders empty, and an
    empty field deletes the key on save: resaving a connection would drop its private key.
    A secret just typed into a form that failed validation is not shown back (WTForms' rule).
    """
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget

    class StoredSecretWidget(BS3PasswordFieldWidget):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(hide_value=False)

        def __call__(self, field: Any, **kwargs: Any) -> Any:
            stored = field.data and (
                not field.raw_data or field.data == SENSITIVE_FIELD_PLACEHOLDER
            )
            kwargs["value"] = SENSITIVE_FIELD_PLACEHOLDER if stored else ""
            return super().__call__(field, **kwargs)

    return StoredSecretWidget()


def ui_field_behaviour() -> dict[str, Any]:
    """The standard fields' labels, placeholders and hidden ones, in the hook method's format.

    A new dict on every call: Airflow 3.1 rewrites the placeholders' keys in place.
    """
    return {
        "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
        "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
        "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
    }
