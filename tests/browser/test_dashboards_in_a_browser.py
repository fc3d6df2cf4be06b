"""The dashboards in a real browser under the site's strict CSP: the charts draw from their JSON blocks, no
script error or CSP refusal, and the pages fit a 360 px phone."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from tests.browser.conftest import DESKTOP, PHONE
from tests.conftest import World
from timebank.catalogue.actions import do_create_service_item
from timebank.orders.records import do_service_record

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def served(world: World) -> World:
    cleaning = do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="ordinary"
    )
    for who, minutes in (("volunteer", 90), ("neighbour", 45)):
        do_service_record(
            None, volunteer=world.members[who], service_item=cleaning, minutes=minutes, served_at=timezone.now()
        )
    return world


def test_head_office_dashboard_and_risk_draw_their_charts(served: World, visit: Any) -> None:
    for viewport in (DESKTOP, PHONE):
        tab = visit(viewport)
        tab.login("head_office_admin")
        for path, name in (
            (f"/manage/dashboard/{served.bank.pk}/", "dashboard"),
            (f"/manage/risk/{served.bank.pk}/", "risk"),
        ):
            tab.go(path)
            tab.page.wait_for_selector(".chart canvas")
            drawn = tab.page.locator(".chart:not([hidden]) canvas").count()
            assert drawn >= 1, path
            # Every chart's figure still carries its table.
            assert (
                tab.page.locator("figure.chart-figure table").count() == tab.page.locator("figure.chart-figure").count()
            )
            assert tab.fits_width(), (path, viewport)
            tab.shot(f"{name}-{viewport['width']}")
        assert tab.errors == []


def test_sub_branch_day_on_a_phone(served: World, visit: Any) -> None:
    tab = visit(PHONE)
    tab.login("staff")
    tab.page.get_by_role("link", name="今天的工作").first.click()
    tab.page.wait_for_url(f"**/manage/today/{served.community.pk}/")
    assert tab.fits_width()
    tab.shot("today-360")
    assert tab.errors == []
