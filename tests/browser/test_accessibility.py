"""axe-core in Chromium at 360 x 740 (issue 14): for each role of the demo world, the pages it reaches by clicking
from its home, in normal and in large-text mode, have no accessibility violation of impact serious or critical.

The crawl is the browser's own and bounded: from the home page, the same-origin links of each page (GET only, no
downloads, no logout or language switch), breadth-first, one page of each kind (ids folded, as in
tests/test_page_crawl.py), at most PAGES_PER_ROLE pages a role, each kind checked for the first role that reaches
it (and every role's home page). The same pages are then opened again with the large-
text cookie. axe-core is vendored (tests/browser/vendor/README) and added to each page as an init script, which
runs before the page's own and is not bound by its Content-Security-Policy (a <script> tag added by the test would
be refused by it); the pages themselves run as served, CSP and all.

Every violation is printed as its rule id, impact and the selectors of its nodes, so a failure says what to fix."""

from __future__ import annotations

import html
import re
import time
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from tests.browser.conftest import PHONE, Visitor
from timebank.demo.generator import DEMO_PASSWORD, generate

pytestmark = pytest.mark.django_db(transaction=True)

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
AXE_VERSION = "4.14.1"
# The demo logins of the roles (None: a visitor, who sees the login, join and public pages).
ROLES: dict[str, str | None] = {
    "anonymous": None,
    "recipient": "recipient",
    "relative": "relative",
    "volunteer": "volunteer",
    "staff": "staff",
    "operator": "operator",
    "branch_admin": "branch_admin",
    "head_office_admin": "ho_admin",
}
PAGES_PER_ROLE = 12
SKIP_PREFIXES = ("/logout/", "/i18n/", "/prefs/", "/admin/", "/api/", "/static/", "/media/")
DOWNLOAD = re.compile(r"\.(pdf|xlsx|csv|png|svg|jpg|json)$|/qr/code/$|/export/$|/download/")
SERIOUS = ("serious", "critical")
LINKS = "() => [...document.querySelectorAll('a[href]')].map((a) => a.getAttribute('href'))"
RUN_AXE = """
async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    targets: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
    count: v.nodes.length,
  }));
}
"""


def kind_of(path: str) -> str:
    return re.sub(r"\d+", "N", path)


def same_origin(current: str, href: str) -> str | None:
    href = html.unescape((href or "").strip())
    if not href or href.startswith(("#", "mailto:", "tel:", "javascript:", "data:")):
        return None
    parts = urlsplit(urljoin("http://site" + current, href))
    if parts.netloc != "site" or parts.path.startswith(SKIP_PREFIXES) or DOWNLOAD.search(parts.path):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def crawl(tab: Visitor, checked: set[str]) -> tuple[list[str], list[str]]:
    """The pages a role reaches from its home by clicking, and the problems found on them (normal text). A kind of
    page an earlier role's crawl already checked is passed through for its links only (the home page always counts),
    so the roles that share pages (staff, branch and head-office admins) reach further for the same time."""
    queue: deque[str] = deque(["/"])
    kinds: set[str] = {kind_of("/")}
    pages: list[str] = []
    problems: list[str] = []
    visits = 0
    while queue and len(pages) < PAGES_PER_ROLE and visits < 3 * PAGES_PER_ROLE:
        path = queue.popleft()
        visits += 1
        response = tab.page.goto(tab.base + path)
        if response is None or not response.ok or "text/html" not in (response.headers.get("content-type") or ""):
            continue
        here = urlsplit(tab.page.url)
        path = here.path + (f"?{here.query}" if here.query else "")
        if path in pages:  # a redirect to a page already checked (the home of staff is /staff/)
            continue
        if not pages or kind_of(here.path) not in checked:
            pages.append(path)
            problems += report(tab, path, "normal")
        for href in tab.page.evaluate(LINKS):
            target = same_origin(path, href)
            if target is None or kind_of(urlsplit(target).path) in kinds:
                continue
            kinds.add(kind_of(urlsplit(target).path))
            queue.append(target)
    checked |= {kind_of(urlsplit(page).path) for page in pages}
    return pages, problems


def report(tab: Visitor, path: str, mode: str) -> list[str]:
    tab.page.wait_for_load_state()
    assert tab.page.evaluate("() => typeof axe === 'object' && axe.version") == AXE_VERSION, path
    found = []
    for v in tab.page.evaluate(RUN_AXE):
        line = f"{path} ({mode}): {v['id']} [{v['impact']}] x{v['count']} {v['targets']} — {v['help']}"
        print(line)
        if v["impact"] in SERIOUS:
            found.append(line)
    return found


@pytest.fixture
def demo(transactional_db: None) -> None:
    generate(members=30, seed=7)


def test_no_serious_or_critical_accessibility_violation_on_any_crawled_page(
    demo: None, browser: Any, live_server: Any
) -> None:
    urllib.request.urlopen(live_server.url + "/", timeout=120).close()  # the first request compiles everything
    problems: list[str] = []
    checked: set[str] = set()
    started = time.monotonic()
    for role, login in ROLES.items():
        context = browser.new_context(viewport=PHONE, locale="zh-CN")
        context.set_default_timeout(15_000)
        context.add_init_script(path=str(AXE))
        try:
            tab = Visitor(context.new_page(), live_server.url, [])
            if login:
                tab.login(login, DEMO_PASSWORD)
            pages, found = crawl(tab, checked)
            context.add_cookies([{"name": "large_text", "value": "1", "url": live_server.url}])
            for path in pages:
                tab.go(path)
                assert tab.page.locator("html.large-text").count() == 1, path
                found += report(tab, path, "large")
            print(f"{role}: {len(pages)} pages in {time.monotonic() - started:.0f} s: {pages}")
            problems += [f"{role}: {line}" for line in found]
        finally:
            context.close()
    assert problems == [], "serious or critical accessibility violations:\n" + "\n".join(problems)
