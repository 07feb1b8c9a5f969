"""The Test button must not carry a stored secret to a server the tester picks.

Airflow 3.2+ tests a connection with the values of the edited form and, where the form shows
a secret masked ("***") or leaves it out, the stored connection's secret, as long as host and
port are unchanged. This provider sends the credential to the token endpoint, issuer and
proxies named in the extras, so a user who may edit a connection but not read it could point
``auth_url`` at their own server and receive the stored secret. The rule: a Test that reuses a
stored secret must leave every setting that decides where and how the credential travels as
stored; to test other settings, the tester types the secret into the form.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

MASKED = "***"
# The extras that decide where the credential goes and how it travels.
DESTINATION_KEYS = (
    "auth_url",
    "issuer",
    "proxies",
    "verify",
    "verify_ssl",
    "client_cert",
    "client_cert_key",
    "allow_insecure_http",
    "trust_env",
)
_FLAG_KEYS = frozenset({"verify", "verify_ssl", "allow_insecure_http", "trust_env"})
# Airflow's connection test route (3.0+); from 3.2 it merges the stored secrets in.
_TEST_ROUTE = ("airflow.api_fastapi.core_api.routes.public.connections", "test_connection")


@dataclass(frozen=True)
class TestForm:
    """What the tester's form sent for one connection test (None: the field was not sent)."""

    __test__ = False  # not a pytest test class

    connection_id: str
    password: str | None
    extra: Mapping[str, Any] | None
    team_name: str | None = None


class UncheckableTest(Exception):
    """Airflow's test route was found but does not look as this module expects."""


def refusal(
    form: TestForm,
    tested_password: str | None,
    tested_extra: Mapping[str, Any],
    stored_extra: Callable[[], Mapping[str, Any]],
) -> str | None:
    """Why this test must not run, or None. ``tested_*`` are the values the test would use
    (the form merged with the stored connection); ``stored_extra`` reads the stored extras."""
    ambient = workload_identity(tested_extra)
    if ambient:
        # The assertion is the API server's own (its workload identity), whoever edits the form.
        stored = stored_extra()
        changed = changed_destination(stored, tested_extra)
        if stored.get("client_assertion_file") != tested_extra.get("client_assertion_file"):
            changed.append("client_assertion_file")
        if not changed:
            return None
        return (
            f"Test refused: {_listing(changed)} differ from the stored connection "
            f"'{form.connection_id}', and the test would send the API server's own {ambient} "
            "there. Save the connection (if you may) and test it again."
        )
    reused = reused_secrets(form, tested_password, tested_extra)
    if not reused:
        return None
    changed = changed_destination(stored_extra(), tested_extra)
    if not changed:
        return None
    return (
        f"Test refused: {_listing(changed)} differ from the stored connection "
        f"'{form.connection_id}', and the test would send its stored {_listing(reused)} "
        "there (the form shows them masked). To test these settings, type the secret into "
        "the form, or save the connection and test it again."
    )


def workload_identity(tested_extra: Mapping[str, Any]) -> str | None:
    """What the test would read from the API server's host itself (federated_assertion: the
    platform's assertion file), or None."""
    method = tested_extra.get("auth_method")
    if method == "federated_assertion" or (
        not method and tested_extra.get("client_assertion_file")
    ):
        return "workload identity assertion (client_assertion_file / AZURE_FEDERATED_TOKEN_FILE)"
    return None


def reused_secrets(
    form: TestForm, tested_password: str | None, tested_extra: Mapping[str, Any]
) -> list[str]:
    """The secrets the test would take from the stored connection, not from the form."""
    reused = []
    if tested_password and tested_password != form.password:
        reused.append("password")
    for key, value in sorted((form.extra or {}).items()):
        if _holds_mask(value) and tested_extra.get(key) != value:
            reused.append(key)
    return reused


def changed_destination(stored: Mapping[str, Any], tested: Mapping[str, Any]) -> list[str]:
    return [
        key
        for key in DESTINATION_KEYS
        if _canonical(key, stored.get(key)) != _canonical(key, tested.get(key))
    ]


def form_under_test(conn_id: str) -> TestForm | None:
    """The form of the Airflow connection test now testing ``conn_id``, or None outside one.

    Airflow tests the form under a random connection ID and keeps the tested connection's own
    ID only in its route's locals, so they are read from the caller frames.
    """
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if (frame.f_globals.get("__name__"), frame.f_code.co_name) == _TEST_ROUTE:
            break
        frame = frame.f_back
    if frame is None:
        return None
    local = frame.f_locals
    body, transient_id = local.get("test_body"), local.get("transient_conn_id")
    if body is None or transient_id is None:
        raise UncheckableTest("its locals changed")
    if transient_id != conn_id:
        return None
    sent = getattr(body, "model_fields_set", None)
    if sent is None:
        raise UncheckableTest("its request body changed")
    return TestForm(
        connection_id=str(body.connection_id),
        password=body.password if "password" in sent else None,
        extra=_form_extra(body.extra) if "extra" in sent else None,
        team_name=local.get("team_name"),
    )


def stored_extra_reader(form: TestForm) -> Callable[[], Mapping[str, Any]]:
    """Reads the stored connection's extras (the API server's secrets backends); none if the
    connection is not found, so any destination setting counts as changed."""

    def read() -> Mapping[str, Any]:
        from airflow_provider_oauthcc.airflow_compat import stored_connection

        try:
            extra = stored_connection(form.connection_id, form.team_name).extra_dejson
        except Exception:
            return {}
        return extra if isinstance(extra, Mapping) else {}

    return read


def _form_extra(extra: Any) -> Mapping[str, Any]:
    if not extra:
        return {}
    try:
        parsed = json.loads(extra)
    except (TypeError, ValueError):
        return {}  # Airflow does not merge an extra that is not JSON
    return parsed if isinstance(parsed, dict) else {}


def _holds_mask(value: Any) -> bool:
    if isinstance(value, str):
        return value == MASKED
    if isinstance(value, Mapping):
        return any(_holds_mask(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_mask(item) for item in value)
    return False


def _canonical(key: str, value: Any) -> str:
    """One spelling per meaning: "true" and true, a JSON text and its object, are the same."""
    if isinstance(value, str):
        value = value.strip()
        if key in _FLAG_KEYS and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        elif value.startswith(("{", "[")):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
    if value == "":
        value = None
    return json.dumps(value, sort_keys=True, default=str)


def _listing(names: list[str]) -> str:
    return ", ".join(names)
