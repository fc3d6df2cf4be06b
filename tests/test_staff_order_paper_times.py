"""Found by the station's browser walk-through (issue 13): the staff order page did not show the check-in and
check-out times, so staff who entered them from a paper sign-in sheet could not see what they had recorded (the
history lists when each step was entered, not the time written on the sheet)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from tests.conftest import World, make_member, web_client
from tests.test_paper_mode import dispatched, item, local, step
from timebank.catalogue.models import ServiceItem
from timebank.orders.models import Order
from timebank.web.templatetags.web import when

__all__ = ["item"]  # the fixture


def test_the_staff_order_page_shows_the_recorded_check_in_and_check_out(world: World, item: ServiceItem) -> None:
    volunteer = make_member(world.community, "张纸质", roles=["volunteer"])
    now = timezone.now().replace(second=0, microsecond=0)
    oid = dispatched(world, item, volunteer, start=now - dt.timedelta(hours=1))
    Order.objects.filter(pk=oid).update(dispatched_at=now - dt.timedelta(hours=3))
    check_in, check_out = now - dt.timedelta(minutes=65), now - dt.timedelta(minutes=5)
    staff = web_client(world.users["staff"])
    assert "<dt>签到</dt>" not in staff.get(f"/staff/orders/{oid}/").content.decode()  # nothing to show yet
    assert step(world, "staff", oid, "accept", {"at": local(now - dt.timedelta(minutes=170))}).status_code == 200
    assert step(world, "staff", oid, "check-in", {"at": local(check_in), "source": "paper_sheet"}).status_code == 200
    page = staff.get(f"/staff/orders/{oid}/").content.decode()
    assert f"<dt>签到</dt><dd>{when(check_in)}</dd>" in page and "<dt>签退</dt>" not in page
    assert step(world, "staff", oid, "check-out", {"at": local(check_out), "source": "paper_sheet"}).status_code == 200
    page = staff.get(f"/staff/orders/{oid}/").content.decode()
    assert f"<dt>签到</dt><dd>{when(check_in)}</dd>" in page
    assert f"<dt>签退</dt><dd>{when(check_out)}</dd>" in page
