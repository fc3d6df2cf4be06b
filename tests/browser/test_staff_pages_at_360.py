"""Every staff page at 360 px and 1280 px (issue 13: "every page at 360 px and 1280 px with no horizontal scroll"): for
each staff role of the demo world (community staff, hotline operator, branch and head-office admins, the supervisor),
the pages it reaches by clicking from its home are opened in Chromium at 360 x 740, then resized to 1280 x 800, and
at neither may they scroll sideways (document.documentElement.scrollWidth <= window.innerWidth). A wide table scrolls inside its own .table-wrap (or
stacks), never the page.

The crawl is tests/browser/test_accessibility.py's: same-origin links (GET, no downloads, no logout or language
switch), one page of each kind (ids folded). Each kind is measured for the first role that reaches it; links to kinds
nobody measured yet are followed first, and a page already measured is only read for its links (its HTML, not drawn),
so the five roles together measure about 80 kinds of staff page in under a minute. A failure names each page that
scrolls, by how much, and the outermost elements wider than the screen."""

from __future__ import annotations

import re
import time
import urllib.request
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import PHONE, Visitor
from tests.browser.test_accessibility import LINKS, kind_of, same_origin
from timebank.demo.generator import DEMO_PASSWORD, generate

pytestmark = pytest.mark.django_db(transaction=True)

# The staff roles' demo logins (timebank/orgs/demo.py), the widest reach first: a later role measures only the kinds
# of page the earlier ones did not reach.
ROLES: dict[str, str] = {
    "staff": "staff",
    "head_office_admin": "ho_admin",
    "branch_admin": "branch_admin",
    "operator": "operator",
    "supervisor": "supervisor",
}
PAGES_PER_ROLE = 60  # new kinds of page measured per role
VISITS_PER_ROLE = 75  # pages opened per role, measured or read for their links only
DESKTOP = {"width": 1280, "height": 800}
STALE_AFTER = 12  # a role whose last pages opened found no new kind has reached what it can cheaply
# The outermost visible elements reaching past the window's right edge that no scrolling box holds, widest first.
TOO_WIDE = """
() => {
  const width = window.innerWidth;
  const over = document.documentElement.scrollWidth - width;
  if (over <= 0) return null;
  const held = (e) => {
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== "visible" && a.getBoundingClientRect().right <= width + 1) return true;
    }
    return false;
  };
  const wide = [...document.body.querySelectorAll("*")].filter((e) => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.right > width + 1 && e.checkVisibility() && !held(e);
  });
  const set = new Set(wide);
  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
    + (typeof e.className === "string" && e.className.trim() ? "." + e.className.trim().split(/\\s+/).join(".") : "")
    + " " + Math.round(e.getBoundingClientRect().width) + "px";
  const tops = wide.filter((e) => !set.has(e.parentElement));
  tops.sort((a, b) => b.getBoundingClientRect().width - a.getBoundingClientRect().width);
  return {over, wide: tops.slice(0, 4).map(name)};
}
"""


HREF = re.compile(r'<a\b[^>]*?\shref="([^"]*)"')


def unlinked_pages() -> dict[str, list[str]]:
    """Staff pages no link of the demo world leads to (a transaction is opened from the answer that made it, a move
    from its notice), by the role that may open them: measured after the role's home."""
    from timebank.ledger.models import InterBankMove, Transaction
    from timebank.orgs.models import User

    staff = User.objects.get(username="staff")
    tx = Transaction.objects.filter(legs__account__member__home_org=staff.org).order_by("-pk").first()
    move = InterBankMove.objects.order_by("pk").first()
    by_role: dict[str, list[str]] = {"staff": [], "head_office_admin": []}
    if tx is not None:
        by_role["staff"].append(f"/staff/transactions/{tx.pk}/")
    if move is not None:
        by_role["head_office_admin"].append(f"/staff/interbank-moves/{move.pk}/")
    return by_role


