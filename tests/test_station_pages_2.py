"""Issue 13: pages for operations that were API-only, each reached by clicking from the role's home, guarded by
its endpoint's access function and calling its action: a withdrawal of stored time (支取), a volunteer who did
not come (爽约), correcting a logged call, reading one's notifications, going on and off duty, a donation in
kind and buying an unfilled order's service from the emergency fund.

Each page: the form names its inputs after the API's fields; valid input does what the endpoint does; bad input
(wrong types, negative or huge numbers, another org's ids) comes back on the form, next to its field, with
nothing written; a persona outside the subtree gets 403/404; the same form sent twice acts once.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import World, web_client
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.funds.actions import EntryInput, do_record_entry
from timebank.funds.models import FundEntry
from timebank.goods.models import Goods
from timebank.hotline.actions import do_log_call
from timebank.hotline.models import CallLog
from timebank.ledger import actions as ledger
from timebank.ledger.models import Account, Transaction, TransactionKind
from timebank.notify.models import Notification, StaffDuty
from timebank.orders import actions as orders
from timebank.orders.models import Order, OrderEvent


def form_key(html: str) -> str:
    found = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', html)
    assert found, "the form carries its key"
    return found.group(1)


def click(client: Client, page: str, href: str) -> str:
    """GET `page`, check it links to `href`, follow the link: the linked page's HTML."""
    resp = client.get(page, follow=True)
    assert resp.status_code == 200
    assert f'href="{href}"' in resp.content.decode(), f"{page} links to {href}"
    followed = client.get(href, follow=True)
    assert followed.status_code == 200, followed.content.decode()[:500]
    return followed.content.decode()


def error_next_to(html: str, field: str) -> bool:
    return f'id="id_{field}_error_1"' in html


# Withdrawals (POST /api/v1/ledger/withdrawals) ---------------------------------------------------------------

WITHDRAW = "/staff/withdrawals/new/"


def spendable(member_id: int) -> int:
    return sum(
        Account.objects.filter(member_id=member_id, kind__in=["earned", "reserve"]).values_list(
            "balance_minutes", flat=True
        )
    )


def withdrawals() -> int:
    return Transaction.objects.filter(kind=TransactionKind.WITHDRAWAL).count()


@pytest.fixture
def credited(world: World) -> World:
    ledger.do_adjustment(
        world.users["superuser"], member=world.members["recipient"], minutes=300, bucket="earned", reason="期初"
    )
    return world


def withdrawal_form(world: World, key: str, **changes: Any) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "member_id": world.members["recipient"].pk,
        "minutes": 90,
        "memo": "助餐 3 次",
        **changes,
    }


def test_staff_withdraw_stored_time_by_clicking_from_the_home(credited: World) -> None:
    world = credited
    staff = web_client(world.users["staff"])
    recipient = world.members["recipient"]
    click(staff, "/", WITHDRAW)
    found = staff.get(WITHDRAW, {"q": "李大"}).content.decode()
    assert f'href="?member_id={recipient.pk}"' in found
    picked = staff.get(WITHDRAW, {"member_id": recipient.pk}).content.decode()
    assert f'name="member_id" value="{recipient.pk}"' in picked and "现有 300 分钟" in picked
    body = withdrawal_form(world, form_key(picked))
    resp = staff.post(WITHDRAW, body, follow=True)
    tx = Transaction.objects.get(kind=TransactionKind.WITHDRAWAL)
    assert resp.redirect_chain[-1][0] == f"/staff/transactions/{tx.pk}/"
    assert "已从 李大爷 的时间里支取" in resp.content.decode()
    assert (tx.minutes, tx.memo, tx.actor_id) == (90, "助餐 3 次", world.users["staff"].pk)
    assert spendable(recipient.pk) == 210
    # The same form sent again (a double click, a resend) acts once and shows the same result.
    again = staff.post(WITHDRAW, body)
    assert again.status_code == 302 and again["Location"] == f"/staff/transactions/{tx.pk}/"
    assert withdrawals() == 1 and spendable(recipient.pk) == 210
    # The statement links to it too.
    assert (
        f'href="{WITHDRAW}?member_id={recipient.pk}"'
        in staff.get(f"/staff/members/{recipient.pk}/statement/").content.decode()
    )


