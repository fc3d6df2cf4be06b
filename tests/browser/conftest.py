"""Browser tests: Debian's Chromium driven by Playwright's sync API against pytest-django's live server.

No browser is ever downloaded: without /usr/bin/chromium these tests skip (CI installs the package)."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 900}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """BROWSER_TESTS=0 skips the browser tests: CI runs them in its SQLite pass only (once is enough, and the
    two passes together must stay under 30 minutes on a 2-core machine). `make test` alone runs them."""
    if os.environ.get("BROWSER_TESTS") != "0":
        return
    here = os.path.dirname(__file__)
    skip = pytest.mark.skip(reason="BROWSER_TESTS=0: the browser tests run in CI's SQLite pass")
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(skip)


# Module scope: Playwright's sync API keeps an event loop running in this thread while it is open, and
# Django refuses ORM calls under a running loop; the loop must be gone before the next test module.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Visitor:
    """One person's browser tab: a fresh context (cookies), Chinese first like the people it is for."""

    page: Any
    base: str
    errors: list[str]

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)

    def login(self, username: str, password: str = "pass-word-1") -> None:
        self.go("/login/")
        self.page.get_by_label("用户名").fill(username)
        self.page.get_by_label("密码").fill(password)
        self.page.locator("main").get_by_role("button", name="登录").click()
        self.page.wait_for_url(self.base + "/**")

    def open_menu(self) -> Any:
        """The header, with its menu open where a phone's screen folds it behind 菜单 (a wide screen shows it)."""
        summary = self.page.locator("header details.menu > summary")
        if summary.is_visible() and self.page.locator("header details.menu[open]").count() == 0:
            summary.click()
        return self.page.locator("header.site-header")

    def close_menu(self) -> None:
        summary = self.page.locator("header details.menu > summary")
        if summary.is_visible() and self.page.locator("header details.menu[open]").count() == 1:
            summary.click()

    def shot(self, name: str) -> Path:
        self.page.wait_for_load_state()
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def fits_width(self) -> bool:
        self.page.wait_for_load_state()
        return bool(self.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def _is_script_error(message: Any) -> bool:
    # A refused action answers 4xx on purpose (htmx swaps the card with the reason); the console notes it.
    expected = "the server responded with a status of 4"
    return bool(message.type == "error" and expected not in message.text)


@pytest.fixture(scope="module", autouse=True)
def _orm_beside_playwright() -> Iterator[None]:
    """Fixtures, test bodies and the database teardown call the ORM while Playwright's loop runs in this
    thread; those calls are synchronous and safe (the live server serves from its own thread). Allowed for
    the browser modules only, and undone once their browser has closed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture
def visit(browser: Any, live_server: Any) -> Iterator[Any]:
    # The live server's first request imports every URL module and compiles the templates: seconds on a busy
    # machine, longer than a tab waits. Pay it here, once, outside any tab.
    urllib.request.urlopen(live_server.url + "/", timeout=120).close()
    contexts: list[Any] = []

    def open_tab(viewport: dict[str, int] = PHONE, locale: str = "zh-CN") -> Visitor:
        context = browser.new_context(viewport=viewport, locale=locale)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if _is_script_error(msg) else None)
        return Visitor(page, live_server.url, errors)

    yield open_tab
    for context in contexts:
        context.close()
