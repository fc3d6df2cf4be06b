"""The 12349 hotline console, through Django's test client: who may open it, what an operator sees about a
caller (and never about another community's people), a call handled from search to call log, double submits,
refusals that keep what was typed, the return-visit and welfare-check lists, and English without leftovers."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import World, make_member, new_id_number, web_client
from tests.test_web_pages import CJK, PERSONAS, _data_strings, page_problems, read
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.hotline.actions import do_log_call, do_record_welfare_check
from timebank.hotline.models import CallLog, ReturnVisit, WelfareCheck
from timebank.ledger.actions import do_adjustment
from timebank.members.actions import MemberInput, do_link_relative, do_register_member, do_update_member
from timebank.members.models import Member
from timebank.needs.actions import do_create_need
from timebank.needs.models import Need, NeedStatus
from timebank.orders import actions as order_actions
from timebank.orders.models import Order, OrderState

DESK = {"superuser", "head_office_admin", "branch_admin", "staff", "operator"}
OTHER_DESKS = {"staff_next", "other_bank_admin", "other_bank_staff"}


@dataclass
class Desk:
    world: World
    items: dict[str, ServiceItem]
    need: Need
    served: Order
    caller: Member

    def client(self, persona: str, *, lang: str | None = None) -> Client:
        return web_client(None if persona == "anonymous" else self.world.users[persona], lang=lang)


def _served(world: World, item: ServiceItem, days_ago: float) -> Order:
    """An order through the whole loop, confirmed `days_ago` days ago (due for a return visit)."""
    staff, volunteer = world.users["staff"], world.members["volunteer"]
    order = order_actions.do_create_order(
        staff,
        recipient=world.members["recipient"],
        service_item=item,
        scheduled_start=timezone.now() + dt.timedelta(hours=1),
        planned_minutes=60,
        payer="subsidy",
        channel="staff",
    )
    order_actions.do_dispatch(staff, order, volunteer)
    order_actions.do_accept(volunteer.user, order)
    order_actions.do_check_in(volunteer.user, order)
    # Served the full hour: the check-in is set back rather than the test waiting (credits follow the clock).
    Order.objects.filter(pk=order.pk).update(check_in_at=timezone.now() - dt.timedelta(minutes=60))
    order_actions.do_check_out(volunteer.user, order)
    order_actions.do_confirm(staff, order, actual_minutes=60, by_staff=True)
    Order.objects.filter(pk=order.pk).update(confirmed_at=timezone.now() - dt.timedelta(days=days_ago))
    return Order.objects.get(pk=order.pk)


@pytest.fixture
def desk(world: World) -> Desk:
    make = lambda name, tier: do_create_service_item(  # noqa: E731
        None, head_office=world.bank, name=name, category="mutual_care", tier=tier
    )
    items = {"meals": make("送餐上门", "ordinary"), "repair": make("家电维修", "technical")}
    recipient = world.members["recipient"]
    do_update_member(None, recipient, MemberInput(recipient_categories=["living_alone", "subsistence_allowance"]))
    recipient.refresh_from_db()
    do_adjustment(None, member=recipient, minutes=600, bucket="reserve", reason="开户")
    need = do_create_need(
        world.users["staff"], recipient=recipient, level="special", found_by="phone_call", notes="腿脚不便，想要送餐"
    )
    served = _served(world, items["meals"], days_ago=5)
    # Another bank's recipient with the very same phone number: never shown to this bank's desk.
    do_register_member(
        None,
        home_org=world.other_community,
        data=MemberInput(
            name="陈奶奶",
            id_number=new_id_number(dt.date(1938, 2, 2)),
            roles=["recipient"],
            recipient_categories=["living_alone"],
            phone=recipient.phone,
            address="驻春路 9 号",
        ),
        approved=True,
    )
    return Desk(world, items, need, served, recipient)


def _key(html: str, prefix: str) -> str:
    found = re.search(rf'name="{prefix}idempotency_key" value="([0-9a-f]{{32}})"', html)
    assert found is not None, prefix
    return found.group(1)


def _slot(hours: int = 3) -> str:
    return (timezone.localtime() + dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


def _order_form(desk: Desk, html: str, **changes: Any) -> dict[str, Any]:
    return {
        "since": str(int(timezone.now().timestamp()) - 120),
        "order-idempotency_key": _key(html, "order-"),
        "order-service_item": desk.items["meals"].pk,
        "order-start": _slot(),
        "order-planned_minutes": "60",
        "order-payer": "subsidy",
        "order-urgent": "on",
        "order-need": desk.need.pk,
        "order-notes": "老人听力不好，请大声敲门",
        **changes,
    }


# ---------------------------------------------------------------------------------------------
# Who may open the console, and what every page carries
# ---------------------------------------------------------------------------------------------


def _pages(desk: Desk) -> list[tuple[str, set[str]]]:
    return [
        ("/hotline/", DESK | OTHER_DESKS),
        ("/hotline/?q=13800000000", DESK | OTHER_DESKS),
        (f"/hotline/callers/{desk.caller.pk}/", DESK),
        (f"/hotline/callers/{desk.caller.pk}/?order={desk.served.pk}", DESK),
        ("/hotline/return-visits/", DESK | OTHER_DESKS),
        ("/hotline/welfare-checks/", DESK | OTHER_DESKS),
        ("/hotline/welfare-checks/?category=living_alone", DESK | OTHER_DESKS),
    ]


def test_the_console_opens_for_the_desk_only_and_is_well_formed(desk: Desk) -> None:
    problems = []
    clients = {p: desk.client(p) for p in PERSONAS}
    for url, allowed in _pages(desk):
        for persona in PERSONAS:
            response = clients[persona].get(url)
            if persona in allowed:
                ok = response.status_code == 200
                if ok:
                    problems += page_problems(f"{persona} {url}", response)
            elif persona == "anonymous":
                ok = response.status_code == 302 and response["Location"].startswith(settings.LOGIN_URL)
            else:
                ok = response.status_code in (403, 404)
            if not ok:
                problems.append(f"{persona} {url} → {response.status_code}")
    assert problems == [], "\n".join(problems)
    refused = desk.client("assessor").get("/hotline/")
    assert "只给社区工作人员和热线坐席使用" in refused.content.decode()
    assert desk.client("operator").get(f"/hotline/callers/{10**30}/").status_code == 404
    assert desk.client("operator").get("/hotline/callers/0/").status_code == 404


def test_the_search_box_is_focused_and_the_shortcuts_are_shown(desk: Desk) -> None:
    html = desk.client("operator").get("/hotline/").content.decode()
    box = re.search(r"<input[^>]*id=\"hotline-q\"[^>]*>", html)
    assert box is not None and " autofocus" in box.group(0) and 'accesskey="f"' in box.group(0)
    assert 'hx-get="/hotline/search/"' in box.group(0)
    assert "<kbd>F</kbd>" in html and "<kbd>O</kbd>" in html and "<kbd>L</kbd>" in html
    assert "120" in html and "110" in html  # not an emergency service: the numbers to call instead
    assert 'accesskey="u"' in html
    page = desk.client("operator").get(f"/hotline/callers/{desk.caller.pk}/").content.decode()
    assert 'accesskey="o"' in page and 'accesskey="l"' in page
    assert "120" in page  # beside the urgent box too


# ---------------------------------------------------------------------------------------------
# Finding the caller
# ---------------------------------------------------------------------------------------------


def test_search_finds_callers_as_one_types_within_the_subtree_only(desk: Desk) -> None:
    operator = desk.client("operator")
    partial = operator.get("/hotline/search/", {"q": desk.caller.phone}, HTTP_HX_REQUEST="true")
    html = partial.content.decode()
    assert partial.status_code == 200 and "<html" not in html
    assert f'href="/hotline/callers/{desk.caller.pk}/"' in html and "李大爷" in html
    assert "138****0000" in html and desk.caller.phone not in html  # the list masks phones
    assert "陈奶奶" not in html  # the same number in another bank
    by_name = operator.get("/hotline/search/", {"q": "李大"}, HTTP_HX_REQUEST="true").content.decode()
    assert "李大爷" in by_name and "王秀英" not in by_name
    # Another community's staff find nobody from here, and cannot open the caller.
    other = desk.client("staff_next").get("/hotline/search/", {"q": "李大爷"}, HTTP_HX_REQUEST="true")
    assert "李大爷" not in other.content.decode() and "没有找到" in other.content.decode()
    assert desk.client("staff_next").get(f"/hotline/callers/{desk.caller.pk}/").status_code == 403
    bank_b = desk.client("other_bank_staff").get("/hotline/", {"q": desk.caller.phone}).content.decode()
    assert "陈奶奶" in bank_b and "李大爷" not in bank_b
    # Without htmx the search is the whole console; odd input is just "nothing found".
    assert operator.get("/hotline/search/", {"q": "李 &x"})["Location"] == "/hotline/?q=%E6%9D%8E+%26x"
    for odd in ("\x00", "x" * 500, "%", "' or 1=1 --"):
        assert operator.get("/hotline/", {"q": odd}).status_code == 200


def test_the_caller_screen_shows_the_situation(desk: Desk) -> None:
    world = desk.world
    order_actions.do_create_order(
        world.users["staff"],
        recipient=desk.caller,
        service_item=desk.items["repair"],
        scheduled_start=timezone.now() + dt.timedelta(days=1),
        planned_minutes=60,
        payer="subsidy",
        channel="staff",
    )
    do_record_welfare_check(
        world.users["operator"],
        member=desk.caller,
        method="phone",
        found_ok=True,
        health_changed=False,
        note="精神很好",
    )
    html = desk.client("operator").get(f"/hotline/callers/{desk.caller.pk}/").content.decode()
    age = timezone.localdate().year - 1940 - (timezone.localdate() < dt.date(timezone.localdate().year, 5, 6))
    for words in (
        "李大爷",
        f"{age} 岁",
        "独居",
        "低保",
        "重点保障对象",  # 70+ on the minimum-living allowance
        desk.caller.phone,  # operators of the home subtree see the full number
        "运河街道 1 号",  # and the address
        "顺河社区",
        "腿脚不便，想要送餐",  # the open need
        "家电维修",  # recent orders and their states
        "已确认",
        "可用于服务：10 小时",  # the balance in plain words
        "精神很好",  # the last welfare check
        "李小明（子女）",  # relatives
    ):
        assert words in html, words
    # The relative lives in another community: staff of the caller's community see a masked number.
    staff_page = desk.client("staff").get(f"/hotline/callers/{desk.caller.pk}/").content.decode()
    assert "李小明（子女） · 138****0000" in staff_page
    assert "李小明（子女） · 13800000000" in html  # the bank-level operator sees both homes


def test_the_caller_screen_costs_the_same_however_much_there_is_to_show(desk: Desk) -> None:
    """No query per need, order, relative or call: the screen is open during every call."""
    operator = desk.client("operator")
    url = f"/hotline/callers/{desk.caller.pk}/?order={desk.served.pk}"
    operator.get(url)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert operator.get(url).status_code == 200
        return len(queries)

    before = count()
    world, staff = desk.world, desk.world.users["staff"]
    for n in range(3):
        do_create_need(staff, recipient=desk.caller, level="general", found_by="home_visit", notes=f"需求{n}")
        _served(world, desk.items["repair"], days_ago=0)
        relative = make_member(world.community, f"亲属{n}", roles=[])
        do_link_relative(None, desk.caller, relative, "亲戚")
        do_log_call(staff, org=None, member=desk.caller, kind="other", summary=f"来电{n}", started_at=timezone.now())
    assert count() == before


# ---------------------------------------------------------------------------------------------
# A call handled from the first screen to the call log
# ---------------------------------------------------------------------------------------------


def test_a_hotline_call_end_to_end(desk: Desk) -> None:
    world = desk.world
    operator = desk.client("operator")
    url = f"/hotline/callers/{desk.caller.pk}/"
    page = operator.get(url).content.decode()
    form = _order_form(desk, page)
    response = operator.post(f"{url}order/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    order = Order.objects.latest("pk")
    assert response["Location"] == f"{url}?order={order.pk}&since={form['since']}#dispatch"
    assert (order.channel, order.payer, order.urgent, order.recipient) == ("hotline", "subsidy", True, desk.caller)
    assert order.created_by == world.users["operator"] and order.notes == "老人听力不好，请大声敲门"
    desk.need.refresh_from_db()
    assert desk.need.status == NeedStatus.IN_PROGRESS and list(desk.need.orders.all()) == [order]
    # The dispatch step: ranked candidates with score and reasons, the best one chosen already.
    page = operator.get(response["Location"]).content.decode()
    assert 'id="dispatch"' in page and "匹配" in page and "最合适" in page
    top = re.search(r'<input type="radio" name="volunteer" value="(\d+)" checked accesskey="d">', page)
    assert top is not None
    assert "陈先生" not in page  # another bank's volunteer is never suggested
    response = operator.post(
        f"{url}orders/{order.pk}/dispatch/",
        {"volunteer": top.group(1), "idempotency_key": _key(page, ""), "since": form["since"]},
    )
    assert response.status_code == 302 and response["Location"].endswith("#call")
    order.refresh_from_db()
    assert order.state == OrderState.DISPATCHED and order.volunteer_id == int(top.group(1))
    # The call form links the order (and its need) already.
    page = operator.get(response["Location"]).content.decode()
    assert f'<option value="{order.pk}" selected>' in page
    assert f'<option value="{desk.need.pk}" selected>' in page
    started = re.search(r'name="call-started_at" value="(\d+)"', page)
    assert started is not None and started.group(1) == form["since"]
    response = operator.post(
        f"{url}call/",
        {
            "call-idempotency_key": _key(page, "call-"),
            "call-started_at": started.group(1),
            "call-kind": "order",
            "call-summary": "老人要送餐，已下单并派给志愿者",
            "call-order": order.pk,
            "call-need": desk.need.pk,
        },
    )
    assert response.status_code == 302 and response["Location"] == "/hotline/"
    call = CallLog.objects.get()
    assert (call.member, call.order, call.need, call.kind) == (desk.caller, order, desk.need, "order")
    assert call.operator == world.users["operator"] and call.phone == desk.caller.phone
    assert call.ended_at is not None and call.started_at <= call.ended_at
    assert int(call.started_at.timestamp()) == int(form["since"])
    assert "来电已记录" in operator.get("/hotline/").content.decode()


def test_double_submits_do_the_work_once(desk: Desk) -> None:
    operator = desk.client("operator")
    url = f"/hotline/callers/{desk.caller.pk}/"
    form = _order_form(desk, operator.get(url).content.decode(), **{"order-need": ""})
    before = Order.objects.count()
    first = operator.post(f"{url}order/", form)
    second = operator.post(f"{url}order/", form, follow=True)
    assert first.status_code == 302 and second.status_code == 200
    assert Order.objects.count() == before + 1
    assert "没有重复下单" in second.content.decode()
    assert second.redirect_chain[-1][0] == first["Location"]  # back to the same order's dispatch step
    call = {
        "call-idempotency_key": "c" * 32,
        "call-kind": "complaint",
        "call-summary": "投诉志愿者迟到",
    }
    operator.post(f"{url}call/", call)
    again = operator.post(f"{url}call/", call, follow=True)
    assert CallLog.objects.count() == 1 and "没有重复记录" in again.content.decode()
    # Another render gives another key.
    assert form["order-idempotency_key"] not in operator.get(url).content.decode()


def test_a_refused_order_says_why_and_keeps_what_was_typed(desk: Desk) -> None:
    operator = desk.client("operator")
    url = f"/hotline/callers/{desk.caller.pk}/"
    html = operator.get(url).content.decode()
    past = (timezone.localtime() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = operator.post(f"{url}order/", _order_form(desk, html, **{"order-start": past}))
    assert response.status_code == 422
    page = response.content.decode()
    assert "已经过去了" in page and "老人听力不好，请大声敲门" in page
    do_adjustment(None, member=desk.caller, minutes=-600, bucket="reserve", reason="测试：用完")
    form = _order_form(desk, html, **{"order-payer": "recipient", "order-notes": "周末来"})
    response = operator.post(f"{url}order/", form)
    assert response.status_code == 422
    page = response.content.decode()
    assert "时间余额不足" in page and "周末来" in page
    assert re.search(r'<input type="radio" name="order-payer" value="recipient"[^>]* checked', page)
    # Refused work frees the key: the corrected form goes through.
    assert operator.post(f"{url}order/", {**form, "order-payer": "pool"}).status_code == 302
    for bad in ({"order-service_item": "999999"}, {"order-planned_minutes": "99999"}, {"order-start": "soon"}):
        assert operator.post(f"{url}order/", _order_form(desk, html, **bad)).status_code == 422, bad
    assert Order.objects.filter(channel="hotline").count() == 1


def test_the_desk_cannot_act_for_another_communitys_people(desk: Desk) -> None:
    url = f"/hotline/callers/{desk.caller.pk}/"
    html = desk.client("operator").get(url).content.decode()
    before = Order.objects.count()
    for persona in ("staff_next", "other_bank_staff", "assessor", "volunteer"):
        client = desk.client(persona)
        assert client.post(f"{url}order/", _order_form(desk, html)).status_code == 403, persona
        assert client.post(f"{url}call/", {"call-kind": "other", "call-summary": "x"}).status_code == 403
    assert Order.objects.count() == before and CallLog.objects.count() == 0
    # An order of someone else cannot be dispatched through this caller's screen.
    other = make_member(desk.world.community, "孙奶奶", roles=["recipient"])
    order = order_actions.do_create_order(
        desk.world.users["staff"],
        recipient=other,
        service_item=desk.items["meals"],
        scheduled_start=timezone.now() + dt.timedelta(days=1),
        planned_minutes=60,
        payer="subsidy",
        channel="staff",
    )
    response = desk.client("operator").post(
        f"{url}orders/{order.pk}/dispatch/", {"volunteer": desk.world.members["volunteer"].pk}
    )
    assert response.status_code == 404
    order.refresh_from_db()
    assert order.state == OrderState.REQUESTED
    # ?order= of someone else's order shows no dispatch step.
    assert 'id="dispatch"' not in desk.client("operator").get(f"{url}?order={order.pk}").content.decode()


def test_dispatch_refuses_a_volunteer_who_is_not_on_the_list(desk: Desk) -> None:
    operator = desk.client("operator")
    url = f"/hotline/callers/{desk.caller.pk}/"
    operator.post(f"{url}order/", _order_form(desk, operator.get(url).content.decode()))
    order = Order.objects.latest("pk")
    page = operator.get(f"{url}?order={order.pk}").content.decode()
    response = operator.post(
        f"{url}orders/{order.pk}/dispatch/",
        {"volunteer": desk.world.members["stranger"].pk, "idempotency_key": _key(page, "")},
    )
    assert response.status_code == 422 and "错误" in response.content.decode()
    order.refresh_from_db()
    assert order.state == OrderState.REQUESTED
    order_actions.do_cancel(desk.world.users["staff"], order, reason="老人住院了", by_staff=True)
    response = operator.post(
        f"{url}orders/{order.pk}/dispatch/",
        {"volunteer": desk.world.members["volunteer"].pk, "idempotency_key": _key(page, "")},
        follow=True,
    )
    assert "不能派单了" in response.content.decode()
    order.refresh_from_db()
    assert order.state == OrderState.CANCELLED


def test_a_call_from_an_unknown_caller_is_logged_too(desk: Desk) -> None:
    operator = desk.client("operator")
    html = operator.get("/hotline/").content.decode()
    form = {
        "unknown-idempotency_key": _key(html, "unknown-"),
        "unknown-phone": "139 0000 1111",
        "unknown-kind": "legal_advice",
        "unknown-summary": "咨询遗嘱怎么写",
        "unknown-org": desk.world.community.pk,
    }
    response = operator.post("/hotline/calls/", {**form, "unknown-summary": "  "})
    assert response.status_code == 422 and "139 0000 1111" in response.content.decode()
    response = operator.post("/hotline/calls/", {**form, "unknown-phone": "call me"})
    assert response.status_code == 422 and "电话号码格式不对" in response.content.decode()
    response = operator.post("/hotline/calls/", {**form, "unknown-org": desk.world.other_community.pk})
    assert response.status_code == 422
    response = operator.post("/hotline/calls/", form)
    assert response.status_code == 302
    call = CallLog.objects.get()
    assert call.member is None and call.org == desk.world.community and call.phone == "13900001111"
    assert operator.post("/hotline/calls/", form).status_code == 302
    assert CallLog.objects.count() == 1


# ---------------------------------------------------------------------------------------------
# 满意度回访 and 定期巡访
# ---------------------------------------------------------------------------------------------


def test_the_return_visit_queue(desk: Desk) -> None:
    operator = desk.client("operator")
    html = operator.get("/hotline/return-visits/").content.decode()
    assert f'id="visit-{desk.served.pk}"' in html
    # A queue is a list: the number masked, and a way to the caller screen, where it is shown in full (audited).
    assert desk.caller.phone not in html and "138****0000" in html
    assert f'href="/hotline/callers/{desk.caller.pk}/"' in html
    assert (
        f'id="visit-{desk.served.pk}"' not in desk.client("staff_next").get("/hotline/return-visits/").content.decode()
    )
    prefix = f"rv{desk.served.pk}-"
    form = {f"{prefix}idempotency_key": _key(html, prefix), f"{prefix}outcome": "reached", f"{prefix}note": "很满意"}
    url = f"/hotline/return-visits/{desk.served.pk}/"
    response = operator.post(url, form, HTTP_HX_REQUEST="true")
    assert response.status_code == 422 and "请选老人的满意度" in response.content.decode()
    assert "很满意" in response.content.decode() and "<html" not in response.content.decode()
    whole = operator.post(url, form)  # without htmx: the whole list, this card with its reason
    assert (
        whole.status_code == 422 and "请选老人的满意度" in whole.content.decode() and "<html" in whole.content.decode()
    )
    assert desk.client("staff_next").post(url, {**form, f"{prefix}satisfaction": "5"}).status_code == 403
    response = operator.post(url, {**form, f"{prefix}satisfaction": "5"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    row = response.content.decode()
    assert row.lstrip().startswith("<li") and "满意度 5 分" in row and "<form" not in row
    visit = ReturnVisit.objects.get()
    assert (visit.order, visit.outcome, visit.satisfaction, visit.note) == (desk.served, "reached", 5, "很满意")
    assert visit.call is not None and visit.call.order == desk.served
    assert f'id="visit-{desk.served.pk}"' not in operator.get("/hotline/return-visits/").content.decode()
    # The same form again records nothing more; a fresh form is refused with the reason.
    assert operator.post(url, {**form, f"{prefix}satisfaction": "5"}).status_code == 302
    again = {**form, f"{prefix}idempotency_key": "f" * 32, f"{prefix}satisfaction": "4"}
    response = operator.post(url, again, HTTP_HX_REQUEST="true")
    assert response.status_code == 422 and "已经回访过了" in response.content.decode()
    assert ReturnVisit.objects.count() == 1


def test_not_reached_keeps_the_order_in_the_queue(desk: Desk) -> None:
    operator = desk.client("operator")
    prefix = f"rv{desk.served.pk}-"
    form = {
        f"{prefix}idempotency_key": "a" * 32,
        f"{prefix}outcome": "not_reached",
        f"{prefix}satisfaction": "3",  # picked by mistake: dropped
    }
    response = operator.post(f"/hotline/return-visits/{desk.served.pk}/", form)
    assert response.status_code == 302
    assert ReturnVisit.objects.get().satisfaction is None
    assert "已打过 1 次" in operator.get("/hotline/return-visits/").content.decode()


def test_the_welfare_check_list_and_a_changed_health_opens_a_need(desk: Desk) -> None:
    operator = desk.client("operator")
    html = operator.get("/hotline/welfare-checks/").content.decode()
    assert f'id="check-{desk.caller.pk}"' in html and "从没巡访过" in html
    assert "陈奶奶" not in html
    assert "陈奶奶" in desk.client("other_bank_staff").get("/hotline/welfare-checks/").content.decode()
    assert "李大爷" not in operator.get("/hotline/welfare-checks/", {"category": "disabled"}).content.decode()
    prefix = f"wc{desk.caller.pk}-"
    form = {
        f"{prefix}idempotency_key": _key(html, prefix),
        f"{prefix}method": "phone",
        f"{prefix}found": "no",
        f"{prefix}health_changed": "on",
        f"{prefix}note": "最近摔了一跤，走路不稳",
    }
    url = f"/hotline/welfare-checks/{desk.caller.pk}/"
    response = operator.post(url, form)
    assert response.status_code == 422
    page = response.content.decode()
    assert "请登记一项需求" in page and "最近摔了一跤，走路不稳" in page
    assert desk.client("staff_next").post(url, {**form, f"{prefix}need_level": "essential"}).status_code == 403
    response = operator.post(url, {**form, f"{prefix}need_level": "essential"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "登记了需求" in response.content.decode()
    check = WelfareCheck.objects.get()
    assert (check.found_ok, check.health_changed, check.method) == (False, True, "phone")
    assert check.need is not None and (check.need.level, check.need.found_by) == ("essential", "phone_call")
    assert check.call is not None and check.call.need == check.need
    assert f'id="check-{desk.caller.pk}"' not in operator.get("/hotline/welfare-checks/").content.decode()
    assert operator.post(url, {**form, f"{prefix}need_level": "essential"}).status_code == 302
    assert WelfareCheck.objects.count() == 1


# ---------------------------------------------------------------------------------------------
# English
# ---------------------------------------------------------------------------------------------


def test_english_console_pages_have_no_untranslated_chinese(desk: Desk) -> None:
    url = f"/hotline/callers/{desk.caller.pk}/"
    operator = desk.client("operator", lang="en")
    operator.post(f"{url}order/", _order_form(desk, operator.get(url).content.decode()))
    order = Order.objects.latest("pk")
    do_record_welfare_check(
        desk.world.users["operator"], member=desk.caller, method="phone", found_ok=True, health_changed=False
    )
    data = _data_strings()
    data |= set(Need.objects.values_list("notes", flat=True)) | set(CallLog.objects.values_list("summary", flat=True))
    ordered = sorted((s for s in data if s), key=len, reverse=True)
    leftovers = []
    pages = [u for u, _allowed in _pages(desk)] + [f"{url}?order={order.pk}", "/hotline/?q=nobody"]
    for path in pages:
        response = operator.get(path)
        assert response.status_code == 200, path
        page = read(response)
        text = " ".join([page.title, *page.text])
        for value in ordered:
            text = text.replace(value, " ")
        if CJK.search(text):
            snippet = next(
                m.group(0) for m in re.finditer(r".{0,20}[\u3400-\u9fff\u3000-\u303f\uff00-\uffef].{0,20}", text)
            )
            leftovers.append(f"{path}: {snippet!r}")
    assert leftovers == [], "\n".join(leftovers)


def test_operators_land_on_the_console(world: World) -> None:
    from django.test import Client

    client = Client()
    client.force_login(world.users["operator"])
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/hotline/"
