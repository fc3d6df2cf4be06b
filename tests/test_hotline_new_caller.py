"""Issue 13: the hotline console registers. An unknown caller to 12349 is registered (active by staff, pending by
an operator), their need recorded and an order made for them in one screen of the console, each step through the
API's action; the call's log row links all three. Refusals show every mistake at once and write nothing; a failure
at a later step keeps the earlier ones; a double submit does each step once; other banks see and touch nothing."""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from tests.conftest import World, make_member, new_id_number, web_client
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.hotline.models import CallLog
from timebank.lib import crypto
from timebank.members.actions import do_approve_member
from timebank.members.models import Consent, Member, MemberStatus
from timebank.needs.models import Need, NeedStatus
from timebank.orders.models import Order
from timebank.orgs.actions import do_create_staff

START = "/hotline/new/"
BORN = dt.date(1941, 7, 9)


@pytest.fixture
def meals(world: World) -> ServiceItem:
    return do_create_service_item(
        None, head_office=world.bank, name="送餐上门", category="mutual_care", tier="ordinary"
    )


def _key(html: str, prefix: str = "") -> str:
    found = re.search(rf'name="{prefix}idempotency_key" value="([0-9a-f]{{32}})"', html)
    assert found is not None, prefix
    return found.group(1)


def _action(html: str, step: str) -> str:
    """The address a step's form posts to (the call's state rides in its query)."""
    found = re.search(rf'<form method="post" action="([^"]*/{step}/[^"]*)"', html)
    assert found is not None, step
    return found.group(1).replace("&amp;", "&")


def _register_form(world: World, html: str, **changes: Any) -> dict[str, Any]:
    return {
        "idempotency_key": _key(html),
        "home_org_id": world.community.pk,
        "name": "孙奶奶",
        "phone": "139 1234 5678",
        "id_number": new_id_number(BORN),
        "birth_date": "",
        "gender": "female",
        "address": "运河街道 8 号",
        "recipient_categories": ["living_alone"],
        "consent_sensitive_personal_info": "on",
        **changes,
    }


def _need_form(html: str, item: ServiceItem, **changes: Any) -> dict[str, Any]:
    return {
        "idempotency_key": _key(html),
        "level": "special",
        "item_ids": [item.pk],
        "notes": "腿脚不便，一个人住，想要送餐",
        "found_by": "phone_call",
        **changes,
    }


