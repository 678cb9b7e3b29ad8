"""A headless Chromium for tests: open a local HTML file offline, run JS in it, screenshot it.

Uses Debian's ``/usr/bin/chromium`` through Playwright's Python client (never a downloaded
browser). Every request that is not ``file:``, ``data:``, ``blob:`` or ``about:`` is
aborted and recorded in ``Page.blocked``, so a page that renders proves it works offline.

    from browser import open_page

    @pytest.mark.browser
    def test_page(tmp_path):
        with open_page(tmp_path / "report.html") as page:
            assert page.errors == []
            assert page.eval("document.querySelectorAll('svg rect').length") > 0
            page.click("#run")
            page.screenshot(ROOT / "docs" / "report.png")

Tests that use it carry ``@pytest.mark.browser``. When Chromium or Playwright is missing the
test is skipped, unless the environment variable ``CI`` is set, in which case it fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


def chromium_path() -> str | None:
    """The system Chromium's path, or None when it is not installed."""
    override = os.environ.get("TRACEDSL_CHROMIUM")
    if override:
        return override if Path(override).exists() else None
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    return shutil.which("chromium")


def require_chromium() -> str:
    """Chromium's path; skips the test when it (or Playwright) is missing, fails under CI."""
    path = chromium_path()
    problem = None
    if path is None:
        problem = "Debian's chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright Python package is not installed (pip install playwright)"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run: {problem}")
        pytest.skip(problem)
    return path


class Page:
    """One loaded page: the errors it raised, the requests it tried, and JS access to it."""

    def __init__(self, page: Any) -> None:
        self._page = page
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.blocked: list[str] = []
        self.dialogs: list[str] = []

    @property
    def errors(self) -> list[str]:
        """Console errors and uncaught exceptions, in the order they happened."""
        return [*self.page_errors, *self.console_errors]

    @property
    def raw(self) -> Any:
        """The underlying Playwright page, for anything this wrapper does not cover."""
        return self._page

    def eval(self, expression: str, arg: Any = None) -> Any:
        """Evaluate a JS expression (or a function source, called with ``arg``) in the page."""
        return self._page.evaluate(expression, arg)

    def click(self, selector: str) -> None:
        self._page.click(selector)

    def fill(self, selector: str, value: str) -> None:
        self._page.fill(selector, value)

    def press(self, selector: str, key: str) -> None:
        self._page.press(selector, key)

    def text(self, selector: str) -> str:
        return self._page.inner_text(selector)

    def count(self, selector: str) -> int:
        """How many elements match a CSS selector."""
        return int(self._page.evaluate("s => document.querySelectorAll(s).length", selector))

    def wait_for(self, expression: str, timeout_ms: int = 10_000) -> None:
        """Wait until a JS expression is truthy."""
        self._page.wait_for_function(expression, timeout=timeout_ms)

    def screenshot(self, path: str | Path, *, full_page: bool = True) -> Path:
        """Save a screenshot. The pictures under docs/ are refreshed only when
        TRACEDSL_SCREENSHOTS=1 (so a test run leaves the checkout as it was); otherwise the
        picture goes to a temporary folder, still taken (a page that cannot be drawn fails)."""
        path = Path(path)
        if path.resolve().parent == DOCS and os.environ.get("TRACEDSL_SCREENSHOTS") != "1":
            path = Path(tempfile.gettempdir()) / "tracedsl-screenshots" / path.name
        path.parent.mkdir(parents=True, exist_ok=True)
        self._page.screenshot(path=str(path), full_page=full_page)
        return path


@contextmanager
def open_page(
    html: str | Path, *, width: int = 1280, height: int = 900, timeout_ms: int = 30_000
) -> Iterator[Page]:
    """Open a local HTML file in headless Chromium with the network cut off."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    url = Path(html).resolve().as_uri()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            context.set_default_timeout(timeout_ms)
            page = context.new_page()
            wrapper = Page(page)

            def route(route: Any) -> None:
                if route.request.url.startswith(LOCAL_SCHEMES):
                    route.continue_()
                else:
                    wrapper.blocked.append(route.request.url)
                    route.abort()

            def on_console(message: Any) -> None:
                if message.type == "error":
                    wrapper.console_errors.append(message.text)

            def on_dialog(dialog: Any) -> None:
                wrapper.dialogs.append(dialog.message)
                dialog.dismiss()

            context.route("**/*", route)
            page.on("console", on_console)
            page.on("pageerror", lambda exc: wrapper.page_errors.append(str(exc)))
            page.on("dialog", on_dialog)
            page.goto(url, wait_until="load")
            yield wrapper
        finally:
            browser.close()
