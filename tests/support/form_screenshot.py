"""One picture of the whole connection form, although the UI opens one section at a time.

The dialog is shot twice at the same place, once with "Standard Fields" open and once with
"Extra Fields" open; the two parts are stacked in a blank page of the same browser and shot
again, so the picture is the UI's own pixels.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.connections_ui import ConnectionsUi

if TYPE_CHECKING:
    from playwright.sync_api import FloatRect, Locator


def save_form_screenshot(ui: ConnectionsUi, path: Path) -> None:
    ui.show_section("Standard Fields")
    standard = _settled_box(ui, _section(ui, "Standard Fields"))
    dialog = _settled_box(ui, ui.dialog)
    top = ui.page.screenshot(clip=_clip(dialog, dialog["y"], standard["y"] + standard["height"]))
    ui.show_section("Extra Fields")
    extra = _settled_box(ui, _section(ui, "Extra Fields"))
    dialog = _settled_box(ui, ui.dialog)
    bottom = ui.page.screenshot(clip=_clip(dialog, extra["y"], dialog["y"] + dialog["height"]))
    _stack(ui, [top, bottom], path)


def _section(ui: ConnectionsUi, title: str) -> Locator:
    trigger = ui.page.get_by_role("button", name=title, exact=True)
    return ui.dialog.locator('[data-scope="accordion"][data-part="item"]').filter(has=trigger)


def _box(locator: Locator) -> FloatRect:
    box = locator.bounding_box()
    assert box is not None, "not visible"
    return box


def _settled_box(ui: ConnectionsUi, locator: Locator, timeout: float = 30.0) -> FloatRect:
    """The box once an expand/collapse animation is over (unchanged over a few frames)."""
    deadline = time.monotonic() + timeout
    previous, same = _box(locator), 0
    while same < 3:
        if time.monotonic() > deadline:
            raise TimeoutError("the form kept moving")
        ui.page.wait_for_timeout(100)
        current = _box(locator)
        same = same + 1 if current == previous else 0
        previous = current
    return previous


def _clip(dialog: FloatRect, top: float, bottom: float) -> FloatRect:
    return {"x": dialog["x"], "y": top, "width": dialog["width"], "height": bottom - top}


def _stack(ui: ConnectionsUi, parts: list[bytes], path: Path) -> None:
    images = "".join(
        f'<img style="display:block" src="data:image/png;base64,{base64.b64encode(p).decode()}">'
        for p in parts
    )
    page = ui.page.context.new_page()
    try:
        page.set_content(f'<body style="margin:0;display:inline-block">{images}</body>')
        body = page.locator("body")
        page.set_viewport_size({"width": int(_box(body)["width"]), "height": 800})
        path.parent.mkdir(parents=True, exist_ok=True)
        body.screenshot(path=str(path))
    finally:
        page.close()


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
