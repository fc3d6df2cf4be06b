"""Issue 13: service records done on paper, opening balances (adjustments) and reversals from the staff pages.

Each page is reached by clicking from the staff home, asks the access function of its endpoint and calls its
action: staff of the member's home subtree may, staff of another community, operators, members and visitors
may not. Bad input is refused next to its field and writes nothing; a double submit of the same form acts once;
a credit above the bank's approval threshold waits until a second person approves it on /staff/approvals/.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from tests.conftest import World, make_member, web_client
from tests.test_trust_08_races import postgres_only
from timebank.approvals.models import Approval, ApprovalState
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.goods import actions as goods
from timebank.ledger import actions as ledger
from timebank.ledger.models import Account, Transaction
from timebank.orders.models import ServiceRecord

RECORD_PAGE = "/staff/service-records/new/"
ADJUST_PAGE = "/staff/adjustments/new/"


def earned(member_id: int) -> int:
    return Account.objects.get(member_id=member_id, kind="earned").balance_minutes


def written() -> tuple[int, int, int]:
    return Transaction.objects.count(), ServiceRecord.objects.count(), Approval.objects.count()


def form_key(html: str) -> str:
    found = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', html)
    assert found, "the form carries its key"
    return found.group(1)


def click(client: Client, page: str, href: str) -> str:
    """GET `page`, check it links to `href`, follow the link: the linked page's HTML."""
    resp = client.get(page)
    assert resp.status_code == 200
    assert f'href="{href}"' in resp.content.decode(), f"{page} links to {href}"
    followed = client.get(href)
    assert followed.status_code == 200, followed.content.decode()[:500]
    return followed.content.decode()


@pytest.fixture
def item(world: World) -> ServiceItem:
    return do_create_service_item(None, head_office=world.bank, name="清洁日", category="environment", tier="ordinary")


def record_form(world: World, item: ServiceItem, key: str, **changes: Any) -> dict[str, Any]:
    served = timezone.localtime(timezone.now() - dt.timedelta(hours=3))
    return {
        "idempotency_key": key,
        "volunteer_id": world.members["volunteer"].pk,
        "service_item_id": item.pk,
        "minutes": 90,
        "served_at": served.strftime("%Y-%m-%dT%H:%M"),
        "recipient_id": "",
        "memo": "社区清洁日（纸质签到表）",
        **changes,
    }


# Service records ---------------------------------------------------------------------------------------------