@pytest.mark.parametrize(
    ("change", "field", "status"),
    [
        ({"minutes": -30}, "minutes", 422),
        ({"minutes": 0}, "minutes", 422),
        ({"minutes": 10**15}, "minutes", 422),
        ({"minutes": "一小时"}, "minutes", 422),
        ({"minutes": 9_000_000}, "minutes", 409),  # more than the member has
        ({"memo": "长" * 501}, "memo", 422),
        ({"member_id": "某人"}, "member_id", 422),
        ({"member_id": 99_999_999}, "member_id", 404),
        ({"member_id": "stranger"}, "member_id", 403),  # another bank's member
    ],
)
def test_bad_withdrawals_are_refused_next_to_the_field_and_write_nothing(
    credited: World, change: dict[str, Any], field: str, status: int
) -> None:
    world = credited
    if change.get("member_id") == "stranger":
        change = {"member_id": world.members["stranger"].pk}
    staff = web_client(world.users["staff"])
    resp = staff.post(WITHDRAW, withdrawal_form(world, "k" * 32, **change))
    assert resp.status_code == status, resp.status_code
    assert error_next_to(resp.content.decode(), field), resp.content.decode()[:3000]
    assert withdrawals() == 0 and spendable(world.members["recipient"].pk) == 300
    # The key was given back: the corrected form goes through.
    fixed = staff.post(WITHDRAW, withdrawal_form(world, "k" * 32))
    assert fixed.status_code == 302 and withdrawals() == 1


@pytest.mark.parametrize("persona", ["staff_next", "other_bank_staff", "other_bank_admin"])
def test_staff_outside_the_members_subtree_may_not_withdraw(credited: World, persona: str) -> None:
    world = credited
    client = web_client(world.users[persona])
    resp = client.post(WITHDRAW, withdrawal_form(world, "x" * 32))
    assert resp.status_code in (403, 404)
    assert client.get(WITHDRAW, {"member_id": world.members["recipient"].pk}).status_code in (403, 404)
    assert withdrawals() == 0


@pytest.mark.parametrize("persona", ["operator", "assessor", "volunteer", "recipient"])
def test_who_may_not_withdraw_is_refused(credited: World, persona: str) -> None:
    client = web_client(credited.users[persona])
    assert client.get(WITHDRAW).status_code == 403
    assert client.post(WITHDRAW, withdrawal_form(credited, "y" * 32)).status_code == 403
    assert withdrawals() == 0


# A volunteer who did not come (POST /api/v1/orders/{order_id}/no-show) ------------------------------------------


@pytest.fixture
def item(world: World) -> ServiceItem:
    return do_create_service_item(None, head_office=world.bank, name="助餐", category="mutual_care", tier="ordinary")


def new_order(world: World, item: ServiceItem, *, dispatched: bool = True) -> Order:
    order = orders.do_create_order(
        world.users["staff"],
        recipient=world.members["recipient"],
        service_item=item,
        scheduled_start=timezone.now() + dt.timedelta(days=1),
        planned_minutes=60,
        payer="subsidy",
        channel="hotline",
    )
    if dispatched:
        orders.do_dispatch(world.users["staff"], order, world.members["volunteer"])
    return Order.objects.get(pk=order.pk)


def no_shows(order: Order) -> int:
    return OrderEvent.objects.filter(order=order, action="no-show").count()


def test_staff_record_a_no_show_by_clicking_from_the_home(world: World, item: ServiceItem) -> None:
    order = new_order(world, item)
    staff = web_client(world.users["staff"])
    click(staff, "/", "/staff/orders/")
    html = click(staff, "/staff/orders/", f"/staff/orders/{order.pk}/")
    assert f'action="/staff/orders/{order.pk}/no-show/"' in html and 'name="reason"' in html
    body = {"idempotency_key": form_key(html.split("/no-show/")[1]), "reason": "老人来电说志愿者没有到"}
    resp = staff.post(f"/staff/orders/{order.pk}/no-show/", body, follow=True)
    assert resp.redirect_chain[-1][0] == f"/staff/orders/{order.pk}/"
    assert "已记录志愿者爽约" in resp.content.decode()
    order.refresh_from_db()
    assert (order.state, order.volunteer_id) == ("requested", None)
    event = OrderEvent.objects.get(order=order, action="no-show")
    assert (event.volunteer_id, event.note, event.actor_id) == (
        world.members["volunteer"].pk,
        "老人来电说志愿者没有到",
        world.users["staff"].pk,
    )
    # The same form sent again acts once; the page no longer offers it (nobody is dispatched).
    again = staff.post(f"/staff/orders/{order.pk}/no-show/", body)
    assert again.status_code == 302 and no_shows(order) == 1
    assert "/no-show/" not in staff.get(f"/staff/orders/{order.pk}/").content.decode()


