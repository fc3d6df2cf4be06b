"""Large text that is large, and the first task on the first screen (issue 14), measured in Chromium at 360 x 740
on the test world with the demo's home services: the recipient's, the volunteer's and the relative's home, in
normal and in large-text mode.

Each page is measured as it opens (the menu closed) and again with the header's menu open: the header's height,
the first task's top (the first tile in the page), the body's font size (at least 24 px in large text), every
visible control's height (at least 48 px in large text: links, buttons, inputs, selects, a checkbox's label, a
summary), every text box's width (at least 12 characters of its own font, a character being the width of "0",
CSS's `ch`), and no sideways scrolling. The recipient's order confirmation page and the login page are measured
too (they hold the text boxes and the facts box that wrapped every few characters), and so are the emergency
tile's page, the statement and the volunteer's list. Screenshots: test-artifacts/large-<role>-<page>-<mode>.png."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import PHONE, Visitor
from tests.conftest import World
from tests.test_core_services import home_services, order_history

pytestmark = pytest.mark.django_db(transaction=True)

MEASURE = """
() => {
  const shown = (el) => {
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.display === "none") return false;
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && box.right > 0 && box.left < window.innerWidth;
  };
  const labelOf = (input) => input.closest("label") || (input.id && document.querySelector(`label[for="${input.id}"]`));
  const canvas = document.createElement("canvas").getContext("2d");
  const controls = [];
  for (const el of document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, summary")) {
    let target = el;
    if (el.matches("input[type=checkbox], input[type=radio]")) target = labelOf(el) || el;
    if (!shown(target)) continue;
    const name = (target.innerText || target.value || target.getAttribute("aria-label") || el.name || "").trim();
    controls.push({what: `${el.tagName.toLowerCase()} ${name.slice(0, 30)}`, height: target.getBoundingClientRect().height});
  }
  const boxes = [];
  const textual = "input[type=text], input[type=password], input[type=tel], input[type=number], input[type=search]," +
    " input[type=email], input:not([type]), textarea";
  for (const el of document.querySelectorAll(textual)) {
    if (!shown(el)) continue;
    const style = getComputedStyle(el);
    canvas.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const width = el.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    boxes.push({what: el.name || el.id, chars: width / canvas.measureText("0").width});
  }
  const first = [...document.querySelectorAll("main .tile")].find(shown);
  return {
    header: document.querySelector("header.site-header").getBoundingClientRect().height,
    firstTask: first ? first.getBoundingClientRect().top + window.scrollY : null,
    firstTaskText: first ? first.innerText.split("\\n")[0] : null,
    bodyFont: parseFloat(getComputedStyle(document.body).fontSize),
    controls,
    boxes,
    overflow: document.scrollingElement.scrollWidth - window.innerWidth,
  };
}
"""


@pytest.fixture
def served(world: World) -> World:
    """The test world with the demo's eighteen home services and some orders, so 更多 has something behind it."""
    order_history(world, home_services(world))
    return world


def switch_large_text(tab: Visitor) -> None:
    tab.open_menu().get_by_role("button", name=re.compile("大字模式")).click()
    tab.page.wait_for_selector("html.large-text")


def measure(tab: Visitor, where: str, *, large: bool, task: bool = True) -> dict[str, Any]:
    tab.page.wait_for_load_state()
    closed = tab.page.evaluate(MEASURE)
    tab.open_menu()
    opened = tab.page.evaluate(MEASURE)
    tab.close_menu()
    for figures, state in ((closed, "menu closed"), (opened, "menu open")):
        at = f"{where}, {state}"
        assert figures["overflow"] <= 0, f"{at}: {figures['overflow']} px wider than the window"
        narrow = [box for box in figures["boxes"] if box["chars"] < 12]
        assert narrow == [], f"{at}: text boxes narrower than 12 characters: {narrow}"
        if large:
            assert figures["bodyFont"] >= 24, at
            short = [c for c in figures["controls"] if c["height"] < 48 - 0.01]
            assert short == [], f"{at}: controls under 48 px: {short}"
    if task:
        assert closed["firstTask"] is not None, where
        assert closed["firstTask"] + 48 <= PHONE["height"], f"{where}: the first task starts at {closed['firstTask']}"
        # One line: the bank's name and the menu button (a control's height and the bar's padding).
        assert closed["header"] <= 80, f"{where}: the header is {closed['header']} px tall"
    return closed


@pytest.mark.parametrize("large", [False, True], ids=["normal", "large"])
def test_the_first_task_is_on_the_first_screen_for_each_role(served: World, visit: Any, large: bool) -> None:
    mode = "large" if large else "normal"
    seen: dict[str, dict[str, Any]] = {}
    for role in ("recipient", "volunteer", "relative"):
        tab: Visitor = visit(PHONE)
        tab.login(role)
        if large:
            switch_large_text(tab)
        tab.go("/")
        seen[role] = measure(tab, f"{role}'s home ({mode})", large=large)
        tab.shot(f"large-{role}-home-{mode}")
        tab.open_menu()
        tab.shot(f"large-{role}-menu-{mode}")
        tab.close_menu()
        if role == "recipient":
            # The emergency tile is first; the order's last step holds the facts box and the text boxes.
            assert seen[role]["firstTaskText"] == "紧急救援"
            tab.page.locator("#order .tile:not(.emergency)").first.click()
            tab.page.locator("ul.tiles a.tile").first.click()
            tab.page.get_by_role("button", name="确认点单").wait_for()
            measure(tab, f"the order's confirmation ({mode})", large=large, task=False)
            tab.shot(f"large-recipient-confirm-{mode}")
            tab.go("/")
            tab.page.locator("#order .tile.emergency").click()
            tab.page.locator('a[href="tel:120"]').wait_for()
            measure(tab, f"the emergency tile's page ({mode})", large=large, task=False)
            tab.shot(f"large-recipient-emergency-{mode}")
            tab.go("/me/time/")
            measure(tab, f"the statement ({mode})", large=large, task=False)
            tab.shot(f"large-recipient-statement-{mode}")
        if role == "volunteer":
            tab.go("/volunteer/")  # the list of orders to take, with their buttons
            measure(tab, f"the volunteer's list ({mode})", large=large, task=False)
            tab.shot(f"large-volunteer-list-{mode}")
        assert tab.errors == [], role
    anonymous: Visitor = visit(PHONE)
    if large:
        anonymous.go("/login/")
        switch_large_text(anonymous)
    anonymous.go("/login/")
    measure(anonymous, f"the login page ({mode})", large=large, task=False)
    anonymous.shot(f"large-login-{mode}")
    print(
        mode,
        {
            role: (round(f["header"]), round(f["firstTask"]), f["firstTaskText"], f["bodyFont"])
            for role, f in seen.items()
        },
    )
