"""The whole loop, every role, all by clicking in the real pages (ISSUE 6):

a volunteer registers on the public join page and the community's staff approve them (in English) → a relative
orders a service for their old father in three taps → staff dispatch to the new volunteer from the ranked
candidates → the volunteer accepts, checks in and out on a 360 px phone → the relative reads the confirmation
code to the volunteer, who types it, and rates the service → the head office runs the settlement → the volunteer
redeems goods and gets a voucher → the outlet types the code and hands the goods over.

A screenshot of every step goes to test-artifacts/whole-loop-*.png."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import timezone

from tests.browser.conftest import DESKTOP, PHONE
from tests.conftest import World
from timebank.catalogue.actions import do_create_service_item
from timebank.goods.actions import do_create_goods
from timebank.goods.models import Goods, Redemption
from timebank.ledger.actions import do_adjustment
from timebank.ledger.models import Account, Settlement
from timebank.members.models import Member, MemberStatus
from timebank.orders.models import Order, OrderState

pytestmark = pytest.mark.django_db(transaction=True)

NEW_VOLUNTEER = "孙志强"


def balance(member: Member, bucket: str) -> int:
    return Account.objects.get(member=member, kind=bucket).balance_minutes


def test_the_whole_loop_by_every_role(world: World, visit: Any) -> None:
    # What the head office and the community set up beforehand: the catalogue, goods at the outlet, and
    # opening time on the old man's account (brought over from the paper ledger).
    item = do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="technical"
    )
    rice = do_create_goods(None, outlet=world.outlet, name="大米 5 斤", price_minutes=60, stock=5)
    do_adjustment(None, member=world.members["recipient"], minutes=600, bucket="reserve", reason="开户")
    shot = 0

    def step(who: Any, name: str) -> None:
        nonlocal shot
        shot += 1
        assert who.fits_width(), name
        who.shot(f"whole-loop-{shot:02d}-{name}")

    # 1. A younger senior registers as a volunteer on the public join page, on a phone.
    joiner = visit(PHONE)
    joiner.go("/")
    joiner.open_menu().locator("nav").get_by_role("link", name="注册加入").click()
    joiner.page.get_by_label("您住在哪个社区").select_option(label="运河街道 · 顺河社区")
    joiner.page.get_by_label("姓名").fill(NEW_VOLUNTEER)
    joiner.page.get_by_label("手机号码").fill("13912345678")
    joiner.page.get_by_label("我想当志愿者，帮助别人").check()
    joiner.page.get_by_label("用户名").fill("sunzq")
    joiner.page.locator("#id_password1").fill("sun-pass-word-1")
    joiner.page.get_by_label("再输一次密码").fill("sun-pass-word-1")
    step(joiner, "join-form")
    joiner.page.get_by_role("button", name="提交注册").click()
    joiner.page.get_by_text("注册好了").wait_for()
    joiner.page.get_by_text("正在审核").first.wait_for()
    step(joiner, "joined-pending")
    new = Member.objects.get(name=NEW_VOLUNTEER)
    assert (new.status, new.is_volunteer, new.home_org_id) == (MemberStatus.PENDING, True, world.community.pk)

    # 2. The community's staff approve the registration: this step in English, by the language switch.
    staff = visit(DESKTOP)
    staff.login("staff")
    staff.page.get_by_role("button", name="English").click()
    staff.page.get_by_role("heading", name="Workbench").wait_for()
    assert staff.page.locator("html").get_attribute("lang") == "en"
    staff.page.get_by_role("link", name=re.compile("Members to approve")).click()
    staff.page.get_by_role("button", name=f"Approve {NEW_VOLUNTEER}").click()
    staff.page.locator(f"#member-{new.pk}").get_by_text("Active").wait_for()
    step(staff, "staff-approves-en")
    new.refresh_from_db()
    assert new.status == MemberStatus.ACTIVE
    staff.page.get_by_role("button", name="中文").click()
    staff.page.get_by_role("heading", name="会员").wait_for()

    # 3. The relative (a son living in another village) orders cleaning for his father: three taps from home.
    relative = visit(PHONE)
    relative.login("relative")
    step(relative, "relative-home")
    taps = 0
    relative.page.get_by_role("link", name=re.compile("^家庭保洁")).click()
    taps += 1
    relative.page.locator("ul.tiles a.tile").first.click()
    taps += 1
    step(relative, "relative-confirm-order")
    relative.page.get_by_role("button", name="确认点单").click()
    taps += 1
    relative.page.get_by_text("点好了").wait_for()
    assert taps <= 3
    step(relative, "relative-ordered")
    order = Order.objects.get()
    assert (order.recipient_id, order.service_item_id, order.state) == (
        world.members["recipient"].pk,
        item.pk,
        OrderState.REQUESTED,
    )

    # 4. Staff dispatch it from the ranked candidates, to the newly approved volunteer.
    staff.go("/staff/")
    staff.page.get_by_role("link", name=re.compile("等待派单")).click()
    staff.page.get_by_role("link", name=re.compile(f"#{order.pk} 家庭保洁")).click()
    candidates = staff.page.get_by_role("radio")
    assert candidates.count() >= 2  # the new volunteer and 王秀英, each with a score and reasons
    staff.page.get_by_role("radio", name=re.compile(f"^{NEW_VOLUNTEER} · 匹配")).check()
    step(staff, "staff-candidates")
    staff.page.get_by_role("button", name="派单", exact=True).click()
    staff.page.get_by_text(f"已派给 {NEW_VOLUNTEER}").wait_for()
    step(staff, "staff-dispatched")
    order.refresh_from_db()
    assert (order.state, order.volunteer_id) == (OrderState.DISPATCHED, new.pk)

    # 5. The day has come (check-in opens an hour before the start). The volunteer, on a 360 px phone: accept,
    #    check in on arrival, check out when done.
    Order.objects.filter(pk=order.pk).update(scheduled_start=timezone.now())
    volunteer = visit(PHONE)
    volunteer.login("sunzq", "sun-pass-word-1")
    volunteer.page.get_by_role("link", name="服务任务").first.click()
    card = volunteer.page.locator(f"#order-{order.pk}")
    step(volunteer, "volunteer-dispatched")
    card.get_by_role("button", name="能去，接单").click()
    card.get_by_role("button", name="我到了，开始服务（签到）").click()
    step(volunteer, "volunteer-in-service")
    card.get_by_role("button", name="服务结束（签退）").click()
    card.get_by_label("老人告诉您的确认码").wait_for()
    step(volunteer, "volunteer-checked-out")
    order.refresh_from_db()
    assert order.state == OrderState.COMPLETED

    # 6. The relative sees the confirmation code, tells it to the volunteer, who types it; then he rates.
    relative.go("/")
    relative.page.get_by_role("link", name="服务结束了，请确认").first.click()
    code = relative.page.locator(".code-box").inner_text().strip()
    assert re.fullmatch(r"\d{6}", code)
    step(relative, "relative-sees-code")
    card.get_by_label("老人告诉您的确认码").fill(code)
    card.get_by_role("button", name="提交确认码").click()
    card.get_by_text("确认好了").wait_for()
    step(volunteer, "volunteer-confirmed")
    relative.page.reload()
    relative.page.get_by_label("5 分：非常满意").check()
    relative.page.get_by_label("说几句（可以不填）").fill("打扫得很干净")
    relative.page.get_by_role("button", name="提交评价").click()
    relative.page.get_by_text("谢谢您的评价").wait_for()
    step(relative, "relative-rated")
    order.refresh_from_db()
    assert (order.state, order.rating) == (OrderState.REVIEWED, 5)
    credited = order.credited_minutes
    assert credited is not None and credited > 0
    assert balance(new, "earned") == credited

    # 7. The head office runs the settlement on its management page: half becomes time for goods.
    admin = visit(DESKTOP)
    admin.login("head_office_admin")
    admin.page.get_by_role("link", name="管理").first.click()
    admin.page.get_by_role("link", name=re.compile("^结算")).click()
    admin.page.get_by_label("结算截止日期").fill(timezone.localdate().isoformat())
    step(admin, "admin-settlement-form")
    admin.page.get_by_role("button", name="预览结算").click()  # what it would move, then the confirmation
    admin.page.get_by_role("button", name=re.compile("^确认结算到")).click()
    admin.page.get_by_role("heading", name="结算完成").wait_for()
    step(admin, "admin-settled")
    assert Settlement.objects.get(head_office=world.bank).members >= 1
    goods_minutes = balance(new, "goods")
    assert goods_minutes == credited // 2 and balance(new, "earned") == 0

    # 8. The volunteer redeems goods on the phone and shows the voucher. Give him enough to afford the rice if
    # the short service earned less than an hour (the check-in and check-out were seconds apart).
    if goods_minutes < rice.price_minutes:
        do_adjustment(None, member=new, minutes=rice.price_minutes, bucket="goods", reason="活动奖励")
    volunteer.go("/")
    volunteer.page.get_by_role("link", name="结算完成通知").wait_for()  # the settlement told everyone
    volunteer.open_menu().get_by_role("link", name="换物品").click()
    volunteer.page.get_by_role("radio", name=re.compile("大米 5 斤")).check()
    step(volunteer, "volunteer-goods")
    volunteer.page.get_by_role("button", name="确认兑换").click()
    volunteer.page.get_by_text("换好了").wait_for()
    volunteer.page.locator("svg.qr-code").wait_for()
    step(volunteer, "volunteer-voucher")
    voucher = volunteer.page.locator(".voucher-code").inner_text().strip()
    redemption = Redemption.objects.get()
    assert voucher.replace(" ", "") == redemption.voucher_code

    # 9. At the outlet, staff type the code read out from the phone, check it and hand the rice over.
    counter = visit(PHONE)
    counter.login("staff")
    counter.open_menu().get_by_role("link", name="管理").click()
    counter.page.get_by_role("link", name=re.compile("^网点柜台")).click()
    counter.page.get_by_label("兑换码").fill(voucher)
    counter.page.get_by_role("button", name="查看兑换券").click()
    counter.page.get_by_text("可以领取").wait_for()
    step(counter, "outlet-voucher")
    counter.page.get_by_role("button", name="交付物品").click()
    counter.page.get_by_text("已交付").wait_for()
    step(counter, "outlet-handed-over")
    redemption.refresh_from_db()
    assert redemption.status == "handed_over"
    assert Goods.objects.get(pk=rice.pk).stock == 4

    for who in (joiner, staff, relative, volunteer, admin, counter):
        assert who.errors == []