def crawl(tab: Visitor, measured: set[str], unlinked: list[str]) -> tuple[list[str], int, list[str]]:
    """The pages this role measured (new kinds), how many it reached from its home by clicking, and the pages that
    scroll sideways. A kind another role measured is only read for its links (its HTML, without drawing it)."""
    queue: deque[str] = deque(["/"])
    kinds: set[str] = {kind_of(urlsplit(p).path) for p in ["/", *unlinked]}
    pages: list[str] = []
    problems: list[str] = []
    visits = reached = stale = 0
    while queue and len(pages) < PAGES_PER_ROLE and visits < VISITS_PER_ROLE and stale < STALE_AFTER:
        path = queue.popleft()
        visits += 1
        stale += 1
        if pages and kind_of(urlsplit(path).path) in measured:
            answer = tab.page.request.get(tab.base + path, max_redirects=0)
            if not answer.ok or "text/html" not in (answer.headers.get("content-type") or ""):
                continue
            reached += 1
            hrefs = HREF.findall(answer.text())
        else:
            response = tab.page.goto(tab.base + path)
            if response is None or not response.ok or "text/html" not in (response.headers.get("content-type") or ""):
                continue
            reached += 1
            here = urlsplit(tab.page.url)
            path = here.path + (f"?{here.query}" if here.query else "")
            if not pages or kind_of(here.path) not in measured:
                pages.append(path)
                measured.add(kind_of(here.path))
                stale = 0
                tab.page.wait_for_load_state()
                if (found := tab.page.evaluate(TOO_WIDE)) is not None:
                    problems.append(f"{path}: {found['over']} px wider than the window: {found['wide']}")
                # The same page on a desktop screen: resized in place (a relayout, no second request).
                tab.page.set_viewport_size(DESKTOP)
                if (found := tab.page.evaluate(TOO_WIDE)) is not None:
                    problems.append(f"{path} at 1280 px: {found['over']} px wider than the window: {found['wide']}")
                tab.page.set_viewport_size(PHONE)
            hrefs = tab.page.evaluate(LINKS)
        for href in hrefs:
            target = same_origin(path, href)
            if target is None or kind_of(urlsplit(target).path) in kinds:
                continue
            kinds.add(kind_of(urlsplit(target).path))
            # A kind nobody measured yet goes first: the pages already measured are only ways to further links.
            if kind_of(urlsplit(target).path) in measured:
                queue.append(target)
            else:
                queue.appendleft(target)
        if visits == 1:
            queue.extendleft(reversed(unlinked))  # the pages no link leads to: right after the home
    return pages, reached, problems


BUILD_STARTED = [0.0]


@pytest.fixture
def demo(transactional_db: None) -> None:
    BUILD_STARTED[0] = time.monotonic()
    generate(members=30, seed=7)


def test_no_staff_page_scrolls_sideways_at_360_px(demo: None, browser: Any, live_server: Any) -> None:
    print(f"demo world built in {time.monotonic() - BUILD_STARTED[0]:.0f} s")
    urllib.request.urlopen(live_server.url + "/", timeout=120).close()  # the first request compiles everything
    problems: list[str] = []
    measured: set[str] = set()
    started = time.monotonic()
    unlinked = unlinked_pages()
    for role, login in ROLES.items():
        context = browser.new_context(viewport=PHONE, locale="zh-CN")
        context.set_default_timeout(15_000)
        try:
            tab = Visitor(context.new_page(), live_server.url, [])
            tab.login(login, DEMO_PASSWORD)
            pages, reached, found = crawl(tab, measured, unlinked.get(role, []))
            if role == "supervisor":  # the measure itself: a box wider than the phone is found
                tab.page.goto("about:blank")  # no page's CSP: the inline width applies
                tab.page.set_content('<body><main><div style="width: 600px">宽</div></main></body>')
                assert tab.page.evaluate(TOO_WIDE)["wide"] == ["div 600px"]
                tab.page.set_viewport_size(DESKTOP)
                assert tab.page.evaluate(TOO_WIDE) is None
                tab.page.set_content('<body><main><div style="width: 1400px">宽</div></main></body>')
                assert tab.page.evaluate(TOO_WIDE)["wide"] == ["div 1400px"]
        finally:
            context.close()
        print(f"{role}: {reached} pages reached, {len(pages)} measured at 360 and 1280 px: {pages}")
        assert reached >= 5, f"{role} reached too few pages: {pages}"
        problems += [f"{role} {p}" for p in found]
    print(f"{len(measured)} kinds of page at 360 px in {time.monotonic() - started:.0f} s")
    assert not problems, "These staff pages scroll sideways (360 px phone, or 1280 px where named):\n" + "\n".join(
        problems
    )