def test_staff_record_a_paper_service_by_clicking_from_the_home(world: World, item: ServiceItem) -> None:
    staff = web_client(world.users["staff"])
    volunteer = world.members["volunteer"]
    click(staff, "/staff/", RECORD_PAGE)
    # Find the volunteer by name, then pick them.
    found = staff.get(RECORD_PAGE, {"q": "王秀"}).content.decode()
    assert f'href="?volunteer_id={volunteer.pk}"' in found and "王秀英" in found
    # The recipient (not a volunteer) is not offered.
    assert "李大爷" not in staff.get(RECORD_PAGE, {"q": "李"}).content.decode()
    picked = staff.get(RECORD_PAGE, {"volunteer_id": volunteer.pk}).content.decode()
    assert f'name="volunteer_id" value="{volunteer.pk}"' in picked
    body = record_form(world, item, form_key(picked), recipient_id=world.members["recipient"].pk)
    resp = staff.post(RECORD_PAGE, body, follow=True)
    assert resp.status_code == 200
    rec = ServiceRecord.objects.get()
    assert (rec.volunteer_id, rec.minutes, rec.recipient_id, rec.created_by_id) == (
        volunteer.pk,
        90,
        world.members["recipient"].pk,
        world.users["staff"].pk,
    )
    assert earned(volunteer.pk) == rec.credited_minutes == 90
    # It lands on the record's transaction page, which says so.
    assert resp.redirect_chain[-1][0] == f"/staff/transactions/{rec.transaction_id}/"
    assert "服务记录已入账" in resp.content.decode()
    # The same form sent again (a double click, a resend) acts once and shows the same result.
    again = staff.post(RECORD_PAGE, body)
    assert again.status_code == 302 and again["Location"] == f"/staff/transactions/{rec.transaction_id}/"
    assert ServiceRecord.objects.count() == 1 and earned(volunteer.pk) == 90


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"minutes": -30}, "minutes"),
        ({"minutes": 0}, "minutes"),
        ({"minutes": 1441}, "minutes"),
        ({"minutes": 10**15}, "minutes"),
        ({"minutes": "一小时"}, "minutes"),
        ({"served_at": "2099-01-01T09:00"}, "served_at"),
        ({"served_at": "昨天"}, "served_at"),
        ({"service_item_id": "other_bank"}, "service_item_id"),
        ({"recipient_id": "other_bank"}, "recipient_id"),
        ({"recipient_id": 99_999_999}, "recipient_id"),
        ({"memo": "长" * 501}, "memo"),
    ],
)
def test_bad_service_records_are_refused_next_to_the_field_and_write_nothing(
    world: World, item: ServiceItem, change: dict[str, Any], field: str
) -> None:
    if change.get("service_item_id") == "other_bank":
        change = {
            "service_item_id": do_create_service_item(
                None, head_office=world.other_bank, name="外行项目", category="environment", tier="ordinary"
            ).pk
        }
    if change.get("recipient_id") == "other_bank":
        change = {"recipient_id": world.members["stranger"].pk}
    staff = web_client(world.users["staff"])
    before = written()
    resp = staff.post(RECORD_PAGE, record_form(world, item, "k" * 32, **change))
    assert resp.status_code in (404, 422), resp.status_code
    html = resp.content.decode()
    assert f'id="id_{field}_error_1"' in html, html[:3000]
    assert written() == before and earned(world.members["volunteer"].pk) == 0
    # The key was given back: the corrected form goes through.
    fixed = staff.post(RECORD_PAGE, record_form(world, item, "k" * 32))
    assert fixed.status_code == 302 and ServiceRecord.objects.count() == 1


@pytest.mark.parametrize("persona", ["staff_next", "other_bank_staff", "other_bank_admin"])
def test_staff_outside_the_volunteers_subtree_are_refused_next_to_the_field(
    world: World, item: ServiceItem, persona: str
) -> None:
    before = written()
    resp = web_client(world.users[persona]).post(RECORD_PAGE, record_form(world, item, "x" * 32))
    assert resp.status_code == 403
    assert 'id="id_volunteer_id_error_1"' in resp.content.decode()
    assert written() == before
    # Nor are they offered the volunteer when they search.
    found = web_client(world.users[persona]).get(RECORD_PAGE, {"q": "王秀英"}).content.decode()
    assert f"?volunteer_id={world.members['volunteer'].pk}" not in found
    # Nor can they open the form picked for them.
    assert (
        web_client(world.users[persona]).get(RECORD_PAGE, {"volunteer_id": world.members["volunteer"].pk}).status_code
        == 403
    )


@pytest.mark.parametrize("persona", ["operator", "assessor", "volunteer", "recipient", "relative", "stranger"])
def test_who_may_not_record_service_is_refused(world: World, item: ServiceItem, persona: str) -> None:
    client = web_client(world.users[persona])
    assert client.get(RECORD_PAGE).status_code == 403
    assert client.post(RECORD_PAGE, record_form(world, item, "y" * 32)).status_code == 403
    assert client.get(ADJUST_PAGE).status_code == 403
    assert ServiceRecord.objects.count() == 0
    if persona in ("operator", "assessor"):
        assert RECORD_PAGE not in client.get("/staff/").content.decode()


def test_a_visitor_is_sent_to_the_login(world: World, item: ServiceItem) -> None:
    for url in (RECORD_PAGE, ADJUST_PAGE):
        resp = Client().get(url)
        assert resp.status_code == 302 and resp["Location"].startswith("/login/")
    assert Client().post(RECORD_PAGE, record_form(world, item, "z" * 32)).status_code == 302
    assert ServiceRecord.objects.count() == 0