def test_an_operator_of_the_bank_records_a_no_show(world: World, item: ServiceItem) -> None:
    order = new_order(world, item)
    resp = web_client(world.users["operator"]).post(f"/staff/orders/{order.pk}/no-show/", {"reason": ""})
    assert resp.status_code == 302 and no_shows(order) == 1


def test_bad_no_shows_come_back_with_the_reason_and_change_nothing(world: World, item: ServiceItem) -> None:
    staff = web_client(world.users["staff"])
    order = new_order(world, item)
    resp = staff.post(f"/staff/orders/{order.pk}/no-show/", {"idempotency_key": "a" * 32, "reason": "长" * 501})
    assert resp.status_code == 422 and error_next_to(resp.content.decode(), "noshow_reason")
    # Nobody is dispatched to an order still waiting for dispatch: refused with the reason, on the page.
    waiting = new_order(world, item, dispatched=False)
    resp = staff.post(f"/staff/orders/{waiting.pk}/no-show/", {"idempotency_key": "b" * 32, "reason": "没来"})
    assert resp.status_code == 422 and "未能办理" in resp.content.decode()
    assert no_shows(order) == no_shows(waiting) == 0
    order.refresh_from_db()
    assert order.state == "dispatched"
    assert staff.post("/staff/orders/99999999/no-show/", {"reason": "没来"}).status_code == 404
    assert staff.post("/staff/orders/abc/no-show/", {"reason": "没来"}).status_code == 404


@pytest.mark.parametrize("persona", ["staff_next", "other_bank_staff", "other_bank_admin", "volunteer", "recipient"])
def test_who_is_outside_the_orders_subtree_may_not_record_a_no_show(
    world: World, item: ServiceItem, persona: str
) -> None:
    order = new_order(world, item)
    client = web_client(world.users[persona])
    assert client.post(f"/staff/orders/{order.pk}/no-show/", {"reason": "没来"}).status_code in (403, 404)
    assert no_shows(order) == 0


# Correcting a logged call (PATCH /api/v1/hotline/calls/{call_id}) ---------------------------------------------


def log_call(world: World, by: str = "operator", member: str = "recipient") -> CallLog:
    return do_log_call(
        world.users[by],
        org=None,
        member=world.members[member],
        kind="order",
        summary="要助餐",
        started_at=timezone.now() - dt.timedelta(minutes=30),
    )


def call_updates(call: CallLog) -> int:
    return AuditEntry.objects.filter(action="call.update", object_id=str(call.pk)).count()


def call_form(key: str, **changes: Any) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "summary": "要助餐，每周二、四中午",
        "ended_at": "",
        "order_id": "",
        "need_id": "",
        **changes,
    }


def test_an_operator_corrects_a_logged_call_by_clicking_from_the_home(world: World, item: ServiceItem) -> None:
    call = log_call(world)
    order = new_order(world, item, dispatched=False)
    operator = web_client(world.users["operator"])
    click(operator, "/", "/hotline/call-log/")
    html = click(operator, "/hotline/call-log/", f"/hotline/call-log/{call.pk}/")
    for name in ("summary", "ended_at", "order_id", "need_id"):
        assert f'name="{name}"' in html
    ended = timezone.localtime() - dt.timedelta(minutes=5)
    body = call_form(form_key(html), ended_at=ended.strftime("%Y-%m-%dT%H:%M"), order_id=order.pk)
    resp = operator.post(f"/hotline/call-log/{call.pk}/", body, follow=True)
    assert resp.redirect_chain[-1][0] == "/hotline/call-log/"
    assert "通话记录已更正" in resp.content.decode()
    call.refresh_from_db()
    assert (call.summary, call.order_id) == ("要助餐，每周二、四中午", order.pk)
    assert timezone.localtime(call.ended_at).strftime("%Y-%m-%dT%H:%M") == ended.strftime("%Y-%m-%dT%H:%M")
    assert call_updates(call) == 1
    # The same form sent again acts once.
    assert operator.post(f"/hotline/call-log/{call.pk}/", body).status_code == 302
    assert call_updates(call) == 1