def _order_form(html: str, item: ServiceItem, **changes: Any) -> dict[str, Any]:
    return {
        "idempotency_key": changes.pop("idempotency_key", None) or _key(html),
        "service_item_id": item.pk,
        "scheduled_start": (timezone.localtime() + dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"),
        "planned_minutes": "60",
        "payer": "subsidy",
        "urgent": "on",
        "notes": "请先打电话",
        **changes,
    }


def _register(client: Client, world: World, **changes: Any) -> tuple[Member, str]:
    """Step 1 through the page: the new member and the steps page it leads to."""
    html = client.get(START).content.decode()
    answer = client.post(_start_action(html), _register_form(world, html, **changes))
    assert answer.status_code == 302, answer.content.decode()[:3000]
    member = Member.objects.latest("pk")
    assert answer["Location"].startswith(f"/hotline/new/{member.pk}/?since=")
    return member, answer["Location"]


def _start_action(html: str) -> str:
    found = re.search(r'<form method="post" action="(/hotline/new/\?since=\d+)"', html)
    assert found is not None
    return found.group(1)


def _counts() -> tuple[int, int, int, int, int]:
    return (
        Member.objects.count(),
        Need.objects.count(),
        Order.objects.count(),
        CallLog.objects.count(),
        Consent.objects.count(),
    )


# ---------------------------------------------------------------------------------------------
# The whole call
# ---------------------------------------------------------------------------------------------


def test_staff_at_the_desk_register_an_unknown_caller_record_the_need_order_and_log_the_call(
    world: World, meals: ServiceItem
) -> None:
    staff = web_client(world.users["staff"])
    # From the console: nobody found for the number typed, and the way to register them, the number kept.
    found = staff.get("/hotline/search/", {"q": "13912345678"}, HTTP_HX_REQUEST="true").content.decode()
    assert 'href="/hotline/new/?q=13912345678"' in found
    assert 'id="new-caller-link"' in staff.get("/hotline/").content.decode()
    first = staff.get("/hotline/new/?q=13912345678").content.decode()
    assert 'name="phone" value="13912345678"' in first and "直接生效" in first
    for name in ("home_org_id", "name", "phone", "id_number", "birth_date", "gender", "address"):
        assert f'name="{name}"' in first, name  # the API's field names
    member, steps = _register(staff, world)
    assert (member.status, member.is_recipient, member.phone, member.home_org) == (
        MemberStatus.ACTIVE,
        True,
        "13912345678",
        world.community,
    )
    assert member.birth_date == BORN and member.address == "运河街道 8 号" and member.user is None
    assert AuditEntry.objects.filter(action="member.register", object_id=str(member.pk)).count() == 1
    assert Consent.objects.filter(member=member, scope="sensitive_personal_info", granted=True).count() == 1
    since = int(steps.split("since=")[1])
    page = staff.get(steps).content.decode()
    assert 'id="registered"' in page and "孙奶奶" in page and 'id="need"' in page and 'id="order"' in page
    # Step 2: the need, found by this phone call.
    answer = staff.post(_action(page, "need"), _need_form(page, meals))
    assert answer.status_code == 302, answer.content.decode()[:3000]
    need = Need.objects.get(recipient=member)
    assert (need.level, need.found_by, need.status) == ("special", "phone_call", NeedStatus.OPEN)
    assert list(need.items.all()) == [meals] and need.created_by == world.users["staff"]
    assert answer["Location"] == f"/hotline/new/{member.pk}/?since={since}&need={need.pk}"
    page = staff.get(answer["Location"]).content.decode()
    assert 'id="need-done"' in page and "腿脚不便" in page
    # Step 3: the order, linked to the need.
    answer = staff.post(_action(page, "order"), _order_form(page, meals))
    assert answer.status_code == 302, answer.content.decode()[:3000]
    order = Order.objects.get(recipient=member)
    assert (order.channel, order.payer, order.urgent, order.service_item) == ("hotline", "subsidy", True, meals)
    assert answer["Location"] == f"/hotline/new/{member.pk}/?since={since}&need={need.pk}&order={order.pk}"
    need.refresh_from_db()
    assert need.status == NeedStatus.IN_PROGRESS and list(need.orders.all()) == [order]
    page = staff.get(answer["Location"]).content.decode()
    assert 'id="order-done"' in page and f"/hotline/callers/{member.pk}/?order={order.pk}" in page
    # Step 4: the call, its form already linking the order and the need, started when the call did.
    assert f'<option value="{order.pk}" selected>' in page and f'<option value="{need.pk}" selected>' in page
    assert f'name="call-started_at" value="{since}"' in page
    answer = staff.post(
        f"/hotline/callers/{member.pk}/call/",
        {
            "call-idempotency_key": _key(page, "call-"),
            "call-started_at": str(since),
            "call-kind": "order",
            "call-summary": "新来电老人，已登记、登记需求并下单",
            "call-order": order.pk,
            "call-need": need.pk,
        },
    )
    assert answer.status_code == 302 and answer["Location"] == "/hotline/"
    call = CallLog.objects.get()
    assert (call.member, call.need, call.order, call.phone) == (member, need, order, "13912345678")
    assert int(call.started_at.timestamp()) == since and call.operator == world.users["staff"]
    # The caller's screen now lists the call, the need and the order.
    caller = staff.get(f"/hotline/callers/{member.pk}/").content.decode()
    assert "新来电老人，已登记、登记需求并下单" in caller and "腿脚不便" in caller and f"#{order.pk} 送餐上门" in caller


def test_an_operator_registers_a_pending_member_whose_need_waits_for_approval_before_any_order(
    world: World, meals: ServiceItem
) -> None:
    operator = web_client(world.users["operator"])
    assert "要等社区工作人员审核" in operator.get(START).content.decode()
    member, steps = _register(operator, world)
    assert member.status == MemberStatus.PENDING  # operators only read members: a registration for staff to approve
    entry = AuditEntry.objects.get(action="member.register", object_id=str(member.pk))
    assert entry.data["status"] == "pending" and entry.data["self"] is False
    page = operator.get(steps).content.decode()
    assert 'id="order-waits"' in page and 'name="service_item_id"' not in page
    answer = operator.post(_action(page, "need"), _need_form(page, meals))
    assert answer.status_code == 302
    need = Need.objects.get(recipient=member)
    # An order sent anyway is refused with the reason; the member and the need stay.
    page = operator.get(answer["Location"]).content.decode()
    order_url = f"/hotline/new/{member.pk}/order/?{answer['Location'].split('?')[1]}"
    refused = operator.post(order_url, _order_form(page, meals, idempotency_key="a" * 32))
    assert refused.status_code == 422 and Order.objects.count() == 0
    html = refused.content.decode()
    assert "不是正常状态" in html and 'id="registered"' in html and 'id="need-done"' in html
    # Once the community's staff approve, the same screen orders for them.
    do_approve_member(world.users["staff"], member)
    page = operator.get(answer["Location"]).content.decode()
    ordered = operator.post(_action(page, "order"), _order_form(page, meals))
    assert ordered.status_code == 302
    order = Order.objects.get(recipient=member)
    assert list(Need.objects.get(pk=need.pk).orders.all()) == [order]


def test_a_failed_order_keeps_the_member_and_the_need_and_says_why(world: World, meals: ServiceItem) -> None:
    staff = web_client(world.users["staff"])
    member, steps = _register(staff, world)
    page = staff.get(steps).content.decode()
    done = staff.post(_action(page, "need"), _need_form(page, meals))
    page = staff.get(done["Location"]).content.decode()
    # The new member has no time of their own yet: paid by themselves, the order is refused.
    refused = staff.post(_action(page, "order"), _order_form(page, meals, payer="recipient", notes="周末来"))
    assert refused.status_code == 422
    html = refused.content.decode()
    assert "时间余额不足" in html and "周末来" in html
    assert 'id="registered"' in html and 'id="need-done"' in html  # what is done stays done
    assert Member.objects.filter(pk=member.pk).exists() and Need.objects.filter(recipient=member).count() == 1
    assert Order.objects.count() == 0
    # The refusal gave the key back: the corrected form goes through.
    again = staff.post(_action(page, "order"), _order_form(page, meals, payer="subsidy"))
    assert again.status_code == 302 and Order.objects.count() == 1
    for bad in ({"service_item_id": "999999"}, {"planned_minutes": "99999"}, {"scheduled_start": "soon"}):
        assert staff.post(_action(page, "order"), _order_form(page, meals, **bad)).status_code == 422, bad
    past = (timezone.localtime() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert staff.post(_action(page, "order"), _order_form(page, meals, scheduled_start=past)).status_code == 422
    assert Order.objects.count() == 1


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_every_mistake_in_the_registration_shows_at_once_and_nothing_is_written(world: World) -> None:
    staff = web_client(world.users["staff"])
    html = staff.get(START).content.decode()
    before = _counts()
    # One number with its check digit changed (two different numbers would give a valid one about once in eleven).
    good = new_id_number(BORN)
    bad_id = good[:-1] + ("0" if good[-1] != "0" else "1")
    answer = staff.post(_start_action(html), _register_form(world, html, name="", phone="12345", id_number=bad_id))
    assert answer.status_code == 422
    page = answer.content.decode()
    assert page.count('class="error"') >= 3
    assert "请填写正确的电话号码" in page and "身份证号校验位不正确" in page and "这个字段是必填项" in page
    assert "运河街道 8 号" in page  # what was typed stays
    for changes in (
        {"phone": ""},
        {"phone": "call me"},
        {"id_number": "12345"},
        {"home_org_id": ""},
        {"home_org_id": "abc"},
        {"home_org_id": "9" * 30},
        {"birth_date": "2999-01-01", "id_number": ""},
        {"name": "x" * 51},
        {"recipient_categories": ["rich"]},
        {"consent_sensitive_personal_info": ""},  # an ID number and address need the separate consent
    ):
        assert staff.post(_start_action(html), _register_form(world, html, **changes)).status_code == 422, changes
    assert _counts() == before


def test_an_id_number_already_registered_offers_that_member_and_leaks_no_other_banks_people(world: World) -> None:
    staff = web_client(world.users["staff"])
    recipient = world.members["recipient"]
    number = new_id_number(dt.date(1940, 5, 6))
    Member.objects.filter(pk=recipient.pk).update(id_number_hash=crypto.keyed_hash(number, scope="id_number"))
    html = staff.get(START).content.decode()
    before = _counts()
    answer = staff.post(_start_action(html), _register_form(world, html, id_number=number, name="李大爷"))
    assert answer.status_code == 409
    page = answer.content.decode()
    assert "已经登记过了" in page and 'id="existing"' in page
    assert f'href="/hotline/callers/{recipient.pk}/?since=' in page and "138****0000" in page
    assert _counts() == before
    # An operator of the bank is offered the same member (and registers nothing pending beside them).
    operator = web_client(world.users["operator"])
    html = operator.get(START).content.decode()
    answer = operator.post(_start_action(html), _register_form(world, html, id_number=number))
    assert answer.status_code == 409 and f"/hotline/callers/{recipient.pk}/" in answer.content.decode()
    # Another community's staff learn only that the number is taken in this bank: not whose it is.
    next_door = web_client(world.users["staff_next"])
    html = next_door.get(START).content.decode()
    answer = next_door.post(
        _start_action(html), _register_form(world, html, id_number=number, home_org_id=world.community2.pk)
    )
    assert answer.status_code == 409
    page = answer.content.decode()
    assert "不在您的管辖范围内" in page and "李大爷" not in page and 'id="existing"' not in page
    assert _counts() == before
    # The same number in another bank is another bank's business: registered here, nothing said about it.
    stranger_number = new_id_number(dt.date(1950, 1, 1))
    theirs = make_member(world.other_community, "陈先生的邻居", roles=["recipient"])
    Member.objects.filter(pk=theirs.pk).update(id_number_hash=crypto.keyed_hash(stranger_number, scope="id_number"))
    html = staff.get(START).content.decode()
    answer = staff.post(_start_action(html), _register_form(world, html, id_number=stranger_number))
    assert answer.status_code == 302
    assert Member.objects.latest("pk").bank_id == world.bank.pk


# ---------------------------------------------------------------------------------------------
# Other banks and other communities
# ---------------------------------------------------------------------------------------------


def test_an_operator_of_another_bank_cannot_register_here_nor_touch_the_new_member(
    world: World, meals: ServiceItem
) -> None:
    staff = web_client(world.users["staff"])
    member, steps = _register(staff, world)
    theirs = do_create_staff(
        world.users["superuser"],
        org=world.other_bank,
        username="other_operator",
        password="pass-word-1",
        name="外行坐席",
        role="operator",
    )
    other = web_client(theirs)
    html = other.get(START).content.decode()
    assert "顺河社区" not in html  # only their own communities are offered
    before = _counts()
    form = _register_form(world, html)
    assert other.post(_start_action(html), form).status_code == 403
    assert other.post(_start_action(html), {**form, "home_org_id": 10**15}).status_code == 404
    assert other.get(steps).status_code == 403
    page = staff.get(steps).content.decode()
    state = steps.split("?")[1]
    assert other.post(f"/hotline/new/{member.pk}/need/?{state}", _need_form(page, meals)).status_code == 403
    assert other.post(f"/hotline/new/{member.pk}/order/?{state}", _order_form(page, meals)).status_code == 403
    # Staff of another community of the same bank neither.
    next_door = web_client(world.users["staff_next"])
    assert next_door.post(_start_action(html), _register_form(world, html)).status_code == 403
    assert next_door.post(f"/hotline/new/{member.pk}/need/?{state}", _need_form(page, meals)).status_code == 403
    for persona in ("assessor", "volunteer", "recipient"):
        assert web_client(world.users[persona]).post(START, form).status_code == 403, persona
    assert _counts() == before
    assert staff.get("/hotline/new/999999999999/").status_code == 404
    # Another bank's need or order in the address is not this call's: not shown, not linked.
    assert 'id="need-done"' not in staff.get(f"/hotline/new/{member.pk}/?need=1&order=1").content.decode()


# ---------------------------------------------------------------------------------------------
# Double submits
# ---------------------------------------------------------------------------------------------


def test_each_step_sent_twice_is_done_once(world: World, meals: ServiceItem) -> None:
    staff = web_client(world.users["staff"])
    html = staff.get(START).content.decode()
    form = _register_form(world, html)
    first = staff.post(_start_action(html), form)
    second = staff.post(_start_action(html), form)
    assert first.status_code == second.status_code == 302 and first["Location"] == second["Location"]
    assert Member.objects.filter(name="孙奶奶").count() == 1
    page = staff.get(first["Location"]).content.decode()
    need_form = _need_form(page, meals)
    one = staff.post(_action(page, "need"), need_form)
    two = staff.post(_action(page, "need"), need_form)
    assert one["Location"] == two["Location"] and Need.objects.count() == 1
    page = staff.get(one["Location"]).content.decode()
    order_form = _order_form(page, meals)
    one = staff.post(_action(page, "order"), order_form)
    two = staff.post(_action(page, "order"), order_form)
    assert one["Location"] == two["Location"] and Order.objects.count() == 1
    # htmx: the step answers the whole page (the form swaps #new-caller in) and names its own address.
    swapped = staff.get(one["Location"], HTTP_HX_REQUEST="true")
    assert swapped["HX-Push-Url"] == one["Location"] and 'id="new-caller"' in swapped.content.decode()


def _post_at_once(posts: list[tuple[Client, str, dict[str, Any]]]) -> list[int]:
    barrier = threading.Barrier(len(posts))
    statuses = [0] * len(posts)

    def worker(i: int) -> None:
        client, url, body = posts[i]
        try:
            barrier.wait(timeout=30)
            statuses[i] = client.post(url, body).status_code
        except BaseException:  # a crash is a failed request
            statuses[i] = 599
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(len(posts))]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in pool), "a request hung"
    return statuses


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="races happen on PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_the_registration_sent_twice_at_once_registers_once(world: World) -> None:
    """One form sent twice at once registers once; two staff registering the same ID number at once with their
    own forms register one member: the database's guard, the other told it is a duplicate (409), no 500."""
    html = web_client(world.users["staff"]).get(START).content.decode()
    form = _register_form(world, html)
    url = _start_action(html)
    statuses = _post_at_once([(web_client(world.users["staff"]), url, form) for _ in range(2)])
    assert statuses == [302, 302], statuses
    assert Member.objects.filter(name="孙奶奶").count() == 1
    number = new_id_number(dt.date(1944, 4, 4))
    posts = [
        (web_client(world.users[persona]), url, _register_form(world, html, idempotency_key=key, id_number=number))
        for persona, key in (("staff", "d" * 32), ("branch_admin", "e" * 32))
    ]
    statuses = _post_at_once(posts)
    assert sorted(statuses) == [302, 409], statuses
    assert Member.objects.filter(id_number_hash=crypto.keyed_hash(number, scope="id_number")).count() == 1