def test_a_record_above_the_threshold_waits_for_a_second_admin_who_approves_it(world: World, item: ServiceItem) -> None:
    staff = web_client(world.users["staff"])
    volunteer = world.members["volunteer"]
    picked = staff.get(RECORD_PAGE, {"volunteer_id": volunteer.pk}).content.decode()
    body = record_form(world, item, form_key(picked), minutes=720)  # the bank's threshold is 600
    resp = staff.post(RECORD_PAGE, body, follow=True)
    assert resp.redirect_chain[-1][0] == "/staff/approvals/"
    html = resp.content.decode()
    assert "等待另一位工作人员审核" in html and "这是您提交的，需要另一位工作人员审核。" in html
    approval = Approval.objects.get()
    assert approval.state == ApprovalState.PENDING and approval.minutes == 720
    assert ServiceRecord.objects.count() == 0 and earned(volunteer.pk) == 0
    # A double submit opens no second approval.
    assert staff.post(RECORD_PAGE, body).status_code == 302 and Approval.objects.count() == 1
    # The maker may not approve it.
    staff.post(f"/staff/approvals/{approval.pk}/approve/")
    assert Approval.objects.get().state == ApprovalState.PENDING
    # A second person, the branch admin, clicks from their home to the approvals page and approves.
    admin = web_client(world.users["branch_admin"])
    waiting = click(admin, "/staff/", "/staff/approvals/")
    assert f"/staff/approvals/{approval.pk}/approve/" in waiting
    done = admin.post(f"/staff/approvals/{approval.pk}/approve/", follow=True)
    assert done.status_code == 200
    assert Approval.objects.get().state == ApprovalState.APPROVED
    rec = ServiceRecord.objects.get()
    assert rec.minutes == 720 and earned(volunteer.pk) == 720


# Adjustments -----------------------------------------------------------------------------------------------


def adjust_form(world: World, key: str, **changes: Any) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "member_id": world.members["recipient"].pk,
        "minutes": 300,
        "bucket": "reserve",
        "reason": "纸质台账原有时间转入",
        **changes,
    }


def test_staff_bring_an_opening_balance_over_by_clicking_from_the_home(world: World) -> None:
    staff = web_client(world.users["staff"])
    recipient = world.members["recipient"]
    click(staff, "/staff/", ADJUST_PAGE)
    found = staff.get(ADJUST_PAGE, {"q": "李大"}).content.decode()
    assert f'href="?member_id={recipient.pk}"' in found
    picked = staff.get(ADJUST_PAGE, {"member_id": recipient.pk}).content.decode()
    body = adjust_form(world, form_key(picked))
    resp = staff.post(ADJUST_PAGE, body, follow=True)
    assert resp.status_code == 200 and "已入账" in resp.content.decode()
    tx = Transaction.objects.get(kind="adjustment")
    assert resp.redirect_chain[-1][0] == f"/staff/transactions/{tx.pk}/"
    assert Account.objects.get(member=recipient, kind="reserve").balance_minutes == 300
    again = staff.post(ADJUST_PAGE, body)
    assert again.status_code == 302 and Transaction.objects.filter(kind="adjustment").count() == 1


@pytest.mark.parametrize(
    ("change", "field", "status"),
    [
        ({"minutes": 0}, "minutes", 422),
        ({"minutes": 10**12}, "minutes", 422),
        ({"minutes": -10}, "minutes", 409),  # below the balance floor
        ({"minutes": "许多"}, "minutes", 422),
        ({"reason": "   "}, "reason", 422),
        ({"bucket": "issuance"}, "bucket", 422),
        ({"member_id": "stranger"}, "member_id", 403),
        ({"member_id": 99_999_999}, "member_id", 404),
    ],
)
def test_bad_adjustments_are_refused_next_to_the_field_and_write_nothing(
    world: World, change: dict[str, Any], field: str, status: int
) -> None:
    if change.get("member_id") == "stranger":
        change = {"member_id": world.members["stranger"].pk}
    staff = web_client(world.users["staff"])
    before = written()
    resp = staff.post(ADJUST_PAGE, adjust_form(world, "a" * 32, **change))
    assert resp.status_code == status
    html = resp.content.decode()
    if status == 409:
        assert "调整后余额将低于下限" in html
    else:
        assert f'id="id_{field}_error_1"' in html
    assert written() == before


