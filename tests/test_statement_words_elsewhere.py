"""Issue 14, "Words from the member's side", beyond 我的时间: the staff's view of a member's statement, the statement
downloads (.xlsx, PDF) and the member's copy of their own data say what happened to the member (服务他人, 转赠给…,
收到…的转赠), show one total with its parts explained, and dates with the year where it is not this year's; the
outlet keeps voucher codes grouped 4+4."""

from __future__ import annotations

import datetime as dt
import io
import re
from unittest import mock

import openpyxl
from django.utils import timezone

from tests.conftest import World, web_client
from tests.test_orders import run_loop
from timebank.catalogue.actions import do_create_service_item
from timebank.goods import actions as goods_actions
from timebank.ledger import actions as ledger
from timebank.web.templatetags.web import dated


def _story(world: World) -> None:
    """The volunteer serves the recipient, paid from the recipient's stored time; the relative gives time."""
    item = do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="ordinary"
    )
    ledger.do_adjustment(None, member=world.members["recipient"], minutes=600, bucket="reserve", reason="开户")
    run_loop(world, item, 60)  # one service_redemption for both sides: 兑换服务 is the bank's word
    ledger.do_adjustment(None, member=world.members["relative"], minutes=60, bucket="reserve", reason="开户")
    ledger.do_transfer(
        None, from_member=world.members["relative"], to_member=world.members["recipient"], minutes=30, kind="relative"
    )


def _rows(html: str) -> list[str]:
    """The staff statement's "what happened" cells, newest first."""
    body = html[html.index('<table class="staff-statement">') :]
    return [
        re.sub(r"\s+", " ", m).strip() for m in re.findall(r'<td><a href="/staff/transactions/\d+/">(.*?)</a>', body)
    ]


def test_the_staff_statement_says_what_happened_to_the_member(world: World) -> None:
    _story(world)
    staff = web_client(world.users["staff"])
    volunteer = _rows(staff.get(f"/staff/members/{world.members['volunteer'].pk}/statement/").content.decode())
    recipient = _rows(staff.get(f"/staff/members/{world.members['recipient'].pk}/statement/").content.decode())
    relative_page = f"/staff/members/{world.members['relative'].pk}/statement/"  # 泥沟村, the next community
    relative = _rows(web_client(world.users["staff_next"]).get(relative_page).content.decode())
    assert volunteer and volunteer[0] == "服务他人"
    assert "兑换服务" not in volunteer  # the volunteer earned: never the recipient's word
    assert recipient[:2] == ["收到李小明的转赠", "兑换服务"] and recipient[-1] == "工作人员补记"
    assert relative[0] == "转赠给李大爷"


def test_the_staff_statement_shows_one_total_with_its_parts_explained(world: World) -> None:
    member = world.members["volunteer"]
    for bucket, minutes in (("earned", 120), ("goods", 60), ("reserve", 30)):
        ledger.do_adjustment(None, member=member, minutes=minutes, bucket=bucket, reason="开户")
    html = web_client(world.users["staff"]).get(f"/staff/members/{member.pk}/statement/").content.decode()
    assert re.search(r'class="total"><span>时间一共</span><span class="amount">3 小时 30 分钟</span>', html)
    total = html[html.index('class="total"') :]
    assert "是下面三部分加起来" in total[:300]
    for words in ("最近服务存入的时间", "可以到服务网点换生活用品", "存着，将来您或家人需要上门服务时用"):
        assert words in html
    assert re.search(
        r'class="spendable"><span>可以用来换上门服务的</span><span class="amount">2 小时 30 分钟</span>', html
    )
    assert "是“待结算”和“储存”两部分加起来" in html and "为什么两个数不一样" in html
    assert "合计" not in html  # the one total, not a second unexplained one


def test_the_staff_statement_dates_show_the_year_only_where_it_is_not_this_years(world: World) -> None:
    member = world.members["volunteer"]
    last_year = timezone.localtime().replace(year=timezone.localdate().year - 1, month=4, day=5, hour=9, minute=0)
    with mock.patch("django.utils.timezone.now", return_value=last_year):
        ledger.do_adjustment(None, member=member, minutes=30, bucket="reserve", reason="纸质账本")
    ledger.do_adjustment(None, member=member, minutes=60, bucket="reserve", reason="开户")
    html = web_client(world.users["staff"]).get(f"/staff/members/{member.pk}/statement/").content.decode()
    assert f"<td>{last_year.year}年4月5日 星期" in html and " 09:00</td>" in html
    assert "<td>今天 " in html  # this year's: no year, and today is 今天
    assert not re.search(r"<td>\d{4}-\d{2}-\d{2}", html)


def test_the_statement_xlsx_says_what_happened_and_explains_the_total(world: World) -> None:
    _story(world)
    for who, expect in (("recipient", ["收到李小明的转赠", "兑换服务", "工作人员补记"]), ("volunteer", ["服务他人"])):
        member = world.members[who]
        resp = web_client(world.users["staff"]).get(f"/exports/members/{member.pk}/statement.xlsx")
        assert resp.status_code == 200
        ws = openpyxl.load_workbook(io.BytesIO(b"".join(resp.streaming_content))).active  # type: ignore[attr-defined]
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        assert rows[0][:2] == ["时间", "发生了什么"]
        blank = rows.index([None] * len(rows[0])) if [None] * len(rows[0]) in rows else rows.index([])
        lines, closing = rows[1:blank], rows[blank + 1 :]
        assert sorted(r[1] for r in lines) == sorted(expect)  # oldest first in the file: compare as sets
        assert "兑换服务" not in [r[1] for r in lines] or who == "recipient"
        assert closing[0][:3] == ["现在的余额", "分钟", "是什么"]
        total = closing[1]
        assert total[0] == "我的时间一共" and total[2] == "是下面三部分加起来。"
        parts = {r[0]: r[1] for r in closing[2:5]}
        assert total[1] == sum(parts.values()) and set(parts) == {"待结算", "可兑换物品", "储存"}
        spendable = closing[5]
        assert spendable[0] == "可以用来换上门服务的" and spendable[1] == parts["待结算"] + parts["储存"]
        assert "为什么两个数不一样" in closing[6][0]


