"""The OAuth2 Client Credentials connection form in the real Airflow UI, in a real browser.

A real ``airflow api-server`` (tests/support/airflow_api_server.py), headless Debian chromium
driven by Playwright, and the local authorization server (devserver) in this process.
Set OAUTHCC_UPDATE_SCREENSHOT=1 to rewrite docs/connection-form.png from this run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version
from playwright.sync_api import expect

from airflow_provider_oauthcc.connection_fields import CONN_FIELDS
from devserver import DevServer
from devserver.keys import generate_private_key_pem
from tests.support import stage
from tests.support.airflow_api_server import ADMIN_USER, AirflowApiServer, shared_api_server
from tests.support.chromium_browser import chromium_page
from tests.support.connections_ui import ConnectionsUi
from tests.support.form_screenshot import png_size, save_form_screenshot

pytestmark = pytest.mark.e2e

CONN_TYPE_NAME = "OAuth2 Client Credentials"
CLIENT_ID = "orders-etl"
SECRET = "form-Secret-7f3a9c1e"
PASSPHRASE = "form-Passphrase-52b8"
SCOPE = "read:orders"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "connection-form.png"
STANDARD_FIELDS = {  # label -> connection attribute
    "API base URL": "host",
    "API port": "port",
    "Client ID": "login",
    "Client secret": "password",
}


def _airflow_version() -> Version:
    import airflow

    return Version(airflow.__version__)


if _airflow_version() < Version("3.0.0"):
    pytest.skip(
        "Airflow 2.x has no API server and no React UI (`airflow api-server`, "
        "`/ui/connections/hook_meta`): its connection form is Flask AppBuilder's, tested in "
        "tests/e2e/test_connection_form_fab.py",
        allow_module_level=True,
    )


def _starlette_version() -> Version:
    import starlette

    return Version(starlette.__version__)


# Airflow 3.1 reads the form from the hook's WTForms methods: no display names for choices, and
# its UI shows password-format extra fields as plain text inputs (masked again when reopened).
FORM_FROM_HOOK_METHODS = _airflow_version() < Version("3.2.0")
AUTH_METHOD_SHOWN = {
    method: (method if FORM_FROM_HOOK_METHODS else display)
    for method, display in CONN_FIELDS["auth_method"]["schema"]["values_display"].items()
}
needs_a_working_ui = pytest.mark.skipif(
    FORM_FROM_HOOK_METHODS and _starlette_version() >= Version("1.0"),
    reason=f"Airflow {_airflow_version()}'s web UI pages do not render with Starlette "
    f"{_starlette_version()} (they call TemplateResponse(name, context), which Starlette 1.0 "
    "removed): every page answers 500. Pin starlette<1 next to this Airflow to run this test",
)
# Airflow 3.1 disables Save until a field changes; 3.0 and 3.2+ save an unchanged form too.
SAVES_ONLY_A_CHANGED_FORM = Version("3.1.0") <= _airflow_version() < Version("3.2.0")
# Airflow 3.1's Test button posts the list row as the API shows it: secrets masked as "***",
# and that endpoint does not restore them from the stored connection, so every connection
# that has a secret fails its test there (later versions merge the stored secrets back).
TEST_BUTTON_SENDS_MASKED_SECRETS = SAVES_ONLY_A_CHANGED_FORM
# Airflow 3.0's UI has no Test button (its bundle only has the API client's testConnection);
# `airflow connections test` (tests/e2e/test_airflow_cli.py) tests a connection there.
HAS_A_TEST_BUTTON = _airflow_version() >= Version("3.1.0")


@dataclass(frozen=True)
class SigningKey:
    pem: str  # encrypted PKCS#8, as a careful user keeps it
    public_jwk: dict[str, Any]


@pytest.fixture(scope="module")
def api_server() -> AirflowApiServer:
    return shared_api_server()


@pytest.fixture
def ui_server(api_server: AirflowApiServer) -> AirflowApiServer:
    """The API server, when its UI shows this provider's form fields."""
    if FORM_FROM_HOOK_METHODS:
        stage.importorskip(
            "wtforms",
            reason=f"Airflow {_airflow_version()} builds provider connection forms only when "
            "WTForms is installed (apache/airflow#55841; it comes with the FAB provider)",
        )
    return api_server


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    from cryptography.hazmat.primitives import serialization

    pem, jwk = generate_private_key_pem("RS256")
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    )
    return SigningKey(encrypted.decode(), jwk)


@pytest.fixture(scope="module")
def idp(signing_key: SigningKey) -> Iterator[DevServer]:
    with DevServer() as server:
        server.add_client(
            CLIENT_ID,
            secret=SECRET,
            public_jwk=signing_key.public_jwk,
            auth_methods=["private_key_jwt", "client_secret_basic"],
            scope="read:orders write:orders",
        )
        yield server


def _api_origin(server: DevServer) -> tuple[str, int]:
    scheme_host, port = server.api_url.rsplit(":", 1)
    return scheme_host, int(port)


