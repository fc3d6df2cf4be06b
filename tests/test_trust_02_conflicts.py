"""Finding 2 of issue 12: conflicts of interest in the service loop.

A relative who is also a volunteer must not serve the elder's order (unless the head office's
`serve_relatives` rule allows it), the volunteer of an order confirms it only with the recipient's code,
even when they are also the recipient's relative or staff, and nobody reviews an order they served.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import World, error_code, web_client
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.ledger import actions as ledger
from timebank.ledger.models import Account, Transaction
from timebank.members.models import Member
from timebank.orders.models import Order, OrderState
from timebank.orgs.models import Rules


@pytest.fixture
def item(world: World) -> ServiceItem:
    return do_create_service_item(None, head_office=world.bank, name="陪诊", category="health_care", tier="ordinary")


@pytest.fixture
def family_volunteer(world: World) -> Member:
    """The recipient's linked relative, an active volunteer of the same community; volunteers may take from the
    pool."""
    relative = world.members["relative"]
    relative.is_volunteer = True
    relative.home_org = world.community  # lives next door: the elder's orders are in their pool's area
    relative.save(update_fields=["is_volunteer", "home_org"])
    Rules.objects.filter(head_office=world.bank).update(allow_volunteer_take=True)
    ledger.do_adjustment(None, member=world.members["recipient"], minutes=600, bucket="reserve", reason="开户")
    return relative


def _rules(world: World, **values: Any) -> None:
    Rules.objects.filter(head_office=world.bank).update(**values)


def _order(world: World, item: ServiceItem, persona: str = "relative", payer: str = "recipient") -> int:
    body = {
        "recipient_id": world.members["recipient"].pk,
        "service_item_id": item.pk,
        "scheduled_start": (timezone.now() + dt.timedelta(minutes=30)).isoformat(),
        "planned_minutes": 230,
        "payer": payer,
        "channel": "app",
        "notes": "",
    }
    resp = world.api(persona).post("/api/v1/orders", body)
    assert resp.status_code == 201, resp.content
    return int(resp.json()["id"])


def _serve(world: World, oid: int, volunteer: str, minutes: int = 230) -> None:
    """Accepted, checked in `minutes` ago (written on the row: the test does not wait), checked out now."""
    for action in ("accept", "check-in"):
        resp = world.api(volunteer).post(f"/api/v1/orders/{oid}/{action}")
        assert resp.status_code == 200, (action, resp.content)
    Order.objects.filter(pk=oid).update(check_in_at=timezone.now() - dt.timedelta(minutes=minutes))
    resp = world.api(volunteer).post(f"/api/v1/orders/{oid}/check-out")
    assert resp.status_code == 200, resp.content


def _earned(member: Member) -> int:
    return Account.objects.get(member=member, kind="earned").balance_minutes


def test_finding_2_relative_cannot_serve_and_confirm_elders_order(
    world: World, item: ServiceItem, family_volunteer: Member
) -> None:
    """The attack as reported: the relative orders from the elder's reserve, takes it, serves a second and
    confirms 230 minutes without any code. Now each step that would make it work is refused."""
    before = Transaction.objects.count()
    oid = _order(world, item)
    took = world.api("relative").post(f"/api/v1/orders/{oid}/take")
    assert took.status_code == 409 and error_code(took) == "conflict_of_interest"
    dispatched = world.api("staff").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": family_volunteer.pk})
    assert dispatched.status_code == 409 and error_code(dispatched) == "conflict_of_interest"
    # The same with a subsidy order that staff make.
    subsidy = _order(world, item, persona="staff", payer="subsidy")
    for persona in ("staff", "operator"):
        resp = world.api(persona).post(f"/api/v1/orders/{subsidy}/dispatch", {"volunteer_id": family_volunteer.pk})
        assert resp.status_code == 409 and error_code(resp) == "conflict_of_interest"
    # Nobody serves themselves either, whatever the rule says.
    world.members["recipient"].is_volunteer = True
    world.members["recipient"].save(update_fields=["is_volunteer"])
    _rules(world, serve_relatives=True)
    resp = world.api("staff").post(
        f"/api/v1/orders/{subsidy}/dispatch", {"volunteer_id": world.members["recipient"].pk}
    )
    assert resp.status_code == 409 and error_code(resp) == "conflict_of_interest"
    assert Order.objects.filter(pk__in=[oid, subsidy], volunteer__isnull=False).count() == 0
    assert Transaction.objects.count() == before
    assert _earned(family_volunteer) == 0


def test_candidates_leave_out_the_recipients_relatives_unless_the_rule_allows(
    world: World, item: ServiceItem, family_volunteer: Member
) -> None:
    oid = _order(world, item)

    def proposed() -> set[int]:
        resp = world.api("staff").get(f"/api/v1/orders/{oid}/candidates")
        assert resp.status_code == 200, resp.content
        return {c["volunteer_id"] for c in resp.json()["items"]}

    assert world.members["volunteer"].pk in proposed()
    assert family_volunteer.pk not in proposed()
    # Nor on the staff's order page, which offers the same list.
    page = web_client(world.users["staff"]).get(f"/staff/orders/{oid}/").content.decode()
    assert f'value="{family_volunteer.pk}"' not in page
    _rules(world, serve_relatives=True)
    assert family_volunteer.pk in proposed()


def test_the_pool_page_refuses_a_relative_taking_the_elders_order(
    world: World, item: ServiceItem, family_volunteer: Member
) -> None:
    oid = _order(world, item)
    client = web_client(world.users["relative"])
    resp = client.post(f"/volunteer/orders/{oid}/take/", HTTP_HX_REQUEST="true")
    assert resp.status_code == 422
    assert "未能办理" in resp.content.decode()
    assert Order.objects.get(pk=oid).state == OrderState.REQUESTED
    # The staff's dispatch form refuses them too (they are not even offered).
    staff = web_client(world.users["staff"])
    resp = staff.post(f"/staff/orders/{oid}/dispatch/", {"volunteer": family_volunteer.pk})
    assert resp.status_code == 422
    assert Order.objects.get(pk=oid).volunteer_id is None


def test_a_relative_allowed_to_serve_still_confirms_only_with_the_code(
    world: World, item: ServiceItem, family_volunteer: Member
) -> None:
    _rules(world, serve_relatives=True)
    oid = _order(world, item)
    took = world.api("relative").post(f"/api/v1/orders/{oid}/take")
    assert took.status_code == 200, took.content
    # Their own order's code is not shown to them, although they are a relative.
    assert took.json()["code"] is None
    assert world.api("relative").get(f"/api/v1/orders/{oid}").json()["code"] is None
    for action in ("check-in", "check-out"):
        assert world.api("relative").post(f"/api/v1/orders/{oid}/{action}").status_code == 200
    Order.objects.filter(pk=oid).update(check_in_at=timezone.now() - dt.timedelta(minutes=230))
    before = Transaction.objects.count()
    for body in (None, {"actual_minutes": 230}):
        resp = world.api("relative").post(f"/api/v1/orders/{oid}/confirm", body)
        assert resp.status_code in (403, 409) and error_code(resp) == "conflict_of_interest", resp.content
    # The relatives' page does not offer them the confirm button, nor the code; posting it is refused.
    client = web_client(world.users["relative"])
    code = Order.objects.get(pk=oid).code
    page = client.get(f"/orders/{oid}/").content.decode()
    assert f"/orders/{oid}/confirm/" not in page and code not in page
    resp = client.post(f"/orders/{oid}/confirm/", HTTP_HX_REQUEST="true")
    assert resp.status_code == 422 and "未能办理" in resp.content.decode()
    assert Transaction.objects.count() == before and Order.objects.get(pk=oid).state == OrderState.COMPLETED
    # With the code the elder tells them, it is confirmed like any volunteer's.
    resp = world.api("relative").post(f"/api/v1/orders/{oid}/confirm", {"code": code})
    assert resp.status_code == 200, resp.content
    assert _earned(family_volunteer) == 230
    # Nobody reviews an order they served: not through the API, not through the page.
    resp = world.api("relative").post(f"/api/v1/orders/{oid}/review", {"rating": 5, "comment": "很好"})
    assert resp.status_code in (403, 409) and error_code(resp) == "conflict_of_interest"
    resp = client.post(f"/orders/{oid}/review/", {"review-rating": 5, "review-comment": "好"}, HTTP_HX_REQUEST="true")
    assert resp.status_code == 422
    assert Order.objects.get(pk=oid).rating is None
    # The elder themselves may.
    resp = world.api("recipient").post(f"/api/v1/orders/{oid}/review", {"rating": 4, "comment": ""})
    assert resp.status_code == 200, resp.content


def test_staff_who_served_confirm_only_with_the_code(world: World, item: ServiceItem) -> None:
    """A staff login that is also a volunteer member: as the order's volunteer, no staff override."""
    staff_user = world.users["staff"]
    member = world.members["volunteer"]
    member.user = None
    member.save(update_fields=["user"])
    member.user = staff_user
    member.save(update_fields=["user"])
    staff_user.refresh_from_db()
    oid = _order(world, item, persona="staff", payer="subsidy")
    resp = world.api("branch_admin").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": member.pk})
    assert resp.status_code == 200, resp.content
    staff = world.api("staff")
    # The volunteer does not see the code of an order they serve, even as staff.
    assert staff.get(f"/api/v1/orders/{oid}").json()["code"] is None
    _serve(world, oid, "staff", minutes=230)
    before = Transaction.objects.count()
    for body in (None, {"actual_minutes": 230}, {"actual_minutes": 230, "reason": "我自己做的"}):
        resp = staff.post(f"/api/v1/orders/{oid}/confirm", body)
        assert resp.status_code in (403, 409) and error_code(resp) == "conflict_of_interest", resp.content
    # The staff page's confirm form is refused the same way.
    resp = web_client(staff_user).post(f"/staff/orders/{oid}/confirm/", {"actual_minutes": 230})
    assert resp.status_code == 422
    assert Transaction.objects.count() == before
    # A colleague confirms it.
    resp = world.api("branch_admin").post(f"/api/v1/orders/{oid}/confirm", {"actual_minutes": 230})
    assert resp.status_code == 200, resp.content


def test_a_plain_volunteer_is_unaffected(world: World, item: ServiceItem, family_volunteer: Member) -> None:
    oid = _order(world, item)
    resp = world.api("staff").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": world.members["volunteer"].pk})
    assert resp.status_code == 200, resp.content
    _serve(world, oid, "volunteer")
    code = Order.objects.get(pk=oid).code
    resp = world.api("volunteer").post(f"/api/v1/orders/{oid}/confirm", {"code": code})
    assert resp.status_code == 200, resp.content
    assert resp.json()["actual_minutes"] == 230
    resp = world.api("relative").post(f"/api/v1/orders/{oid}/review", {"rating": 5, "comment": ""})
    assert resp.status_code == 200, resp.content