def test_the_member_can_download_their_statement_as_xlsx_too(world: World) -> None:
    _story(world)
    member = world.members["relative"]
    resp = web_client(world.users["relative"]).get(f"/exports/members/{member.pk}/statement.xlsx")
    ws = openpyxl.load_workbook(io.BytesIO(b"".join(resp.streaming_content))).active  # type: ignore[attr-defined]
    assert "转赠给李大爷" in [r[1] for r in ws.iter_rows(values_only=True)]


def test_the_statement_pdf_and_personal_data_copy_still_render(world: World) -> None:
    _story(world)
    pdf = web_client(world.users["recipient"]).get("/exports/me/statement.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    mine = world.api("recipient").get("/api/v1/me/data.pdf")
    assert mine.status_code == 200 and mine.content.startswith(b"%PDF")


def test_my_data_copy_says_what_happened_and_explains_the_total(world: World) -> None:
    _story(world)
    data = world.api("relative").get("/api/v1/me/data").json()
    words = [line["words"] for line in data["statement"]]
    assert words[0] == "转赠给李大爷" and words[-1] == "工作人员补记"
    assert data["statement"][0]["kind"] == "transfer"  # the bank's name stays for machines
    balance = data["balance"]
    assert balance["total_minutes"] == sum(p["minutes"] for p in balance["parts"]) == 30
    assert balance["total_words"] == "我的时间一共: 是下面三部分加起来。"
    assert [p["label"] for p in balance["parts"]] == ["待结算", "可兑换物品", "储存"]
    assert all(p["words"] for p in balance["parts"])
    assert "为什么两个数不一样" in balance["spendable_words"]
    volunteer = world.api("volunteer").get("/api/v1/me/data").json()
    assert [line["words"] for line in volunteer["statement"]] == ["服务他人"]


def test_a_download_always_dates_with_the_year() -> None:
    now = timezone.localtime()
    assert dated(now, always_year=True).startswith(f"{now.year}年")
    assert not dated(now).startswith(f"{now.year}年") and "今天" not in dated(now)
    assert dated(now - dt.timedelta(days=400)).startswith(f"{(now - dt.timedelta(days=400)).year}年")


def test_the_outlet_keeps_the_voucher_code_grouped_4_and_4_after_a_redemption_and_a_hand_over(world: World) -> None:
    member = world.members["volunteer"]
    ledger.do_adjustment(None, member=member, minutes=600, bucket="goods", reason="开户")
    goods = goods_actions.do_create_goods(None, outlet=world.outlet, name="肥皂", price_minutes=10, stock=5)
    r, _replayed = goods_actions.do_redeem(
        None, member=member, goods=goods, quantity=1, outlet=world.outlet, idempotency_key="g1"
    )
    grouped = f"{r.voucher_code[:4]} {r.voucher_code[4:]}"
    staff = web_client(world.users["staff"])
    page = staff.get("/outlet/voucher/", {"code": r.voucher_code}).content.decode()
    assert f'<span class="voucher-code">{grouped}</span>' in page
    handed = staff.post(f"/outlet/voucher/{r.voucher_code}/hand-over/")
    assert handed.status_code == 302 and handed["Location"].endswith(f"?code={r.voucher_code[:4]}+{r.voucher_code[4:]}")
    after = staff.get(handed["Location"]).content.decode()
    assert f'value="{grouped}"' in after and "交付完成" in after
    again = staff.post(f"/outlet/voucher/{r.voucher_code}/hand-over/")
    assert again.status_code == 409 and f'value="{grouped}"' in again.content.decode()


def test_the_staff_today_page_dates_overdue_orders_with_the_year_where_it_is_not_this_years(world: World) -> None:
    from timebank.orders.actions import do_create_order
    from timebank.orders.models import Order

    item = do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="ordinary"
    )
    noon = dt.datetime.combine(timezone.localdate(), dt.time(12), tzinfo=timezone.get_current_timezone())
    late = do_create_order(
        None,
        recipient=world.members["recipient"],
        service_item=item,
        scheduled_start=noon,
        planned_minutes=30,
        payer="subsidy",
        channel="staff",
    )
    last_year = timezone.localtime().replace(year=timezone.localdate().year - 1, month=12, day=30, hour=8, minute=5)
    Order.objects.filter(pk=late.pk).update(created_at=last_year)
    html = web_client(world.users["staff"]).get(f"/manage/today/{world.community.pk}/").content.decode()
    overdue = html[html.index('id="overdue"') :]
    row = overdue[overdue.index(f'href="/staff/orders/{late.pk}/"') :]
    row = row[: row.index("</tr>")]
    assert f">{last_year.year}年12月30日 星期" in row and " 08:05</a>" in row
    assert "<td>今天 12:00</td>" in row