def test_the_callers_screen_links_the_calls_one_may_correct(world: World) -> None:
    mine, theirs = log_call(world), log_call(world, by="staff")
    html = (
        web_client(world.users["operator"]).get(f"/hotline/callers/{world.members['recipient'].pk}/").content.decode()
    )
    assert f'href="/hotline/call-log/{mine.pk}/"' in html
    assert f'href="/hotline/call-log/{theirs.pk}/"' not in html  # logged by staff: the operator only reads it


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"summary": ""}, "summary"),
        ({"summary": "长" * 501}, "summary"),
        ({"ended_at": "昨天"}, "ended_at"),
        ({"ended_at": "2099-01-01T09:00"}, "ended_at"),  # in the future
        ({"ended_at": "2020-01-01T09:00"}, "ended_at"),  # before the call started
        ({"order_id": "abc"}, "order_id"),
        ({"order_id": -1}, "order_id"),
        ({"order_id": 10**12}, "order_id"),
        ({"order_id": 99_999_999}, "order_id"),  # unknown
        ({"order_id": "other_bank"}, "order_id"),
        ({"order_id": "someone_else"}, "order_id"),  # another member's order
        ({"need_id": 99_999_999}, "need_id"),
    ],
)
def test_bad_call_corrections_are_refused_next_to_the_field_and_change_nothing(
    world: World, item: ServiceItem, change: dict[str, Any], field: str
) -> None:
    call = log_call(world)
    if change.get("order_id") == "other_bank":
        stranger_item = do_create_service_item(
            None, head_office=world.other_bank, name="外行", category="mutual_care", tier="ordinary"
        )
        change = {
            "order_id": orders.do_create_order(
                world.users["other_bank_staff"],
                recipient=world.members["stranger"],
                service_item=stranger_item,
                scheduled_start=timezone.now() + dt.timedelta(days=1),
                planned_minutes=60,
                payer="subsidy",
                channel="hotline",
            ).pk
        }
    if change.get("order_id") == "someone_else":
        mine = log_call(world, member="volunteer")  # the volunteer's call, the recipient's order
        call, change = mine, {"order_id": new_order(world, item, dispatched=False).pk}
    operator = web_client(world.users["operator"])
    resp = operator.post(f"/hotline/call-log/{call.pk}/", call_form("k" * 32, **change))
    assert resp.status_code == 422
    assert error_next_to(resp.content.decode(), field), resp.content.decode()[:3000]
    call.refresh_from_db()
    assert (call.summary, call.ended_at, call.order_id, call.need_id) == ("要助餐", None, None, None)
    assert call_updates(call) == 0
    # The key was given back: the corrected form goes through.
    assert operator.post(f"/hotline/call-log/{call.pk}/", call_form("k" * 32)).status_code == 302


@pytest.mark.parametrize("persona", ["operator", "staff_next", "other_bank_staff", "volunteer", "recipient"])
def test_who_did_not_log_the_call_and_is_not_staff_of_its_subtree_may_not_correct_it(
    world: World, persona: str
) -> None:
    call = log_call(world, by="staff")  # logged by the community's staff: the bank's operator only reads it
    client = web_client(world.users[persona])
    assert client.get(f"/hotline/call-log/{call.pk}/").status_code in (403, 404)
    assert client.post(f"/hotline/call-log/{call.pk}/", call_form("z" * 32)).status_code in (403, 404)
    if persona == "operator":
        assert f"/hotline/call-log/{call.pk}/" not in client.get("/hotline/call-log/").content.decode()
    call.refresh_from_db()
    assert call.summary == "要助餐" and call_updates(call) == 0
    # The community's staff (and admins above) may.
    assert (
        web_client(world.users["branch_admin"]).post(f"/hotline/call-log/{call.pk}/", call_form("w" * 32)).status_code
        == 302
    )


