"""Finding 3 of issue 12: time on the clock.

Check-in no earlier than `checkin_early_minutes` before the scheduled start; credited minutes never more than
the measured time between check-in and check-out plus `checkout_grace_minutes`, nor more than planned plus
`confirm_grace_minutes`; staff may confirm more only with a reason, which is audited.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.conftest import World, error_code, web_client
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.ledger import actions as ledger
from timebank.ledger.models import Account, Transaction
from timebank.orders.models import Order, OrderState
from timebank.orgs.models import Rules


@pytest.fixture
def item(world: World) -> ServiceItem:
    return do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="ordinary"
    )


def _accepted(world: World, item: ServiceItem, start: dt.datetime, planned: int = 60, payer: str = "subsidy") -> int:
    body = {
        "recipient_id": world.members["recipient"].pk,
        "service_item_id": item.pk,
        "scheduled_start": start.isoformat(),
        "planned_minutes": planned,
        "payer": payer,
        "channel": "staff",
        "notes": "",
    }
    resp = world.api("staff").post("/api/v1/orders", body)
    assert resp.status_code == 201, resp.content
    oid = int(resp.json()["id"])
    resp = world.api("staff").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": world.members["volunteer"].pk})
    assert resp.status_code == 200, resp.content
    assert world.api("volunteer").post(f"/api/v1/orders/{oid}/accept").status_code == 200
    return oid


def _served(world: World, item: ServiceItem, minutes: float, planned: int = 60) -> int:
    """Checked in now, then the check-in is set `minutes` back (the test does not wait), checked out."""
    oid = _accepted(world, item, timezone.now(), planned=planned)
    assert world.api("volunteer").post(f"/api/v1/orders/{oid}/check-in").status_code == 200
    Order.objects.filter(pk=oid).update(check_in_at=timezone.now() - dt.timedelta(minutes=minutes))
    assert world.api("volunteer").post(f"/api/v1/orders/{oid}/check-out").status_code == 200
    return oid


def _earned(world: World) -> int:
    return Account.objects.get(member=world.members["volunteer"], kind="earned").balance_minutes


def test_finding_3_an_order_for_the_day_after_tomorrow_cannot_be_checked_in_and_confirmed_today(
    world: World, item: ServiceItem
) -> None:
    """The attack as reported: checked in and out in milliseconds two days early, confirmed for 60 minutes."""
    oid = _accepted(world, item, timezone.now() + dt.timedelta(days=2))
    before = Transaction.objects.count()
    resp = world.api("volunteer").post(f"/api/v1/orders/{oid}/check-in")
    assert resp.status_code == 409 and error_code(resp) == "too_early", resp.content
    assert world.api("volunteer").post(f"/api/v1/orders/{oid}/check-out").status_code == 409
    code = Order.objects.get(pk=oid).code
    for persona, body in (("volunteer", {"code": code, "actual_minutes": 60}), ("recipient", {"actual_minutes": 60})):
        resp = world.api(persona).post(f"/api/v1/orders/{oid}/confirm", body)
        assert resp.status_code == 409, resp.content
    # The volunteer's page says when check-in opens, and refuses it before then.
    volunteer_page = web_client(world.users["volunteer"])
    assert "起才能签到" in volunteer_page.get("/volunteer/").content.decode()
    resp = volunteer_page.post(f"/volunteer/orders/{oid}/check-in/", HTTP_HX_REQUEST="true")
    assert resp.status_code == 422 and "未能办理" in resp.content.decode()
    order = Order.objects.get(pk=oid)
    assert order.state == OrderState.ACCEPTED and order.check_in_at is None
    assert Transaction.objects.count() == before and _earned(world) == 0
    # The recipient's page does not say it is done: it is still waiting for the visit.
    page = web_client(world.users["recipient"]).get(f"/orders/{oid}/").content.decode()
    assert "服务结束了" not in page and "服务已确认" not in page and "会在" in page


def test_check_in_opens_the_rules_early_minutes_before_the_start(world: World, item: ServiceItem) -> None:
    soon = _accepted(world, item, timezone.now() + dt.timedelta(minutes=50))
    assert world.api("volunteer").post(f"/api/v1/orders/{soon}/check-in").status_code == 200
    later = _accepted(world, item, timezone.now() + dt.timedelta(minutes=70))
    resp = world.api("volunteer").post(f"/api/v1/orders/{later}/check-in")
    assert resp.status_code == 409 and error_code(resp) == "too_early"
    Rules.objects.filter(head_office=world.bank).update(checkin_early_minutes=90)
    assert world.api("volunteer").post(f"/api/v1/orders/{later}/check-in").status_code == 200
    # A late start is fine: the volunteer may arrive after the scheduled time.
    late = _accepted(world, item, timezone.now() - dt.timedelta(hours=3))
    assert world.api("volunteer").post(f"/api/v1/orders/{late}/check-in").status_code == 200
    # A state error is still the state error.
    resp = world.api("volunteer").post(f"/api/v1/orders/{soon}/check-in")
    assert resp.status_code == 409 and error_code(resp) == "invalid_transition"


def test_nobody_but_staff_with_a_reason_confirms_more_than_the_clock(world: World, item: ServiceItem) -> None:
    oid = _served(world, item, minutes=0.01)  # checked out a second after checking in
    code = Order.objects.get(pk=oid).code
    before = Transaction.objects.count()
    for persona, body in (
        ("volunteer", {"code": code, "actual_minutes": 60}),
        ("recipient", {"actual_minutes": 60}),
        ("relative", {"actual_minutes": 12}),
        ("staff", {"actual_minutes": 60}),
        ("staff", {"actual_minutes": 60, "reason": "   "}),
    ):
        resp = world.api(persona).post(f"/api/v1/orders/{oid}/confirm", body)
        assert resp.status_code == 409 and error_code(resp) == "exceeds_measured_time", (persona, resp.content)
        assert resp.json()["error"]["fields"]["max_minutes"] == 11  # 1 measured minute + 10 grace
    assert Transaction.objects.count() == before
    # The staff page asks for the reason the same way.
    staff_page = web_client(world.users["staff"])
    resp = staff_page.post(f"/staff/orders/{oid}/confirm/", {"actual_minutes": 60})
    assert resp.status_code == 422 and Transaction.objects.count() == before
    # With a reason, staff may; the reason is in the confirmation's audit entry.
    resp = staff_page.post(
        f"/staff/orders/{oid}/confirm/", {"actual_minutes": 60, "reason": "签退时手机没电，回访核实 1 小时"}
    )
    assert resp.status_code == 302
    order = Order.objects.get(pk=oid)
    assert order.state == OrderState.CONFIRMED and order.actual_minutes == 60
    entry = AuditEntry.objects.filter(object_type="order", object_id=str(oid), action="order.confirm").get()
    assert entry.data["reason"] == "签退时手机没电，回访核实 1 小时"
    assert entry.data["over_measured_time"] is True and entry.data["max_minutes"] == 11
    assert entry.actor == world.users["staff"]


def test_the_clock_caps_what_each_party_confirms(world: World, item: ServiceItem) -> None:
    # 45 minutes measured (rounded up) on a 60-minute plan: up to 55 credited.
    oid = _served(world, item, minutes=44.5)
    resp = world.api("recipient").post(f"/api/v1/orders/{oid}/confirm", {"actual_minutes": 56})
    assert resp.status_code == 409 and error_code(resp) == "exceeds_measured_time"
    resp = world.api("recipient").post(f"/api/v1/orders/{oid}/confirm", {"actual_minutes": 55})
    assert resp.status_code == 200 and resp.json()["credited_minutes"] == 55
    # Without actual_minutes: the planned time, capped by the clock.
    oid = _served(world, item, minutes=19.5)
    code = Order.objects.get(pk=oid).code
    resp = world.api("volunteer").post(f"/api/v1/orders/{oid}/confirm", {"code": code})
    assert resp.status_code == 200 and resp.json()["actual_minutes"] == 30  # 20 measured (rounded up) + 10
    oid = _served(world, item, minutes=90)
    resp = world.api("relative").post(f"/api/v1/orders/{oid}/confirm")
    assert resp.status_code == 200 and resp.json()["actual_minutes"] == 60  # the plan, not the long visit
    # Planned + confirm grace (30) bounds a long visit too; staff may go past it only with a reason.
    oid = _served(world, item, minutes=200)
    resp = world.api("recipient").post(f"/api/v1/orders/{oid}/confirm", {"actual_minutes": 91})
    assert resp.status_code == 409 and error_code(resp) == "exceeds_measured_time"
    resp = world.api("staff").post(f"/api/v1/orders/{oid}/confirm", {"actual_minutes": 150})
    assert resp.status_code == 409 and error_code(resp) == "exceeds_measured_time"
    assert resp.json()["error"]["fields"]["reason"] == "required"
    resp = world.api("staff").post(
        f"/api/v1/orders/{oid}/confirm", {"actual_minutes": 150, "reason": "老人临时加了一项"}
    )
    assert resp.status_code == 200 and resp.json()["actual_minutes"] == 150


def test_a_disputed_order_is_confirmed_by_staff_within_the_clock_or_with_a_reason(
    world: World, item: ServiceItem
) -> None:
    ledger.do_adjustment(None, member=world.members["recipient"], minutes=600, bucket="reserve", reason="开户")
    oid = _served(world, item, minutes=5)
    assert world.api("recipient").post(f"/api/v1/orders/{oid}/dispute", {"reason": "只来了五分钟"}).status_code == 200
    resp = world.api("staff").post(f"/api/v1/orders/{oid}/confirm", {"actual_minutes": 60})
    assert resp.status_code == 409 and error_code(resp) == "exceeds_measured_time"
    resp = world.api("staff").post(f"/api/v1/orders/{oid}/confirm", {"actual_minutes": 15})
    assert resp.status_code == 200 and resp.json()["actual_minutes"] == 15


def test_bad_confirm_input_is_refused_and_moves_nothing(world: World, item: ServiceItem) -> None:
    oid = _served(world, item, minutes=30)
    before = Transaction.objects.count()
    for body in (
        {"actual_minutes": -5},
        {"actual_minutes": 10**9},
        {"actual_minutes": "60"},
        {"actual_minutes": 60, "reason": "x" * 501},
        {"actual_minutes": 60, "reason": 7},
    ):
        resp = world.api("staff").post(f"/api/v1/orders/{oid}/confirm", body)
        assert resp.status_code in (400, 422), (body, resp.content)
    assert Transaction.objects.count() == before
    assert Order.objects.get(pk=oid).state == OrderState.COMPLETED
