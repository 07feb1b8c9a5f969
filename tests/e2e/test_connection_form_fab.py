"""The OAuth2 Client Credentials connection form of Airflow 2.x (Flask AppBuilder), in a browser.

A real ``airflow webserver`` (tests/support/airflow_webserver.py: its own AIRFLOW_HOME, SQLite,
a Fernet key, ``[core] test_connection = Enabled``, an admin user created with ``airflow users
create`` who logs in through the FAB login form), headless Debian chromium driven by
Playwright, and the local authorization server (devserver) in this process. The stored
connection is read from that home's database and decrypted with its Fernet key, as the
``Connection`` model does. Set OAUTHCC_UPDATE_SCREENSHOT=1 to rewrite
docs/connection-form-airflow2.png from this run. The Airflow 3 form: test_connection_form.py.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.fernet import Fernet
from packaging.version import Version
from playwright.sync_api import expect

from airflow_provider_oauthcc.connection_fields import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from devserver import DevServer
from devserver.keys import generate_private_key_pem
from tests.support.airflow_webserver import ADMIN_USER, AirflowWebserver
from tests.support.chromium_browser import chromium_page
from tests.support.form_screenshot import png_size

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.e2e


def _airflow_version() -> Version:
    import airflow

    return Version(airflow.__version__)


if _airflow_version() >= Version("3.0.0"):
    pytest.skip(
        f"Airflow {_airflow_version()} has no Flask AppBuilder connection form (no `airflow "
        "webserver`): its React form is tested by tests/e2e/test_connection_form.py",
        allow_module_level=True,
    )

CONN_TYPE = "oauth2_client_credentials"
CONN_TYPE_NAME = "OAuth2 Client Credentials"
CLIENT_ID = "orders-etl"
SECRET = "form-Secret-7f3a9c1e"
PASSPHRASE = "form-Passphrase-52b8"
SCOPE = "read:orders"
PLACEHOLDER = "RATHER_LONG_SENSITIVE_FIELD_PLACEHOLDER"  # airflow.www.views' stand-in
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "connection-form-airflow2.png"
STANDARD_FIELDS = {  # connection attribute -> label
    "host": "API base URL",
    "port": "API port",
    "login": "Client ID",
    "password": "Client secret",
}
SECRET_EXTRAS = ("private_key", "private_key_passphrase")


@pytest.fixture(scope="module")
def webserver() -> Iterator[AirflowWebserver]:
    server = AirflowWebserver()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def idp() -> Iterator[DevServer]:
    with DevServer() as server:
        server.add_client(
            CLIENT_ID,
            secret=SECRET,
            auth_methods=["client_secret_post", "client_secret_basic"],
            scope="read:orders write:orders",
        )
        yield server


@pytest.fixture(scope="module")
def page(webserver: AirflowWebserver) -> Iterator[Page]:
    """One browser for the module, logged in as the admin through the login form."""
    with chromium_page(height=1200) as page:
        page.goto(webserver.url + "/home")
        page.wait_for_url(lambda url: "/login" in url)
        page.get_by_label("Username").fill(ADMIN_USER)
        page.get_by_label("Password").fill(webserver.admin_password)
        page.get_by_role("button", name="Sign In").click()
        page.wait_for_url(lambda url: "/login" not in url)
        yield page


@pytest.fixture(scope="module")
def private_key_pem() -> str:
    return generate_private_key_pem("RS256")[0]


def test_the_form_shows_our_fields_and_masks_the_secret_ones(
    webserver: AirflowWebserver, page: Page
) -> None:
    _open_add_form(page, webserver)
    for name, label in STANDARD_FIELDS.items():
        field = page.get_by_label(label, exact=True)
        assert field.get_attribute("name") == name
        expect(field).to_be_visible()
        assert field.get_attribute("placeholder") == UI_FIELD_BEHAVIOUR["placeholders"][name]
    assert page.get_by_label("Client secret", exact=True).get_attribute("type") == "password"
    for hidden in UI_FIELD_BEHAVIOUR["hidden-fields"]:
        expect(page.locator(f"#{hidden}")).to_be_hidden()
    for key, field in CONN_FIELDS.items():
        label = page.locator(f'label[for="{_extra_id(key)}"]')
        assert _words(label.inner_text()) == field["label"], key
        row = page.locator("tr").filter(has=page.locator(f"#{_extra_id(key)}"))
        assert _words(field["description"]) in _words(row.inner_text()), key
        kind = "password" if field["schema"].get("format") == "password" else "text"
        assert _extra(page, key).get_attribute("type") == kind, key
        placeholder = UI_FIELD_BEHAVIOUR["placeholders"].get(key, "")
        assert _extra(page, key).get_attribute("placeholder") == placeholder, key
    assert all(_extra(page, key).get_attribute("type") == "password" for key in SECRET_EXTRAS)
    assert _extra(page, "auth_method").input_value() == "client_secret_basic"


def test_save_reopen_and_resave_keeps_every_value(
    webserver: AirflowWebserver, page: Page, idp: DevServer, private_key_pem: str
) -> None:
    host, port = _api_origin(idp)
    extras = {
        "auth_url": idp.token_url,
        "scope": SCOPE,
        "auth_method": "client_secret_post",
        "audience": "https://orders.example/",
        "private_key": private_key_pem,
        "private_key_passphrase": PASSPHRASE,
    }
    _open_add_form(page, webserver)
    page.get_by_label("Connection Id").fill("crm_api")
    _fill_standard(page, host, port, SECRET)
    for key, value in extras.items():
        _extra(page, key).fill(value)
    _save(page, "Added Row")

    stored = _stored(webserver, "crm_api")
    assert (stored["host"], stored["port"], stored["login"]) == (host, port, CLIENT_ID)
    assert stored["password"] == SECRET, "the client secret was not stored as typed"
    for key, value in extras.items():
        if key == "private_key":  # a one-line input turns the PEM's line breaks into spaces
            assert _words(stored["extra"][key]) == _words(value)
        else:
            assert stored["extra"][key] == value, key

    _open_edit_form(page, webserver, "crm_api")
    assert page.get_by_label("API base URL", exact=True).input_value() == host
    assert page.get_by_label("API port", exact=True).input_value() == str(port)
    assert page.get_by_label("Client ID", exact=True).input_value() == CLIENT_ID
    assert page.get_by_label("Client secret", exact=True).input_value() == ""
    for key in ("auth_url", "scope", "auth_method", "audience"):
        assert _extra(page, key).input_value() == extras[key], key
    for key in SECRET_EXTRAS:  # shown as Airflow's stand-in, which Save swaps back
        assert _extra(page, key).input_value() == PLACEHOLDER, key
    shown_extra = json.loads(page.locator("#extra").input_value())  # the Extra JSON text area
    assert shown_extra["private_key"] == shown_extra["private_key_passphrase"] == PLACEHOLDER
    html = page.content()
    for secret in (SECRET, PASSPHRASE, private_key_pem.splitlines()[1]):
        assert secret not in html, "a secret reached the edit page"

    _save(page, "Changed Row")  # unchanged: the blank secret and the stand-ins keep what is stored
    assert _stored(webserver, "crm_api") == stored, "resaving the unchanged form changed it"


def test_the_test_button_shows_the_token_or_the_reason(
    webserver: AirflowWebserver, page: Page, idp: DevServer
) -> None:
    host, port = _api_origin(idp)
    _open_add_form(page, webserver)
    page.get_by_label("Connection Id").fill("orders_test")
    _fill_standard(page, host, port, SECRET)
    _extra(page, "auth_url").fill(idp.token_url)
    _extra(page, "scope").fill(SCOPE)

    kind, message = _press_test(page)
    assert "alert-success" in kind and "alert-error" not in kind, message
    assert f"Token obtained from {idp.token_url}: Bearer, expires in " in message
    assert f"scope '{SCOPE}'" in message

    page.get_by_label("Client secret", exact=True).fill("not-the-secret")
    kind, message = _press_test(page)
    # Airflow 2.x shows every answer of the test endpoint in a green "success" box, the
    # failed ones too; only the words tell.
    assert "alert-success" in kind and "alert-error" not in kind
    assert "invalid_client" in message and "not-the-secret" not in message
    assert not message.startswith("Token obtained")


def test_the_test_button_of_a_reopened_form_needs_the_secret_again(
    webserver: AirflowWebserver, page: Page, idp: DevServer
) -> None:
    """The Test button tests what the form holds, and an edit page holds no stored secret."""
    host, port = _api_origin(idp)
    _open_add_form(page, webserver)
    page.get_by_label("Connection Id").fill("orders_reopened")
    _fill_standard(page, host, port, SECRET)
    _extra(page, "auth_url").fill(idp.token_url)
    _save(page, "Added Row")
    _open_edit_form(page, webserver, "orders_reopened")

    _, message = _press_test(page)
    assert "needs the client secret in Password" in message, message
    page.get_by_label("Client secret", exact=True).fill(SECRET)
    _, message = _press_test(page)
    assert message.startswith(f"Token obtained from {idp.token_url}"), message


def test_screenshot_of_a_filled_form(
    webserver: AirflowWebserver, page: Page, tmp_path: Path
) -> None:
    """The README picture for Airflow 2: the form as a user fills it for an Auth0 API."""
    target = SCREENSHOT if os.environ.get("OAUTHCC_UPDATE_SCREENSHOT") else tmp_path / "form.png"
    _open_add_form(page, webserver)
    page.get_by_label("Connection Id").fill("crm_api_auth0")
    page.get_by_label("Description").fill("Orders API (Auth0 client credentials)")
    page.get_by_label("API base URL", exact=True).fill("https://api.example.com")
    page.get_by_label("Client ID", exact=True).fill("Xq7fT2bL9aWcR4mZ")
    page.get_by_label("Client secret", exact=True).fill("example-secret-value")
    filled = {
        "auth_url": "https://example.eu.auth0.com/oauth/token",
        "auth_method": "client_secret_post",
        "audience": "https://api.example.com/",
        "scope": "read:orders",
    }
    for key, value in filled.items():
        _extra(page, key).fill(value)
    form = page.locator("form#model_form")
    page.set_viewport_size({"width": 1280, "height": 6000})  # the whole form, never scrolled
    page.evaluate("document.activeElement.blur()")
    target.parent.mkdir(parents=True, exist_ok=True)
    form.screenshot(path=str(target), animations="disabled")
    # Nothing covers it: the page did not scroll under the fixed navigation bar.
    assert page.evaluate("window.scrollY") == 0
    navigation, box = page.get_by_role("banner").bounding_box(), form.bounding_box()
    assert navigation is not None and box is not None
    assert box["y"] >= navigation["y"] + navigation["height"]
    # What the picture shows, read from the page it was taken of.
    shown = _words(form.inner_text())
    for key, field in CONN_FIELDS.items():
        expect(_extra(page, key)).to_be_visible()
        assert field["label"] in shown, key
    for label in STANDARD_FIELDS.values():
        assert label in shown
    for key, value in filled.items():
        assert _extra(page, key).input_value() == value, key
    assert "example-secret-value" not in shown
    assert page.get_by_label("Client secret", exact=True).get_attribute("type") == "password"
    width, height = png_size(target)
    assert abs(width - box["width"]) <= 2 and abs(height - box["height"]) <= 2
    assert height > 1500


def _open_add_form(page: Page, webserver: AirflowWebserver) -> None:
    """Admin → Connections → + , then the connection type from its (Select2) list."""
    page.goto(webserver.url + "/connection/list/")
    page.locator('a[href$="/connection/add"]').click()  # the "+" (its name is a tooltip)
    page.locator("#conn_type + .select2-container .select2-selection").click()
    page.locator(".select2-search__field").fill(CONN_TYPE_NAME[:6])
    page.get_by_role("option", name=CONN_TYPE_NAME, exact=True).click()
    assert page.locator("#conn_type").input_value() == CONN_TYPE
    expect(page.get_by_label("API base URL", exact=True)).to_be_visible()


def _open_edit_form(page: Page, webserver: AirflowWebserver, conn_id: str) -> None:
    page.goto(webserver.url + "/connection/list/")
    row = page.get_by_role("row").filter(has=page.get_by_role("cell", name=conn_id, exact=True))
    row.locator('a[href*="/connection/edit/"]').click()
    expect(page.get_by_label("Connection Id")).to_have_value(conn_id)


def _fill_standard(page: Page, host: str, port: int, secret: str) -> None:
    page.get_by_label("API base URL", exact=True).fill(host)
    page.get_by_label("API port", exact=True).fill(str(port))
    page.get_by_label("Client ID", exact=True).fill(CLIENT_ID)
    page.get_by_label("Client secret", exact=True).fill(secret)


def _save(page: Page, flash: str) -> None:
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(lambda url: "/connection/list" in url)
    expect(page.locator(".alert").filter(has_text=flash)).to_be_visible()


def _press_test(page: Page) -> tuple[set[str], str]:
    """Press Test; the classes (alert-success, alert-error ...) and the text of the box it fills
    (the page's warning box, which keeps its alert-warning class)."""
    alert = page.locator(".container .row .alert").first
    before = alert.inner_text() if alert.count() else ""
    page.get_by_role("button", name="Test").click()
    expect(alert).to_be_visible()
    expect(alert).not_to_have_text(before)
    return set((alert.get_attribute("class") or "").split()), _words(alert.inner_text())


def _extra(page: Page, key: str) -> Locator:
    return page.locator(f"#{_extra_id(key)}")


def _extra_id(key: str) -> str:
    return f"extra__{CONN_TYPE}__{key}"


def _stored(webserver: AirflowWebserver, conn_id: str) -> dict[str, Any]:
    """The connection row in the webserver's database, secrets decrypted with its key."""
    with sqlite3.connect(webserver.home / "airflow.db") as db:
        row = db.execute(
            "SELECT conn_type, host, port, login, password, extra, is_encrypted, "
            "is_extra_encrypted FROM connection WHERE conn_id = ?",
            (conn_id,),
        ).fetchone()
    assert row is not None, f"no stored connection {conn_id}"
    conn_type, host, port, login, password, extra, is_encrypted, is_extra_encrypted = row
    assert conn_type == CONN_TYPE
    assert is_encrypted and is_extra_encrypted, "a secret was stored unencrypted"
    fernet = Fernet(webserver.fernet_key.encode())
    return {
        "host": host,
        "port": port,
        "login": login,
        "password": fernet.decrypt(password.encode()).decode(),
        "extra": json.loads(fernet.decrypt(extra.encode())),
    }


def _api_origin(server: DevServer) -> tuple[str, int]:
    scheme_host, port = server.api_url.rsplit(":", 1)
    return scheme_host, int(port)


def _words(text: str) -> str:
    return " ".join(text.split())