# One's own messages (POST /api/v1/notifications/{id}/read, /notifications/read-all) ----------------------------


def message(world: World, persona: str, title: str = "订单已派出") -> Notification:
    user = world.users[persona]
    return Notification.objects.create(
        bank=world.bank, user=user, channel="outbox", template="test", title=title, body=f"{title}：请留意。"
    )


@pytest.mark.parametrize("persona", ["volunteer", "staff", "operator"])
def test_everyone_reads_their_messages_by_clicking_from_the_home(world: World, persona: str) -> None:
    first, second = message(world, persona), message(world, persona, "明天的服务")
    theirs = message(world, "recipient", "别人的消息")
    client = web_client(world.users[persona])
    html = click(client, "/", "/me/messages/")
    assert "订单已派出" in html and "明天的服务" in html and "别人的消息" not in html
    assert "有 2 条未读消息" in html
    # One, with htmx: the card comes back without its button.
    resp = client.post(f"/me/messages/{first.pk}/read/", HTTP_HX_REQUEST="true")
    assert resp.status_code == 200 and "标为已读" not in resp.content.decode()
    first.refresh_from_db()
    read_at = first.read_at
    assert read_at is not None
    # Again is fine: the first time stays.
    assert client.post(f"/me/messages/{first.pk}/read/").status_code == 302
    first.refresh_from_db()
    assert first.read_at == read_at
    # All of them; the same button again marks none and is no error.
    resp = client.post("/me/messages/read-all/", follow=True)
    assert "已全部标为已读（1 条）" in resp.content.decode()
    second.refresh_from_db()
    assert second.read_at is not None
    assert "已全部标为已读（0 条）" in client.post("/me/messages/read-all/", follow=True).content.decode()
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_someone_elses_message_is_not_found_and_stays_unread(world: World) -> None:
    theirs = message(world, "recipient")
    client = web_client(world.users["staff"])
    for url in (f"/me/messages/{theirs.pk}/read/", "/me/messages/99999999/read/", "/me/messages/abc/read/"):
        assert client.post(url).status_code == 404
    assert client.get(f"/me/messages/{theirs.pk}/read/").status_code == 405
    theirs.refresh_from_db()
    assert theirs.read_at is None
    visitor = Client()
    assert visitor.get("/me/messages/").status_code == 302
    assert visitor.post("/me/messages/read-all/").status_code == 302
    assert Notification.objects.filter(read_at__isnull=False).count() == 0


# On and off duty (POST /api/v1/duty) ---------------------------------------------------------------------------


def on_duty(world: World, persona: str) -> bool | None:
    duty = StaffDuty.objects.filter(user=world.users[persona]).first()
    return None if duty is None else duty.on_duty


@pytest.mark.parametrize("persona", ["staff", "operator", "branch_admin"])
def test_staff_and_operators_go_on_and_off_duty_by_clicking_from_the_home(world: World, persona: str) -> None:
    client = web_client(world.users[persona])
    html = click(client, "/", "/staff/duty/")
    assert "现在：不在值班" in html and 'name="on_duty" value="true"' in html
    resp = client.post("/staff/duty/", {"on_duty": "true"}, follow=True)
    assert "您现在在值班" in resp.content.decode() and 'name="on_duty" value="false"' in resp.content.decode()
    assert on_duty(world, persona) is True
    # The same button twice (a double click) sets, not toggles: still on duty, one audit row.
    assert client.post("/staff/duty/", {"on_duty": "true"}).status_code == 302
    assert on_duty(world, persona) is True
    assert AuditEntry.objects.filter(action="staff.duty", actor=world.users[persona]).count() == 1
    client.post("/staff/duty/", {"on_duty": "false"})
    assert on_duty(world, persona) is False


@pytest.mark.parametrize("value", ["maybe", "", "1", "True"])
def test_a_bad_duty_value_comes_back_with_the_reason(world: World, value: str) -> None:
    resp = web_client(world.users["staff"]).post("/staff/duty/", {"on_duty": value})
    assert resp.status_code == 422 and error_next_to(resp.content.decode(), "on_duty")
    assert on_duty(world, "staff") is None