def test_an_adjustment_from_another_community_is_refused(world: World) -> None:
    resp = web_client(world.users["staff_next"]).post(ADJUST_PAGE, adjust_form(world, "b" * 32))
    assert resp.status_code == 403 and 'id="id_member_id_error_1"' in resp.content.decode()
    assert Transaction.objects.filter(kind="adjustment").count() == 0


def test_a_large_opening_balance_waits_for_a_second_person(world: World) -> None:
    staff = web_client(world.users["staff"])
    resp = staff.post(ADJUST_PAGE, adjust_form(world, "c" * 32, minutes=5000), follow=True)
    assert resp.redirect_chain[-1][0] == "/staff/approvals/" and "等待另一位工作人员审核" in resp.content.decode()
    approval = Approval.objects.get()
    assert Transaction.objects.filter(kind="adjustment").count() == 0
    web_client(world.users["head_office_admin"]).post(f"/staff/approvals/{approval.pk}/approve/")
    assert Account.objects.get(member=world.members["recipient"], kind="reserve").balance_minutes == 5000


# Reversals -------------------------------------------------------------------------------------------------


def test_staff_reverse_a_transaction_from_the_members_statement(world: World) -> None:
    recipient = world.members["recipient"]
    tx, _ = ledger.post_adjustment(None, member=recipient, minutes=200, bucket="reserve", reason="记错了")
    staff = web_client(world.users["staff"])
    members = click(staff, "/staff/", "/staff/members/")
    assert f'href="/staff/members/{recipient.pk}/statement/"' in members
    statement = click(staff, "/staff/members/", f"/staff/members/{recipient.pk}/statement/")
    assert f'href="/staff/transactions/{tx.pk}/"' in statement
    page = click(staff, f"/staff/members/{recipient.pk}/statement/", f"/staff/transactions/{tx.pk}/")
    assert f'action="/staff/transactions/{tx.pk}/reverse/"' in page
    body = {"idempotency_key": form_key(page), "reason": "录入时多记了"}
    resp = staff.post(f"/staff/transactions/{tx.pk}/reverse/", body, follow=True)
    reversal = Transaction.objects.get(reverses=tx)
    assert resp.redirect_chain[-1][0] == f"/staff/transactions/{reversal.pk}/"
    assert reversal.memo == "录入时多记了" and reversal.actor_id == world.users["staff"].pk
    assert Account.objects.get(member=recipient, kind="reserve").balance_minutes == 0
    # The same form again acts once; a new form says it was reversed already (409), with the reason.
    assert staff.post(f"/staff/transactions/{tx.pk}/reverse/", body).status_code == 302
    assert Transaction.objects.filter(kind="reversal").count() == 1
    fresh = {"idempotency_key": "d" * 32, "reason": "再冲一次"}
    refused = staff.post(f"/staff/transactions/{tx.pk}/reverse/", fresh)
    assert refused.status_code == 409 and "这笔交易已经冲正过了" in refused.content.decode()
    # No reverse button on a reversed transaction nor on the reversal.
    assert "/reverse/" not in staff.get(f"/staff/transactions/{tx.pk}/").content.decode()
    assert "/reverse/" not in staff.get(f"/staff/transactions/{reversal.pk}/").content.decode()


def test_a_reversal_without_a_reason_is_refused_next_to_the_field(world: World) -> None:
    tx, _ = ledger.post_adjustment(
        None, member=world.members["recipient"], minutes=200, bucket="reserve", reason="开户"
    )
    resp = web_client(world.users["staff"]).post(
        f"/staff/transactions/{tx.pk}/reverse/", {"idempotency_key": "e" * 32, "reason": " "}
    )
    assert resp.status_code == 422 and 'id="id_reason_error_1"' in resp.content.decode()
    assert Transaction.objects.filter(kind="reversal").count() == 0


