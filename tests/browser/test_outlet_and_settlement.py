"""Goods for time, in a real browser: the head office settles, a volunteer redeems goods on a 360 px phone and shows
the voucher, and the outlet's staff check it by typing its code and hand the goods over; a second hand-over (from
a page left open at another counter) is refused. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.utils import timezone

from tests.browser.conftest import DESKTOP, PHONE, Visitor
from tests.conftest import World
from timebank.goods.actions import do_create_goods
from timebank.goods.models import Goods, Redemption
from timebank.ledger.actions import do_adjustment
from timebank.ledger.models import Account, Settlement
from timebank.ledger.settlement import run_settlement, start_settlement

pytestmark = pytest.mark.django_db(transaction=True)


def goods_minutes(world: World) -> int:
    return Account.objects.get(member=world.members["volunteer"], kind="goods").balance_minutes


def test_settle_redeem_on_a_phone_and_hand_over_at_the_outlet(world: World, visit: Any) -> None:
    rice = do_create_goods(None, outlet=world.outlet, name="大米 5 斤", price_minutes=60, stock=3)
    do_adjustment(None, member=world.members["volunteer"], minutes=240, bucket="earned", reason="送餐服务")

    # The head office settles up to today: half of the 4 hours becomes time for goods.
    admin = visit(DESKTOP)
    admin.login("head_office_admin")
    admin.page.get_by_role("link", name="管理").first.click()
    admin.page.get_by_role("link", name=re.compile("^结算")).click()
    admin.page.get_by_label("结算截止日期").fill(timezone.localdate().isoformat())
    admin.page.get_by_role("button", name="预览结算").click()  # the preview first: 1 member, 240 minutes
    admin.page.get_by_role("heading", name=re.compile("^预览：结算到")).wait_for()
    admin.page.get_by_role("button", name=re.compile("^确认结算到")).click()
    admin.page.get_by_role("heading", name="结算完成").wait_for()
    admin.page.get_by_role("link", name="下载结算报表（Excel）").wait_for()
    admin.shot("settlement-1280-done")
    assert Settlement.objects.get(head_office=world.bank).members == 1
    assert goods_minutes(world) == 120

    # The volunteer redeems on their phone and shows the voucher.
    volunteer = visit(PHONE)
    volunteer.login("volunteer")
    volunteer.open_menu().get_by_role("link", name="换物品").click()
    volunteer.page.get_by_text("2 小时", exact=True).wait_for()
    assert volunteer.fits_width()
    volunteer.shot("goods-360-choose")
    volunteer.page.get_by_role("radio", name=re.compile("大米 5 斤")).check()
    volunteer.page.get_by_role("button", name="确认兑换").click()
    volunteer.page.get_by_text("换好了").wait_for()
    qr = volunteer.page.locator("svg.qr-code")
    qr.wait_for()
    box = qr.bounding_box()
    assert box is not None and box["width"] >= 200  # large enough to scan from a phone screen
    assert volunteer.fits_width()
    volunteer.shot("voucher-360")
    code = volunteer.page.locator(".voucher-code").inner_text().strip()
    redemption = Redemption.objects.get()
    assert code.replace(" ", "") == redemption.voucher_code

    # Staff at the outlet type the code (as read out), check it and hand the goods over.
    staff = visit(PHONE)
    staff.login("staff")
    staff.open_menu().get_by_role("link", name="管理").click()
    staff.page.get_by_role("link", name=re.compile("^网点柜台")).click()
    staff.page.get_by_label("兑换码").fill(code)
    staff.page.get_by_role("button", name="查看兑换券").click()
    staff.page.get_by_text("可以领取").wait_for()
    staff.page.get_by_text("大米 5 斤 × 1").wait_for()
    assert staff.fits_width()
    staff.shot("outlet-360-voucher")
    # Another counter has the same voucher open.
    other = Visitor(staff.page.context.new_page(), staff.base, staff.errors)
    other.go(staff.page.url.removeprefix(staff.base))
    other.page.get_by_role("button", name="交付物品").wait_for()
    staff.page.get_by_role("button", name="交付物品").click()
    staff.page.get_by_text("已交付").wait_for()
    staff.page.get_by_text("已经用过").first.wait_for()
    assert staff.page.get_by_role("button", name="交付物品").count() == 0
    staff.shot("outlet-360-handed-over")
    other.page.get_by_role("button", name="交付物品").click()
    other.page.get_by_text("不能交付").wait_for()
    other.page.get_by_text("这张兑换券已经用过了").wait_for()
    assert other.fits_width()
    other.shot("outlet-360-second-hand-over-refused")

    redemption.refresh_from_db()
    assert redemption.status == "handed_over"
    assert Goods.objects.get(pk=rice.pk).stock == 2
    assert goods_minutes(world) == 60
    # The volunteer's voucher now says it was collected.
    volunteer.page.reload()
    volunteer.page.get_by_text("已经领过了").wait_for()
    assert volunteer.page.locator("svg.qr-code").count() == 0
    assert admin.errors == [] and volunteer.errors == [] and staff.errors == []


def test_the_management_pages_fit_a_phone(world: World, visit: Any) -> None:
    from timebank.catalogue.actions import do_create_service_item
    from timebank.funds.actions import EntryInput, do_record_entry
    from timebank.safety.actions import do_create_training

    do_create_goods(None, outlet=world.outlet, name="洗衣液", price_minutes=90, stock=12)
    do_create_service_item(None, head_office=world.bank, name="家电维修", category="mutual_care", tier="technical")
    do_record_entry(
        world.users["staff"],
        world.community,
        EntryInput(direction="income", amount="1280.50", occurred_on=timezone.localdate(), source="enterprise"),
    )
    training = do_create_training(
        world.users["staff"], org=world.community, title="急救培训", held_on=timezone.localdate(), kind="first_aid"
    )
    c, o, b = world.community.pk, world.outlet.pk, world.bank.pk
    pages = {
        "staff": [
            ("manage", "/manage/"),
            ("counter", f"/outlet/{o}/"),
            ("redeem", f"/outlet/{o}/redeem/?q=王"),
            ("funds", f"/funds/{c}/"),
            ("insurance", "/safety/"),
            ("certificates", "/safety/certificates/"),
            ("trainings", "/safety/trainings/"),
            ("training", f"/safety/trainings/{training.pk}/"),
            ("menu", f"/menu/{c}/"),
            ("rules-read", f"/bank/{b}/rules/"),
        ],
        "head_office_admin": [
            ("rules-edit", f"/bank/{b}/rules/"),
            ("settlements", f"/bank/{b}/settlements/"),
            ("catalogue", f"/bank/{b}/catalogue/"),
        ],
        "volunteer": [("my-vouchers", "/me/vouchers/")],
    }
    # A settlement still running: its page follows the progress by itself (htmx polling) until it is done.
    do_adjustment(None, member=world.members["volunteer"], minutes=90, bucket="earned", reason="服务")
    settlement, _already = start_settlement(world.users["head_office_admin"], world.bank, timezone.localdate())
    watcher = visit(PHONE)
    watcher.login("head_office_admin")
    watcher.go(f"/bank/{b}/settlements/{settlement.pk}/")
    watcher.page.get_by_role("heading", name="正在结算").wait_for()
    watcher.shot("settlement-360-running")
    with watcher.page.expect_response(re.compile(r"/progress/$")):
        pass  # one poll came back while still running...
    assert watcher.page.evaluate("document.activeElement.closest('#settlement-progress') === null")  # ...and kept focus
    run_settlement(settlement)
    watcher.page.get_by_role("heading", name="结算完成").wait_for()
    watcher.page.get_by_role("link", name="下载结算报表（Excel）").wait_for()
    assert watcher.fits_width()
    watcher.shot("settlement-360-done")
    crowded = []
    for persona, urls in pages.items():
        phone = visit(PHONE)
        phone.login(persona)
        for name, url in urls:
            phone.go(url)
            phone.page.locator("h1").wait_for()
            if not phone.fits_width():
                crowded.append(url)
            phone.shot(f"{name}-360")
        assert phone.errors == [], persona
    assert crowded == []
    desk = visit(DESKTOP)
    desk.login("staff")
    for name, url in (("counter", f"/outlet/{o}/"), ("funds", f"/funds/{c}/")):
        desk.go(url)
        desk.shot(f"{name}-1280")
    assert desk.errors == []