@pytest.mark.parametrize("persona", ["volunteer", "recipient", "assessor"])
def test_who_cannot_be_on_duty_is_refused(world: World, persona: str) -> None:
    client = web_client(world.users[persona])
    assert client.get("/staff/duty/").status_code == 403
    assert client.post("/staff/duty/", {"on_duty": "true"}).status_code == 403
    assert not StaffDuty.objects.exists()


# A donation in kind (POST /api/v1/funds/in-kind) ---------------------------------------------------------------


def in_kind_form(key: str, **changes: Any) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "item_description": "大米 20 袋",
        "estimated_value": "1280.50",
        "source": "enterprise",
        "donor_name": "运河粮油公司",
        "occurred_on": timezone.localdate().isoformat(),
        "fund": "general",
        "description": "重阳节慰问",
        **changes,
    }


def test_staff_record_a_donation_in_kind_by_clicking_from_the_home(world: World) -> None:
    staff = web_client(world.users["staff"])
    click(staff, "/", "/manage/")
    click(staff, "/manage/", "/funds/")
    page = f"/funds/{world.community.pk}/in-kind/"
    html = click(staff, "/funds/", page)
    for name in ("item_description", "estimated_value", "source", "donor_name", "occurred_on", "fund"):
        assert f'name="{name}"' in html
    body = in_kind_form(form_key(html))
    resp = staff.post(page, body, follow=True)
    assert resp.redirect_chain[-1][0] == f"/funds/{world.community.pk}/"
    assert "已登记捐赠物品：大米 20 袋，折价 1280.50 元" in resp.content.decode()
    entry = FundEntry.objects.get()
    assert (entry.org_id, entry.in_kind, entry.direction, entry.source, entry.amount, entry.created_by_id) == (
        world.community.pk,
        True,
        "income",
        "enterprise",
        Decimal("1280.50"),
        world.users["staff"].pk,
    )
    # The same form sent again books it once.
    again = staff.post(page, body, follow=True)
    assert "没有重复记账" in again.content.decode() and FundEntry.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"estimated_value": "-5"}, "estimated_value"),
        ({"estimated_value": "0"}, "estimated_value"),
        ({"estimated_value": "100000000000"}, "estimated_value"),
        ({"estimated_value": "1.234"}, "estimated_value"),
        ({"estimated_value": "一千元"}, "estimated_value"),
        ({"occurred_on": "2099-01-01"}, "occurred_on"),
        ({"occurred_on": "昨天"}, "occurred_on"),
        ({"source": ""}, "source"),
        ({"source": "bank"}, "source"),
        ({"fund": "pension"}, "fund"),
        ({"item_description": ""}, "item_description"),
        ({"item_description": "米" * 201}, "item_description"),
        ({"donor_name": "张先生 13912345678"}, "donor_name"),  # the action's refusal: no personal numbers
    ],
)
def test_bad_donations_in_kind_are_refused_next_to_the_field_and_write_nothing(
    world: World, change: dict[str, Any], field: str
) -> None:
    staff = web_client(world.users["staff"])
    page = f"/funds/{world.community.pk}/in-kind/"
    resp = staff.post(page, in_kind_form("k" * 32, **change))
    assert resp.status_code == 422
    assert error_next_to(resp.content.decode(), field), resp.content.decode()[:3000]
    assert not FundEntry.objects.exists()
    assert staff.post(page, in_kind_form("k" * 32)).status_code == 302 and FundEntry.objects.count() == 1


