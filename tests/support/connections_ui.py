"""The Airflow UI's Admin → Connections pages, as a user drives them (a page object).

Selectors follow what a user sees (roles, labels, button names). The extra fields are found
by the ``element_<key>`` name or id the UI gives their inputs, because their labels are not
tied to the inputs (``for`` names another element), so ``get_by_label`` cannot find them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from playwright.sync_api import expect

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page


class ConnectionsUi:
    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.dialog = page.get_by_role("dialog")

    def log_in(self, username: str, password: str) -> None:
        self.page.goto(self.base_url + "/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(lambda url: "/auth/login" not in url)

    def open_connections(self) -> None:
        """Admin → Connections, from the navigation bar."""
        self.page.get_by_role("button", name="Admin").click()
        self.page.get_by_role("menuitem", name="Connections").click()
        self.page.get_by_role("button", name="Add Connection").wait_for()

    def open_add_form(self, conn_id: str, conn_type_name: str) -> None:
        self.page.get_by_role("button", name="Add Connection").click()
        self.dialog.get_by_label("Connection ID").fill(conn_id)
        self.dialog.get_by_role("combobox", name="Connection Type").fill(conn_type_name[:6])
        self.page.get_by_role("option", name=conn_type_name, exact=True).click()

    def standard_input(self, label: str) -> Locator:
        return self.dialog.get_by_label(label, exact=True)

    def show_section(self, title: str) -> None:
        """Expand an accordion section of the form ("Standard Fields", "Extra Fields")."""
        trigger = self.dialog.get_by_role("button", name=title, exact=True)
        if trigger.get_attribute("aria-expanded") != "true":
            trigger.click()
        expect(trigger).to_have_attribute("aria-expanded", "true")

    def extra_row(self, key: str) -> Locator:
        """The form row (label, input, description) of the extra field ``key``."""
        field = self.page.locator(_extra_field_selector(key))
        return self.dialog.locator('[data-scope="field"][data-part="root"]').filter(has=field)

    def extra_label(self, key: str) -> str:
        return self.extra_row(key).locator("label").inner_text().strip()

    def extra_input(self, key: str) -> Locator:
        return self.dialog.locator(f'input[name="element_{key}"]')

    def inputs_holding(self, value: str) -> list[str]:
        """The ``type`` of each input or text area of the form whose value is ``value``: a
        secret is masked on screen when every one of them is ``password``."""
        types = self.dialog.locator("input, textarea").evaluate_all(
            """(nodes, value) => nodes
                .filter(node => node.value === value)
                .map(node => node.tagName === "TEXTAREA" ? "textarea" : node.type)""",
            value,
        )
        return [str(kind) for kind in types]

    def visible_text(self) -> str:
        """What the form shows as text (labels, descriptions, chosen options; no input values)."""
        return self.dialog.inner_text()

    def choose(self, label: str, option: str) -> None:
        """Pick ``option`` in the choice list labelled ``label``."""
        self.dialog.get_by_role("combobox", name=label, exact=True).click()
        self.page.get_by_role("option", name=option, exact=True).click()

    def chosen(self, key: str) -> str:
        """The shown value of the choice list ``key``."""
        choice_list = f'[id="element_{key}"], [id="select:element_{key}"]'
        return self.dialog.locator(choice_list).inner_text().strip()

    @property
    def save_button(self) -> Locator:
        return self.dialog.get_by_role("button", name="Save")

    def save(self) -> None:
        self.save_button.click()
        self.dialog.wait_for(state="hidden")

    def close(self) -> None:
        self.dialog.get_by_role("button", name="Close").click()
        self.dialog.wait_for(state="hidden")

    def row(self, conn_id: str) -> Locator:
        cell = self.page.get_by_role("cell", name=conn_id, exact=True)
        return self.page.get_by_role("row").filter(has=cell)

    def open_edit_form(self, conn_id: str) -> None:
        self.row(conn_id).get_by_role("button", name="Edit Connection").click()
        self.dialog.wait_for()

    def press_test(self, conn_id: str) -> tuple[str, str]:
        """Press the row's Test button; the title and message of the toast that answers."""
        titles = '[data-scope="toast"][data-part="title"]'
        before = self.page.locator(titles).evaluate_all("nodes => nodes.map(n => n.id)")
        self.page.mouse.move(0, 0)  # so an earlier button's tooltip closes and uncovers this one
        self.row(conn_id).get_by_role("button", name="Test Connection").click()
        answer = self.page.wait_for_function(
            """([selector, before]) => {
                const fresh = [...document.querySelectorAll(selector)]
                    .find(title => !before.includes(title.id));
                if (!fresh) return null;
                const message = document.getElementById(fresh.id.replace(/:title$/, ":description"));
                return [fresh.textContent, message ? message.textContent : ""];
            }""",
            arg=[titles, before],
        ).json_value()
        return str(answer[0]), str(answer[1])


def _extra_field_selector(key: str) -> str:
    # Inputs are named element_<key>; choice lists are element_<key> (3.2+), select:element_<key> (3.1).
    return f'[name="element_{key}"], [id="element_{key}"], [id="select:element_{key}"]'
