"""Headless Chromium (Debian's ``chromium``) driven by Playwright; no browser download.

If ``chromium`` is not installed the tests that need it fail and say how to install it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

INSTALL_HINT = (
    "chromium is not installed: the browser tests drive Debian's chromium. Install it with "
    "`apt-get install -y --no-install-recommends chromium` (make test does this through "
    "scripts/ensure-system-packages.sh)"
)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous: a loaded 2-core machine renders the React UI slowly.
TIMEOUT_MS = 45_000


@contextmanager
def chromium_page(width: int = 1280, height: int = 1000) -> Iterator[Page]:
    """A page in a fresh profile of the system chromium; closed (and the profile removed) after."""
    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError(INSTALL_HINT)
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory(prefix="oauthcc-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=ARGS,
            viewport={"width": width, "height": height},
        )
        try:
            context.set_default_timeout(TIMEOUT_MS)
            page = context.pages[0] if context.pages else context.new_page()
            yield page
        finally:
            context.close()