def _entered_extras(idp: DevServer, signing_key: SigningKey) -> dict[str, Any]:
    return {
        "auth_url": idp.token_url,
        "issuer": idp.issuer,
        "auth_method": "private_key_jwt",
        "scope": SCOPE,
        "audience": "https://orders.example/",
        "private_key": signing_key.pem,
        "private_key_passphrase": PASSPHRASE,
        "key_id": "orders-etl-2026",
    }


@needs_a_working_ui
def test_add_reopen_and_resave_keeps_every_value(
    ui_server: AirflowApiServer, idp: DevServer, signing_key: SigningKey
) -> None:
    api_server = ui_server
    host, port = _api_origin(idp)
    extras = _entered_extras(idp, signing_key)
    with chromium_page() as page:
        ui = ConnectionsUi(page, api_server.url)
        ui.log_in(ADMIN_USER, api_server.admin_password)
        ui.open_connections()
        ui.open_add_form("crm_api", CONN_TYPE_NAME)

        for label, attribute in STANDARD_FIELDS.items():
            assert ui.standard_input(label).get_attribute("name") == attribute
        assert ui.dialog.get_by_label("Schema", exact=True).count() == 0
        ui.standard_input("API base URL").fill(host)
        ui.standard_input("API port").fill(str(port))
        ui.standard_input("Client ID").fill(CLIENT_ID)
        ui.standard_input("Client secret").fill(SECRET)

        ui.show_section("Extra Fields")
        for key, field in CONN_FIELDS.items():
            assert ui.extra_label(key) == field["label"], key
            assert " ".join(field["description"].split()) in _words(ui.extra_row(key).inner_text())
        assert ui.chosen("auth_method") == AUTH_METHOD_SHOWN["client_secret_basic"]
        ui.choose("Client authentication", AUTH_METHOD_SHOWN["private_key_jwt"])
        for key in ("auth_url", "issuer", "scope", "audience", "key_id"):
            ui.extra_input(key).fill(extras[key])
        for key in ("private_key", "private_key_passphrase"):
            if not FORM_FROM_HOOK_METHODS:
                assert ui.extra_input(key).get_attribute("type") == "password"
            ui.extra_input(key).fill(extras[key])
        ui.save()
        ui.row("crm_api").wait_for()

        ui.open_edit_form("crm_api")
        assert ui.standard_input("API base URL").input_value() == host
        assert ui.standard_input("API port").input_value() == str(port)
        assert ui.standard_input("Client ID").input_value() == CLIENT_ID
        assert ui.standard_input("Client secret").input_value() == "***"
        ui.show_section("Extra Fields")
        for key in ("auth_url", "issuer", "scope", "audience", "key_id"):
            assert ui.extra_input(key).input_value() == extras[key], key
        for key in ("private_key", "private_key_passphrase"):
            assert ui.extra_input(key).input_value() == "***", key
        assert ui.chosen("auth_method") == AUTH_METHOD_SHOWN["private_key_jwt"]
        html = page.content()
        for secret in (SECRET, PASSPHRASE, _pem_body_line(signing_key.pem)):
            assert secret not in html, "a secret reached the reopened form"
        if SAVES_ONLY_A_CHANGED_FORM:
            expect(ui.save_button).to_be_disabled()
            ui.close()
        else:
            ui.save()

    stored = api_server.stored_connection("crm_api")
    assert (stored["host"], str(stored["port"]), stored["login"]) == (host, str(port), CLIENT_ID)
    assert stored["password"] == SECRET
    stored_extras = stored["extra_dejson"]
    for key, value in extras.items():
        if key == "private_key":  # a one-line input turns the PEM's line breaks into spaces
            assert _words(stored_extras[key]) == _words(value)
        else:
            assert stored_extras[key] == value, key
    shown = api_server.api("GET", "/api/v2/connections/crm_api").json()
    shown_extras = json.loads(shown["extra"])
    assert shown["password"] == "***"
    assert shown_extras["private_key"] == shown_extras["private_key_passphrase"] == "***"
    for key in ("auth_url", "issuer", "scope", "audience", "key_id", "auth_method"):
        assert shown_extras[key] == extras[key], key


