"""The PIPL consent boxes on a phone (issue 14): at 360 x 740, in normal and in large-text mode, each consent on the
join page is one row of its own: the box inside its label across the form's width, its explanation below it, the
next consent below that (they used to squeeze box, explanation and label into three columns side by side).
Screenshots test-artifacts/join-consents-<mode>.png."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Visitor

pytestmark = pytest.mark.django_db(transaction=True)

BOXES = """
() => [...document.querySelectorAll('input[type=checkbox][name^="consent_"]')].map((box) => {
  const label = box.closest("label");
  const field = box.closest(".field");
  const help = field.querySelector(".help");
  const r = (el) => { const b = el.getBoundingClientRect(); return {top: b.top, bottom: b.bottom, left: b.left, width: b.width}; };
  return {name: box.name, label: label && r(label), field: r(field), help: help && r(help), box: r(box)};
})
"""


@pytest.mark.parametrize("large", [False, True])
def test_each_consent_is_one_row_with_its_explanation_below(visit: Any, large: bool) -> None:
    tab: Visitor = visit()
    if large:
        tab.page.context.add_cookies([{"name": "large_text", "value": "1", "url": tab.base}])
    tab.go("/join/")
    if large:
        tab.page.wait_for_selector("html.large-text")
    boxes = tab.page.evaluate(BOXES)
    assert len(boxes) >= 3
    previous_bottom = 0.0
    for b in boxes:
        assert b["label"] is not None, b["name"]  # the box sits inside its label
        # The label spans the field's width (not a squeezed column), with the box at its left.
        assert b["label"]["width"] >= 0.9 * b["field"]["width"], b
        assert b["box"]["left"] <= b["label"]["left"] + 4, b
        # The explanation is below the label, across the width too.
        assert b["help"] is not None and b["help"]["top"] >= b["label"]["bottom"] - 1, b
        assert b["help"]["width"] >= 0.9 * b["field"]["width"], b
        # Each consent below the one before.
        assert b["field"]["top"] >= previous_bottom - 1, b
        previous_bottom = b["field"]["bottom"] if "bottom" in b["field"] else b["help"]["bottom"]
    assert tab.fits_width()
    tab.page.locator('input[name^="consent_"]').first.scroll_into_view_if_needed()
    tab.shot(f"join-consents-{'large' if large else 'normal'}")
    assert not tab.errors, tab.errors