def test_a_handed_over_voucher_is_not_reversed_and_the_page_says_why(world: World) -> None:
    volunteer = world.members["volunteer"]
    ledger.do_adjustment(None, member=volunteer, minutes=300, bucket="goods", reason="开户")
    rice = goods.do_create_goods(None, outlet=world.outlet, name="大米 5 斤", price_minutes=120, stock=3)
    r = (
        world.api("volunteer")
        .post(
            "/api/v1/goods/redemptions",
            {
                "member_id": volunteer.pk,
                "goods_id": rice.pk,
                "quantity": 1,
                "outlet_id": world.outlet.pk,
                "idempotency_key": "r1",
            },
        )
        .json()
    )
    assert world.api("staff").post(f"/api/v1/vouchers/{r['voucher_code']}/hand-over").status_code == 200
    before = Transaction.objects.count()
    resp = web_client(world.users["staff"]).post(
        f"/staff/transactions/{r['transaction_id']}/reverse/", {"idempotency_key": "f" * 32, "reason": "兑错了"}
    )
    assert resp.status_code == 409
    html = resp.content.decode()
    assert 'class="form-errors"' in html and "物品已经交给会员，不能冲正这笔兑换。" in html
    assert Transaction.objects.count() == before


@pytest.mark.parametrize(
    ("persona", "read", "reverse"),
    [
        ("staff", 200, 302),
        ("branch_admin", 200, 302),
        ("head_office_admin", 200, 302),
        ("operator", 200, 403),  # reads (the API's GET), may not reverse
        ("staff_next", 403, 403),
        ("other_bank_staff", 403, 403),
        ("other_bank_admin", 403, 403),
        ("assessor", 403, 403),
        ("volunteer", 403, 403),
        ("recipient", 403, 403),
    ],
)
def test_who_may_read_and_reverse_a_transaction(world: World, persona: str, read: int, reverse: int) -> None:
    tx, _ = ledger.post_adjustment(
        None, member=world.members["recipient"], minutes=200, bucket="reserve", reason="开户"
    )
    client = web_client(world.users[persona])
    page = client.get(f"/staff/transactions/{tx.pk}/")
    assert page.status_code == read
    if read == 200:
        assert ("/reverse/" in page.content.decode()) == (reverse == 302)
    resp = client.post(f"/staff/transactions/{tx.pk}/reverse/", {"idempotency_key": "g" * 32, "reason": "冲正"})
    assert resp.status_code == reverse
    assert Transaction.objects.filter(kind="reversal").count() == (1 if reverse == 302 else 0)
    statement = client.get(f"/staff/members/{world.members['recipient'].pk}/statement/")
    assert statement.status_code == (200 if read == 200 else 403)


def test_a_member_with_no_login_on_another_community_is_out_of_reach(world: World) -> None:
    """A paper member of 泥沟村 (no login): staff of 顺河社区 cannot credit them."""
    paper = make_member(world.community2, "孙纸质", roles=["volunteer"])
    resp = web_client(world.users["staff"]).post(ADJUST_PAGE, adjust_form(world, "h" * 32, member_id=paper.pk))
    assert resp.status_code == 403 and earned(paper.pk) == 0


# At once, on PostgreSQL -------------------------------------------------------------------------------------


def post_at_once(posts: list[tuple[Client, str, dict[str, Any]]]) -> list[int]:
    """Send the posts all at once (each thread its own connection): their statuses."""
    barrier = threading.Barrier(len(posts))
    statuses: list[int] = [0] * len(posts)

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


@postgres_only
def test_a_double_click_at_once_records_once_and_two_staff_reversing_at_once_reverse_once(world: World) -> None:
    item = do_create_service_item(None, head_office=world.bank, name="清洁日", category="environment", tier="ordinary")
    staff = web_client(world.users["staff"])
    body = record_form(world, item, "p" * 32)
    staff_again = web_client(world.users["staff"])
    assert post_at_once([(staff, RECORD_PAGE, body), (staff_again, RECORD_PAGE, body)]) == [302, 302]
    assert ServiceRecord.objects.count() == 1 and earned(world.members["volunteer"].pk) == 90

    tx, _ = ledger.post_adjustment(
        None, member=world.members["recipient"], minutes=200, bucket="reserve", reason="开户"
    )
    url = f"/staff/transactions/{tx.pk}/reverse/"
    answers = post_at_once(
        [
            (web_client(world.users["staff"]), url, {"idempotency_key": "q" * 32, "reason": "记错了"}),
            (web_client(world.users["branch_admin"]), url, {"idempotency_key": "r" * 32, "reason": "记错了"}),
        ]
    )
    assert sorted(answers) == [302, 409], answers
    assert Transaction.objects.filter(reverses=tx).count() == 1