@pytest.mark.skipif(
    not HAS_A_TEST_BUTTON,
    reason=f"Airflow {_airflow_version()}'s connections page has no Test button",
)
@pytest.mark.skipif(
    TEST_BUTTON_SENDS_MASKED_SECRETS,
    reason=f"Airflow {_airflow_version()}'s Test button sends the masked '***' secrets of the "
    "list row and never restores the stored ones, so it cannot test any connection with a "
    "secret (the form test above still runs here)",
)
def test_test_button_shows_the_token_or_the_reason(
    api_server: AirflowApiServer, idp: DevServer, signing_key: SigningKey
) -> None:
    host, port = _api_origin(idp)
    _create_connection(
        api_server, "orders_ok", host, port, SECRET, _entered_extras(idp, signing_key)
    )
    wrong = {"auth_url": idp.token_url, "scope": SCOPE}
    _create_connection(api_server, "orders_wrong_secret", host, port, "not-the-secret", wrong)
    with chromium_page() as page:
        ui = ConnectionsUi(page, api_server.url)
        ui.log_in(ADMIN_USER, api_server.admin_password)
        ui.open_connections()

        title, message = ui.press_test("orders_ok")
        assert title == "Test Connection Successful", message
        assert f"Token obtained from {idp.token_url}: Bearer, expires in " in message
        assert f"scope '{SCOPE}'" in message

        title, message = ui.press_test("orders_wrong_secret")
        assert title == "Test Connection Failed"
        assert "invalid_client" in message and "not-the-secret" not in message


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("wrong secret", "invalid_client"),
        ("unreachable", "cannot reach the token endpoint"),
        ("TLS", "TLS handshake with the token endpoint"),
    ],
)
def test_test_endpoint_names_the_failure(
    api_server: AirflowApiServer, idp: DevServer, case: str, reason: str
) -> None:
    """What the Test button shows when the test fails, through the endpoint it calls."""
    host, port = _api_origin(idp)
    token_url = {
        "wrong secret": idp.token_url,
        "unreachable": "http://127.0.0.1:9/oauth/token",
        "TLS": idp.token_url.replace("http://", "https://"),
    }[case]
    secret = "not-the-secret" if case == "wrong secret" else SECRET
    extras = {"auth_url": token_url, "timeout": 10}
    body = _connection_body(f"failing_{case.replace(' ', '_')}", host, port, secret, extras)
    response = api_server.api("POST", "/api/v2/connections/test", json=body)
    assert response.status_code == 200, response.text[:500]
    result = response.json()
    assert result["status"] is False
    assert reason in result["message"]
    assert secret not in result["message"]


@needs_a_working_ui
def test_screenshot_of_a_filled_form(ui_server: AirflowApiServer, tmp_path: Path) -> None:
    """The README picture: the form as a user fills it for an Auth0-protected API."""
    api_server = ui_server
    target = SCREENSHOT if os.environ.get("OAUTHCC_UPDATE_SCREENSHOT") else tmp_path / "form.png"
    with chromium_page(height=3200) as page:
        ui = ConnectionsUi(page, api_server.url)
        ui.log_in(ADMIN_USER, api_server.admin_password)
        ui.open_connections()
        ui.open_add_form("crm_api_auth0", CONN_TYPE_NAME)
        ui.standard_input("API base URL").fill("https://api.example.com")
        ui.standard_input("Client ID").fill("Xq7fT2bL9aWcR4mZ")
        ui.standard_input("Client secret").fill("example-secret-value")
        ui.dialog.get_by_label("Description").fill("Orders API (Auth0 client credentials)")
        ui.show_section("Extra Fields")
        filled = {
            "auth_url": "https://example.eu.auth0.com/oauth/token",
            "audience": "https://api.example.com/",
            "scope": "read:orders",
        }
        ui.extra_input("auth_url").fill(filled["auth_url"])
        ui.choose("Client authentication", AUTH_METHOD_SHOWN["client_secret_post"])
        ui.extra_input("audience").fill(filled["audience"])
        ui.extra_input("scope").fill(filled["scope"])
        save_form_screenshot(ui, target)
        # What the picture shows, read from the page it was taken of (Extra Fields open).
        shown = _words(ui.visible_text())
        for key, field in CONN_FIELDS.items():
            expect(ui.extra_row(key)).to_be_visible()
            assert ui.extra_label(key) == field["label"], key
        assert ui.chosen("auth_method") == AUTH_METHOD_SHOWN["client_secret_post"]
        for key, value in filled.items():
            assert ui.extra_input(key).input_value() == value, key
        assert "example-secret-value" not in shown
        ui.show_section("Standard Fields")
        for label in STANDARD_FIELDS:
            expect(ui.standard_input(label)).to_be_visible()
        assert ui.standard_input("Client ID").input_value() == "Xq7fT2bL9aWcR4mZ"
        # The secret is in the form, and only in a masked input.
        assert ui.inputs_holding("example-secret-value") == ["password"]
        if not FORM_FROM_HOOK_METHODS:  # 3.1 shows password-format extras as text inputs
            for key in ("private_key", "private_key_passphrase"):
                assert ui.extra_input(key).get_attribute("type") == "password", key
        dialog_width = ui.dialog.bounding_box()
    # The file is the picture of that form: a PNG as wide as the dialog.
    width, height = png_size(target)
    assert dialog_width is not None and abs(width - dialog_width["width"]) <= 2
    assert height > 400


def _connection_body(
    conn_id: str, host: str, port: int, secret: str, extras: dict[str, Any]
) -> dict[str, Any]:
    return {
        "connection_id": conn_id,
        "conn_type": "oauth2_client_credentials",
        "host": host,
        "port": port,
        "login": CLIENT_ID,
        "password": secret,
        "extra": json.dumps(extras),
    }


def _create_connection(
    server: AirflowApiServer,
    conn_id: str,
    host: str,
    port: int,
    secret: str,
    extras: dict[str, Any],
) -> None:
    body = _connection_body(conn_id, host, port, secret, extras)
    response = server.api("POST", "/api/v2/connections", json=body)
    assert response.status_code == 201, response.text[:500]


def _words(text: str) -> str:
    return " ".join(text.split())


def _pem_body_line(pem: str) -> str:
    return pem.splitlines()[1]