def test_donated_goods_go_on_an_outlets_shelf_in_the_same_step(world: World) -> None:
    staff = web_client(world.users["staff"])
    page = f"/funds/{world.community.pk}/in-kind/"
    html = staff.get(page).content.decode()
    for name in ("outlet_id", "quantity", "goods_id", "name", "price_minutes"):
        assert f'name="stock.{name}"' in html
    assert f'<option value="{world.outlet.pk}">' in html and f'<option value="{world.community2.pk}">' not in html
    shelf = {"stock.outlet_id": world.outlet.pk, "stock.quantity": 20, "stock.name": "大米", "stock.price_minutes": 30}
    assert staff.post(page, in_kind_form(form_key(html), **shelf)).status_code == 302
    goods = Goods.objects.get()
    entry = FundEntry.objects.get()
    assert (goods.outlet_id, goods.name, goods.stock, goods.price_minutes, entry.goods_id) == (
        world.outlet.pk,
        "大米",
        20,
        30,
        goods.pk,
    )
    # Restocking the same goods by their number.
    more = {"stock.outlet_id": world.outlet.pk, "stock.quantity": 5, "stock.goods_id": goods.pk}
    assert staff.post(page, in_kind_form("r" * 32, **more)).status_code == 302
    goods.refresh_from_db()
    assert goods.stock == 25 and FundEntry.objects.count() == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"stock.outlet_id": "next_community"}, "stock.outlet_id"),  # not offered: another community's
        ({"stock.outlet_id": "abc"}, "stock.outlet_id"),
        ({"stock.quantity": ""}, "stock.quantity"),
        ({"stock.quantity": 0}, "stock.quantity"),
        ({"stock.quantity": 10**9}, "stock.quantity"),
        ({"stock.price_minutes": -5}, "stock.price_minutes"),
        ({"stock.name": "", "stock.price_minutes": ""}, "stock.name"),  # new goods need a name and a price
        ({"stock.goods_id": 99_999_999}, "stock.goods_id"),
    ],
)
def test_a_bad_shelf_is_refused_next_to_its_field_and_nothing_is_booked(
    world: World, change: dict[str, Any], field: str
) -> None:
    if change.get("stock.outlet_id") == "next_community":
        change = {"stock.outlet_id": world.community2.pk}
    shelf = {"stock.outlet_id": world.outlet.pk, "stock.quantity": 20, "stock.name": "大米", "stock.price_minutes": 30}
    resp = web_client(world.users["staff"]).post(
        f"/funds/{world.community.pk}/in-kind/", in_kind_form("q" * 32, **{**shelf, **change})
    )
    assert resp.status_code in (404, 422)
    assert error_next_to(resp.content.decode(), field), resp.content.decode()[:3000]
    assert not FundEntry.objects.exists() and not Goods.objects.exists()


@pytest.mark.parametrize("persona", ["staff_next", "other_bank_admin", "operator", "volunteer", "recipient"])
def test_who_does_not_manage_the_orgs_funds_may_not_record_a_donation(world: World, persona: str) -> None:
    client = web_client(world.users[persona])
    page = f"/funds/{world.community.pk}/in-kind/"
    assert client.get(page).status_code == 403
    assert client.post(page, in_kind_form("z" * 32)).status_code == 403
    assert not FundEntry.objects.exists()


# Buying an unfilled order's service from the fund (POST /api/v1/orders/{order_id}/buy-service) -------------------


@pytest.fixture
def unfilled(credited: World, item: ServiceItem) -> Order:
    """An order paid from the recipient's stored time that nobody took, and 500 yuan in the community's fund."""
    world = credited
    do_record_entry(
        world.users["staff"],
        world.community,
        EntryInput(
            direction="income", amount="500", occurred_on=timezone.localdate(), source="government", fund="emergency"
        ),
    )
    order = orders.do_create_order(
        world.users["staff"],
        recipient=world.members["recipient"],
        service_item=item,
        scheduled_start=timezone.now() + dt.timedelta(days=1),
        planned_minutes=60,
        payer="recipient",
        channel="hotline",
    )
    return Order.objects.get(pk=order.pk)


def buy_form(order: Order, key: str, **changes: Any) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "provider": "运河家政服务公司",
        "amount": "80",
        "org_id": order.org_id,
        "occurred_on": timezone.localdate().isoformat(),
        "unfillable": "on",
        "note": "附近没有会做饭的志愿者",
        **changes,
    }


def bought() -> int:
    return FundEntry.objects.filter(direction="expense").count()


