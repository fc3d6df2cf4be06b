"""The pages as people use them, in a real browser: a volunteer on a 360 px phone, a relative ordering in three
taps, large text that stays on, and the English switch. Each test leaves screenshots in test-artifacts/."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, PHONE
from tests.conftest import World
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.ledger.actions import do_adjustment
from timebank.ledger.models import Account
from timebank.orders import actions as order_actions
from timebank.orders.models import Order, OrderState

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def items(world: World) -> dict[str, ServiceItem]:
    make = lambda name, tier: do_create_service_item(  # noqa: E731
        None, head_office=world.bank, name=name, category="mutual_care", tier=tier
    )
    do_adjustment(None, member=world.members["recipient"], minutes=600, bucket="reserve", reason="开户")
    return {
        "meals": make("送餐上门", "ordinary"),
        "cleaning": make("家庭保洁", "ordinary"),
        "repair": make("家电维修", "technical"),
    }


def test_a_volunteer_on_a_phone_takes_and_completes_an_order(
    world: World, items: dict[str, ServiceItem], visit: Any
) -> None:
    import datetime as dt

    from django.utils import timezone

    order = order_actions.do_create_order(
        world.users["staff"],
        recipient=world.members["recipient"],
        service_item=items["meals"],
        # Within the hour, so the volunteer who takes it may check in at once (checkin_early_minutes 60).
        scheduled_start=timezone.now() + dt.timedelta(minutes=30),
        planned_minutes=60,
        payer="subsidy",
        channel="hotline",
        urgent=True,
    )
    v = visit(PHONE)
    v.login("volunteer")
    v.page.get_by_role("link", name="服务任务").first.click()
    v.page.wait_for_url("**/volunteer/")
    card = v.page.locator(f"#order-{order.pk}")
    assert v.fits_width()
    v.shot("volunteer-360-pool")
    card.get_by_role("button", name="我来接这一单").click()
    card.get_by_role("button", name="我到了，开始服务（签到）").click()
    card.get_by_role("button", name="服务结束（签退）").click()
    code_box = card.get_by_label("老人告诉您的确认码")
    code_box.fill("000000" if order.code != "000000" else "111111")
    card.get_by_role("button", name="提交确认码").click()
    card.get_by_text("确认码不对").wait_for()
    assert v.fits_width()
    v.shot("volunteer-360-wrong-code")
    order.refresh_from_db()
    card.get_by_label("老人告诉您的确认码").fill(order.code)
    card.get_by_role("button", name="提交确认码").click()
    card.get_by_text("确认好了").wait_for()
    v.shot("volunteer-360-confirmed")
    order.refresh_from_db()
    assert order.state == OrderState.CONFIRMED
    earned = Account.objects.get(member=world.members["volunteer"], kind="earned").balance_minutes
    assert earned == order.credited_minutes
    v.open_menu().get_by_role("link", name="我的时间").click()
    v.page.get_by_text("1 小时 = 1 个时间币。").wait_for()
    assert v.fits_width()
    v.shot("volunteer-360-my-time")
    assert v.errors == []


def test_a_relative_orders_in_three_taps_and_confirms_with_the_code(
    world: World, items: dict[str, ServiceItem], visit: Any
) -> None:
    relative = visit(PHONE)
    relative.login("relative")
    relative.shot("relative-360-home")
    taps = 0
    relative.page.get_by_role("link", name=re.compile("^家庭保洁")).click()
    taps += 1
    relative.page.locator("ul.tiles a.tile").first.click()
    taps += 1
    relative.shot("relative-360-confirm")
    assert relative.fits_width()
    relative.page.get_by_role("button", name="确认点单").click()
    taps += 1
    relative.page.get_by_text("点好了").wait_for()
    assert taps <= 3
    order = Order.objects.get()
    assert (order.recipient_id, order.payer, order.service_item_id) == (
        world.members["recipient"].pk,
        "recipient",
        items["cleaning"].pk,
    )
    # The community dispatches; on the day, the volunteer serves (their own pages are tested above).
    from django.utils import timezone

    Order.objects.filter(pk=order.pk).update(scheduled_start=timezone.now())
    order_actions.do_dispatch(world.users["staff"], order, world.members["volunteer"])
    for step in (order_actions.do_accept, order_actions.do_check_in, order_actions.do_check_out):
        step(world.users["volunteer"], order)
    relative.page.reload()
    code = relative.page.locator(".code-box").inner_text().strip()
    assert re.fullmatch(r"\d{6}", code)
    relative.shot("relative-360-code")
    volunteer = visit(PHONE)
    volunteer.login("volunteer")
    volunteer.go("/volunteer/")
    volunteer.page.get_by_label("老人告诉您的确认码").fill(code)
    volunteer.page.get_by_role("button", name="提交确认码").click()
    volunteer.page.get_by_text("确认好了").wait_for()
    relative.page.reload()
    relative.page.get_by_label("5 分：非常满意").check()
    relative.page.get_by_label("说几句（可以不填）").fill("来得很准时")
    relative.page.get_by_role("button", name="提交评价").click()
    relative.page.get_by_text("谢谢您的评价").wait_for()
    relative.shot("relative-360-reviewed")
    order.refresh_from_db()
    assert (order.state, order.rating) == (OrderState.REVIEWED, 5)
    assert relative.errors == [] and volunteer.errors == []


def test_large_text_stays_on_across_pages(world: World, items: dict[str, ServiceItem], visit: Any) -> None:
    v = visit(PHONE)
    v.login("recipient")
    normal = v.page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    v.open_menu().get_by_role("button", name=re.compile("大字模式")).click()
    v.page.wait_for_selector("html.large-text")
    large = v.page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    assert large >= normal * 1.2
    for link in ("我的服务订单", "我的时间", "关于时间银行"):
        v.open_menu()  # on a phone the sections are behind 菜单
        v.page.get_by_role("link", name=link).first.click()
        v.page.wait_for_load_state()
        assert v.page.locator("html").get_attribute("class") == "large-text", link
        assert v.fits_width(), link
    v.go("/")
    assert v.open_menu().get_by_role("button", name=re.compile("大字模式")).get_attribute("aria-pressed") == "true"
    v.shot("large-text-360-home")
    v.page.get_by_role("button", name=re.compile("大字模式")).click()
    v.page.wait_for_selector("html:not(.large-text)")
    assert v.errors == []


def test_the_english_switch(world: World, items: dict[str, ServiceItem], visit: Any) -> None:
    v = visit(DESKTOP)
    v.go("/")
    assert v.page.locator("html").get_attribute("lang") == "zh-hans"
    v.shot("about-1280-zh")
    v.page.get_by_role("button", name="English").click()
    v.page.get_by_role("heading", name="What is the time bank").wait_for()
    assert v.page.locator("html").get_attribute("lang") == "en"
    v.page.get_by_role("link", name="Log in").first.click()
    v.page.get_by_label("Username").fill("staff")
    v.page.get_by_label("Password").fill("pass-word-1")
    v.page.locator("main").get_by_role("button", name="Log in").click()
    v.page.get_by_role("heading", name="Workbench").wait_for()
    v.page.locator("nav.site-nav").get_by_role("link", name="Orders", exact=True).click()
    v.page.get_by_role("heading", name="Orders", exact=True).wait_for()
    v.shot("staff-1280-orders-en")
    v.page.get_by_role("button", name="中文").click()
    v.page.get_by_role("heading", name="订单", exact=True).wait_for()
    phone = visit(PHONE, locale="en-GB")
    phone.go("/join/")
    phone.page.get_by_role("heading", name="Join the time bank").wait_for()
    assert phone.fits_width()
    phone.shot("join-360-en")
    assert v.errors == [] and phone.errors == []