def test_staff_buy_an_unfilled_orders_service_by_clicking_from_the_home(world: World, unfilled: Order) -> None:
    order = unfilled
    staff = web_client(world.users["staff"])
    click(staff, "/", "/staff/orders/")
    click(staff, "/staff/orders/", f"/staff/orders/{order.pk}/")
    page = f"/funds/orders/{order.pk}/buy-service/"
    html = click(staff, f"/staff/orders/{order.pk}/", page)
    for name in ("provider", "amount", "org_id", "occurred_on", "unfillable", "note"):
        assert f'name="{name}"' in html
    before = spendable(world.members["recipient"].pk)
    body = buy_form(order, form_key(html))
    resp = staff.post(page, body, follow=True)
    assert resp.redirect_chain[-1][0] == f"/staff/orders/{order.pk}/"
    assert "已由专项基金购买服务" in resp.content.decode()
    order.refresh_from_db()
    assert order.state == "confirmed"
    entry = FundEntry.objects.get(direction="expense")
    assert (entry.org_id, entry.fund, entry.amount, entry.provider, entry.order_id) == (
        order.org_id,
        "emergency",
        Decimal("80"),
        "运河家政服务公司",
        order.pk,
    )
    assert spendable(world.members["recipient"].pk) < before
    after = spendable(world.members["recipient"].pk)
    # The same form sent again acts once.
    assert staff.post(page, body).status_code == 302
    assert bought() == 1 and spendable(world.members["recipient"].pk) == after


@pytest.mark.parametrize(
    ("change", "field", "status"),
    [
        ({"amount": "-1"}, "amount", 422),
        ({"amount": "0"}, "amount", 422),
        ({"amount": "1000000000"}, "amount", 422),
        ({"amount": "八十"}, "amount", 422),
        ({"amount": "600"}, "amount", 409),  # more than the fund holds
        ({"provider": ""}, "provider", 422),
        ({"provider": "王师傅 13912345678"}, "provider", 422),  # the action's refusal: no personal numbers
        ({"occurred_on": "2099-01-01"}, "occurred_on", 422),
        ({"org_id": "abc"}, "org_id", 422),
        ({"org_id": "other_bank"}, "org_id", 422),
        ({"org_id": "next_community"}, "org_id", 422),
        ({"note": ""}, "note", 422),  # unfillable needs its reason
        ({"unfillable": ""}, "unfillable", 409),  # not overdue yet, and not marked unfillable
    ],
)
def test_bad_purchases_are_refused_next_to_the_field_and_write_nothing(
    world: World, unfilled: Order, change: dict[str, Any], field: str, status: int
) -> None:
    if change.get("org_id") == "other_bank":
        change = {"org_id": world.other_community.pk}
    if change.get("org_id") == "next_community":
        change = {"org_id": world.community2.pk}
    if change.get("unfillable") == "":
        change = {"unfillable": ""}
        body = buy_form(unfilled, "k" * 32)
        del body["unfillable"]
    else:
        body = buy_form(unfilled, "k" * 32, **change)
    staff = web_client(world.users["staff"])
    page = f"/funds/orders/{unfilled.pk}/buy-service/"
    before = spendable(world.members["recipient"].pk)
    resp = staff.post(page, body)
    assert resp.status_code == status, resp.status_code
    assert error_next_to(resp.content.decode(), field), resp.content.decode()[:3000]
    unfilled.refresh_from_db()
    assert unfilled.state == "requested" and bought() == 0
    assert spendable(world.members["recipient"].pk) == before
    assert staff.post(page, buy_form(unfilled, "k" * 32)).status_code == 302 and bought() == 1


@pytest.mark.parametrize("persona", ["staff_next", "other_bank_staff", "other_bank_admin", "operator", "volunteer"])
def test_who_is_not_staff_of_the_orders_subtree_may_not_buy_its_service(
    world: World, unfilled: Order, persona: str
) -> None:
    client = web_client(world.users[persona])
    page = f"/funds/orders/{unfilled.pk}/buy-service/"
    assert client.get(page).status_code in (403, 404)
    assert client.post(page, buy_form(unfilled, "z" * 32)).status_code in (403, 404)
    assert bought() == 0
    if persona == "operator":
        assert page not in client.get(f"/staff/orders/{unfilled.pk}/").content.decode()


def test_an_order_not_paid_from_stored_time_is_not_offered(world: World, item: ServiceItem) -> None:
    order = new_order(world, item, dispatched=False)  # paid by the subsidy
    staff = web_client(world.users["staff"])
    page = f"/funds/orders/{order.pk}/buy-service/"
    assert page not in staff.get(f"/staff/orders/{order.pk}/").content.decode()
    resp = staff.post(page, buy_form(order, "s" * 32))
    assert resp.status_code == 409 and "未能办理" in resp.content.decode()
    assert bought() == 0
