"""A station's day by clicking only, in Chinese, each step by the role who does it (issue 13, "Done when"):

the community's staff register a walk-in member with a login → import a census file (dry run, then confirm) →
the 12349 operator takes a call from an unknown number, registers the old woman (pending) and her need; staff
approve her; the operator orders for the need from the console → and dispatches it to a volunteer without a
login → staff check in and out for him from the paper sign-in sheet → and confirm after the return call →
staff record a paper service record above the approval threshold, the branch admin (a second person) approves
it → the branch admin resets a staff login's password (the person logs in with it and must choose their own) →
the branch admin downloads the half-year report, .xlsx and PDF.

Each step starts from the role's home page and goes on by clicking, filling in forms and choosing a file; the
page is asserted after each step and the database at the end. One thing is not clicked: the clock. Before the
paper steps the order is set back in the database as if dispatched this morning (recorded times may not precede
the dispatch, nor lie in the future). A screenshot of each step (1280 px) goes to test-artifacts/station-day-*.png,
and each step's page, as it stands, is measured at 360 px too. A second test opens every page the walk visits
afresh at 360 x 740 by its role and checks that none scrolls sideways (test-artifacts/station-day-360-*.png)."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from openpyxl import Workbook, load_workbook

from tests.browser.conftest import DESKTOP, PHONE
from tests.conftest import World, make_member, new_id_number
from timebank.approvals.models import Approval, ApprovalState
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.hotline.models import CallLog
from timebank.ledger.models import Account
from timebank.members.actions import MemberInput, do_approve_member, do_register_member
from timebank.members.models import Member, MemberStatus
from timebank.needs.models import CensusImport, Need
from timebank.orders.models import Order, OrderState, ServiceRecord
from timebank.orgs.models import User
from timebank.web.templatetags.web import when

pytestmark = pytest.mark.django_db(transaction=True)

WALK_IN = "孙桂兰"
CALLER = "周奶奶"
CALLER_PHONE = "13911112222"
PAPER_VOLUNTEER = "张纸质"
CENSUS_GOOD = ("钱奶奶", "吴大爷")
CENSUS_BAD = "郑伯伯"
RECORD_MINUTES = 720  # above the bank's approval threshold (600)

# Nothing scrolls sideways: the page's width within the screen's; if not, the elements sticking out (for the report).
WIDER_THAN_SCREEN = """() => {
  if (document.documentElement.scrollWidth <= window.innerWidth) return [];
  const out = [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
    .slice(0, 5).map((e) => e.tagName + "." + e.className + " " + (e.textContent || "").trim().slice(0, 40));
  return ["scrollWidth " + document.documentElement.scrollWidth, ...out];
}"""

# How many lines the text of the first table cell reading `text` takes.
LINES_OF_CELL = """(text) => {
  const cell = [...document.querySelectorAll("main td")].find((td) => td.textContent.trim() === text);
  const range = document.createRange();
  range.selectNodeContents(cell);
  return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
}"""


@pytest.fixture
def items(world: World) -> dict[str, ServiceItem]:
    make = lambda name, category: do_create_service_item(  # noqa: E731
        None, head_office=world.bank, name=name, category=category, tier="ordinary"
    )
    return {"meals": make("送餐上门", "mutual_care"), "clean_up": make("清洁日", "environment")}


@pytest.fixture
def paper_volunteer(world: World) -> Member:
    """A volunteer without a smartphone, so without a login: paper mode is how his orders move."""
    return make_member(world.community, PAPER_VOLUNTEER, roles=["volunteer"])


def census_file(folder: Path) -> Path:
    """What a community gets from the census office: two people to register and one with a mistyped ID number."""
    good = [new_id_number(dt.date(1941, 2, 3)), new_id_number(dt.date(1946, 8, 9))]
    broken = new_id_number()
    broken = broken[:-1] + ("0" if broken[-1] != "0" else "1")  # the checksum no longer matches
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["姓名", "身份证号", "性别", "出生日期", "电话", "住址", "社区", "类别", "需求"])
    sheet.append([CENSUS_GOOD[0], good[0], "女", "", "13800002222", "顺河社区 5 号", "顺河社区", "独居", "需要送餐"])
    sheet.append([CENSUS_GOOD[1], good[1], "男", "", "", "顺河社区 6 号", "顺河社区", "空巢", ""])
    sheet.append([CENSUS_BAD, broken, "男", "", "", "", "顺河社区", "", ""])
    path = folder / "顺河社区普查.xlsx"
    out = io.BytesIO()
    book.save(out)
    path.write_bytes(out.getvalue())
    return path


def minute(moment: dt.datetime) -> str:
    """A time as a datetime-local input takes it (the station's local time)."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def choose(select: Any, text: str) -> None:
    """Pick the option whose text contains `text` (an org's label names its parents too)."""
    value = select.locator("option", has_text=text).first.get_attribute("value")
    select.select_option(value)


def test_a_station_day_by_clicking_only(
    world: World, items: dict[str, ServiceItem], paper_volunteer: Member, visit: Any, tmp_path: Path
) -> None:
    shots = 0

    def step(who: Any, name: str) -> None:
        nonlocal shots
        shots += 1
        assert who.errors == [], (name, who.errors)
        who.shot(f"station-day-{shots:02d}-{name}")
        # The same page, as it is now (form answers too), on a 360 px phone: nothing scrolls sideways.
        who.page.set_viewport_size(PHONE)
        wide = who.page.evaluate(WIDER_THAN_SCREEN)
        who.page.set_viewport_size(DESKTOP)
        assert wide == [], (name, who.page.url, wide)

    # 1. The community's staff register a walk-in old woman with a login (the temporary password shown once).
    staff = visit(DESKTOP)
    staff.login("staff")
    staff.page.get_by_role("heading", name="工作台").wait_for()
    staff.page.get_by_role("link", name=re.compile("^登记新会员")).click()
    form = staff.page.locator("main form.panel")
    choose(form.get_by_label(re.compile("^所在社区")), "顺河社区")
    form.get_by_label(re.compile("^姓名")).fill(WALK_IN)
    form.get_by_label(re.compile("^手机号码")).fill("13912345678")
    form.get_by_label(re.compile("^身份证号")).fill(new_id_number(dt.date(1948, 4, 2)))
    form.get_by_label(re.compile("^出生日期")).fill("1948-04-02")
    form.get_by_label("女", exact=True).check()
    form.get_by_role("textbox", name=re.compile("^住址")).fill("顺河社区 3 号楼")
    form.get_by_label("服务对象", exact=True).check()
    form.get_by_label("独居", exact=True).check()
    form.get_by_label(re.compile("^用户名")).fill("sunguilan")
    form.get_by_label(re.compile("我同意：处理敏感个人信息")).check()
    step(staff, "walk-in-form")
    form.get_by_role("button", name="登记", exact=True).click()
    temporary = staff.page.locator("[data-temporary-password]").inner_text().strip()
    assert re.fullmatch(r"[a-z0-9]+", temporary)
    step(staff, "walk-in-registered")

    # 2. Staff import the census file: the dry run lists what would be written and why a row would not, and
    #    writes nothing; the confirmation writes the good rows.
    staff.page.get_by_role("link", name="工作台").first.click()
    staff.page.get_by_role("link", name=re.compile("^人口普查导入")).click()
    staff.page.get_by_label(re.compile("^普查文件")).set_input_files(census_file(tmp_path))
    choose(staff.page.get_by_label(re.compile("^导入到哪个机构")), "顺河社区")
    staff.page.get_by_role("button", name="上传并检查").click()
    staff.page.get_by_role("heading", name=re.compile("^人口普查导入 #")).wait_for()
    report = staff.page.locator("main table")
    for name in CENSUS_GOOD:
        assert "将导入" in report.locator("tr", has_text=name).inner_text()
    assert "不导入" in report.locator("tr", has_text=CENSUS_BAD).inner_text()
    assert Member.objects.filter(name__in=[*CENSUS_GOOD, CENSUS_BAD]).count() == 0  # a dry run writes nothing
    step(staff, "census-dry-run")
    staff.page.get_by_role("button", name="确认导入").click()
    staff.page.get_by_role("button", name="确认导入").wait_for(state="detached")
    for name in CENSUS_GOOD:
        assert "已写入" in report.locator("tr", has_text=name).inner_text()
    step(staff, "census-confirmed")

    # 3. A call to 12349 from a number nobody has: the operator registers the old woman (pending: an operator's
    #    registration waits for the community's approval) and her need, and logs the call.
    op = visit(DESKTOP)
    op.login("operator")
    op.page.get_by_role("link", name="12349 热线").first.click()
    op.page.wait_for_url("**/hotline/")
    op.page.keyboard.type(CALLER_PHONE)
    # The search runs while typing: wait for the answer to the whole number, not to a part of it.
    new_caller = op.page.locator(f'#hotline-results .notice a[href$="?q={CALLER_PHONE}"]')
    new_caller.wait_for()
    new_caller.click()
    op.page.wait_for_url(f"**/hotline/new/?q={CALLER_PHONE}")
    assert op.page.get_by_label(re.compile("^手机号码")).input_value() == CALLER_PHONE
    choose(op.page.get_by_label(re.compile("^所在社区")), "顺河社区")
    op.page.get_by_label(re.compile("^姓名")).fill(CALLER)
    op.page.get_by_role("textbox", name=re.compile("^住址")).fill("顺河社区 8 号楼")
    op.page.get_by_label("独居", exact=True).check()
    op.page.get_by_label(re.compile("我同意：处理敏感个人信息")).check()
    step(op, "hotline-new-caller")
    op.page.get_by_role("button", name="登记", exact=True).click()
    op.page.locator("#registered").get_by_text("待审核").wait_for()
    op.page.get_by_label("特需").check()
    op.page.locator("#need").get_by_label("送餐上门").check()
    op.page.get_by_label("情况说明").fill("腿脚不便，一个人住，想要每天送午饭")
    op.page.get_by_role("button", name="登记需求").click()
    op.page.locator("#need-done").wait_for()
    assert op.page.locator("#order-waits").is_visible()  # no order before the community approves her
    op.page.get_by_label("通话内容摘要").fill("新来电：周奶奶一个人住，想要送午饭；已登记，等社区审核后下单")
    step(op, "hotline-registered-need")
    op.page.get_by_role("button", name="记录并结束这通电话").click()
    op.page.get_by_text("来电已记录").wait_for()
    caller = Member.objects.get(name=CALLER)
    assert caller.status == MemberStatus.PENDING and caller.phone == CALLER_PHONE
    need = Need.objects.get(recipient=caller)

    # 4. The community's staff approve her, from the workbench's counter.
    staff.page.get_by_role("link", name="工作台").first.click()
    staff.page.get_by_role("link", name=re.compile("待审核会员")).click()
    staff.page.get_by_role("button", name=f"通过审核：{CALLER}").click()
    staff.page.locator(f"#member-{caller.pk}").locator(".message.success").wait_for()
    step(staff, "caller-approved")
    caller.refresh_from_db()
    assert caller.status == MemberStatus.ACTIVE

    # 5. The operator calls her back: finds her by phone, orders meals for the need (in half an hour) and
    #    dispatches it to the volunteer without a login (the paper volunteer).
    op.page.get_by_role("link", name="12349 热线").first.click()
    op.page.wait_for_url("**/hotline/")
    op.page.keyboard.type(CALLER_PHONE)
    op.page.locator("#hotline-results a", has_text=CALLER).click()
    op.page.wait_for_url(f"**/hotline/callers/{caller.pk}/**")
    op.page.get_by_label("服务项目").select_option(label="送餐上门（普通服务）")
    op.page.get_by_label("上门时间").fill(minute(timezone.now() + dt.timedelta(minutes=30)))
    op.page.get_by_label("政府补贴").check()
    choose(op.page.get_by_label(re.compile("^为哪项需求下单")), f"#{need.pk}")
    op.page.get_by_label("想对志愿者说的话").fill("老人腿脚不便，请送到屋里")
    step(op, "hotline-order-form")
    op.page.get_by_role("button", name="下单（渠道：12349 热线）").click()
    op.page.locator("#dispatch").wait_for()
    order = Order.objects.get(recipient=caller)
    op.page.get_by_role("radio", name=re.compile(f"^{PAPER_VOLUNTEER}")).check()
    step(op, "hotline-candidates")
    op.page.get_by_role("button", name="派单", exact=True).click()
    op.page.get_by_text(f"已派给 {PAPER_VOLUNTEER}").first.wait_for()
    op.page.get_by_label("通话内容摘要").fill("回电周奶奶：已下单送午饭，派给张纸质")
    step(op, "hotline-dispatched")
    op.page.get_by_role("button", name="记录并结束这通电话").click()
    op.page.get_by_text("来电已记录").wait_for()
    order.refresh_from_db()
    assert (order.state, order.volunteer, order.channel) == (OrderState.DISPATCHED, paper_volunteer, "hotline")

    # 6. The day of the service. (The clock is not waited for: the order is set back as if dispatched this
    #    morning for an hour ago; the paper steps may not be recorded before the dispatch.)
    now = timezone.now().replace(second=0, microsecond=0)
    Order.objects.filter(pk=order.pk).update(
        dispatched_at=now - dt.timedelta(hours=3), scheduled_start=now - dt.timedelta(hours=1)
    )
    sheet = {
        "accept": ("代为接单", "电话", now - dt.timedelta(minutes=170)),  # he said yes on the phone
        "check-in": ("代为签到", "纸质签到表", now - dt.timedelta(minutes=65)),  # as written on the sheet
        "check-out": ("代为签退", "纸质签到表", now - dt.timedelta(minutes=5)),
    }
    #    Staff open the order from the workbench and enter, for him, what the phone call and the sheet say.
    staff.page.get_by_role("link", name="工作台").first.click()
    staff.page.get_by_role("link", name=re.compile("^订单")).first.click()
    staff.page.get_by_role("link", name=f"#{order.pk} 送餐上门").click()
    for action, (title, source, at) in sheet.items():
        section = staff.page.locator("section", has=staff.page.get_by_role("heading", name=title))
        section.get_by_label(re.compile("^时间")).fill(minute(at))
        section.get_by_label(source, exact=True).check()
        step(staff, f"paper-{action}")
        section.get_by_role("button", name=title).click()
        section.wait_for(state="detached")
    staff.page.get_by_role("heading", name="代为确认").wait_for()
    history = staff.page.locator("main ol").inner_text()
    assert "代为操作（纸质签到表）" in history and "代为操作（电话）" in history

    # 7. After the return call (the old woman says he came and stayed the hour), staff confirm the time.
    confirm = staff.page.locator("section", has=staff.page.get_by_role("heading", name="代为确认"))
    assert confirm.get_by_label(re.compile("^实际服务时长")).input_value() == "60"
    confirm.get_by_role("button", name="确认并记入时间").click()
    staff.page.get_by_role("heading", name="代为确认").wait_for(state="detached")
    staff.page.locator("main .badge.state", has_text="已确认").wait_for()
    facts = staff.page.locator("main dl.facts").inner_text()  # the times written on the sheet, as recorded
    assert when(sheet["check-in"][2]) in facts and when(sheet["check-out"][2]) in facts
    step(staff, "paper-confirmed")
    order.refresh_from_db()
    assert order.state == OrderState.CONFIRMED
    assert (order.accepted_at, order.check_in_at, order.check_out_at) == tuple(at for *_, at in sheet.values())

    # 8. Yesterday's clean-up day was written on paper: 12 hours for the paper volunteer, above the bank's
    #    approval threshold, so it waits for a second person.
    staff.page.get_by_role("link", name="工作台").first.click()
    staff.page.get_by_role("link", name=re.compile("^录入纸质服务记录")).click()
    staff.page.get_by_label("会员姓名或电话").fill(PAPER_VOLUNTEER)
    staff.page.get_by_role("button", name="查找").click()
    staff.page.get_by_role("link", name=PAPER_VOLUNTEER, exact=True).click()
    record = staff.page.locator("main form.panel", has=staff.page.get_by_role("button", name="记入时间"))
    record.get_by_text(f"{PAPER_VOLUNTEER} · 顺河社区").wait_for()
    record.get_by_label(re.compile("^服务项目")).select_option(label="清洁日")
    record.get_by_label(re.compile("^时间（分钟）")).fill(str(RECORD_MINUTES))
    record.get_by_label(re.compile("^开始时间")).fill(minute(timezone.now() - dt.timedelta(hours=13)))
    record.get_by_label(re.compile("^备注")).fill("社区清洁日（纸质签到表）")
    step(staff, "service-record-form")
    record.get_by_role("button", name="记入时间").click()
    staff.page.get_by_text("这是您提交的，需要另一位工作人员审核。").wait_for()
    step(staff, "service-record-waits")
    approval = Approval.objects.get()
    assert approval.state == ApprovalState.PENDING and ServiceRecord.objects.count() == 0

    #    The branch admin, a second person, approves it from the workbench's counter.
    admin = visit(DESKTOP)
    admin.login("branch_admin")
    admin.page.get_by_role("link", name=re.compile("待审核的大额记入")).click()
    admin.page.get_by_role("button", name=f"批准：给 {PAPER_VOLUNTEER} 记入 {RECORD_MINUTES} 分钟").click()
    admin.page.get_by_role("button", name=re.compile("^批准：")).wait_for(state="detached")
    step(admin, "service-record-approved")
    admin.page.get_by_role("link", name="已批准").click()
    admin.page.get_by_text(f"审核：{world.users['branch_admin'].display_name}").wait_for()

    # 9. The branch admin resets the community staff's password: the temporary one is shown once; the person
    #    logs in with it and must choose their own first.
    admin.page.get_by_role("link", name="管理").first.click()
    admin.page.get_by_role("link", name=re.compile("^工作人员账号")).click()
    admin.page.get_by_role("button", name="重置密码：staff", exact=True).click()
    temporary_staff = admin.page.locator("[data-temporary-password]").inner_text().strip()
    step(admin, "staff-password-reset")
    again = visit(DESKTOP)
    again.login("staff", temporary_staff)
    again.page.wait_for_url("**/me/password/**")
    again.page.get_by_label(re.compile("^现在的密码")).fill(temporary_staff)
    again.page.get_by_label(re.compile("^新密码")).fill("shunhe-new-pass-1")
    again.page.get_by_label(re.compile("^再输一次新密码")).fill("shunhe-new-pass-1")
    again.page.locator("main").get_by_role("button").last.click()
    again.page.get_by_text("密码改好了").wait_for()
    step(again, "staff-new-password")

    # 10. The half-year report for the 民政局: from the dashboard, both files download and open.
    admin.page.get_by_role("link", name="管理").first.click()
    admin.page.get_by_role("link", name=re.compile("^数据看板")).click()
    admin.page.get_by_role("link", name="半年报表").click()
    admin.page.get_by_role("heading", name=re.compile("半年报表$")).wait_for()
    step(admin, "half-year-report")
    with admin.page.expect_download() as xlsx_download:
        admin.page.get_by_role("link", name="下载 Excel（.xlsx）").click()
    xlsx = Path(xlsx_download.value.path()).read_bytes()
    assert xlsx.startswith(b"PK")  # a zip, as every .xlsx is
    assert xlsx_download.value.suggested_filename.endswith(".xlsx")
    with admin.page.expect_download() as pdf_download:
        admin.page.get_by_role("link", name="下载 PDF").click()
    assert pdf_download.value.suggested_filename.endswith(".pdf")
    assert Path(pdf_download.value.path()).read_bytes().startswith(b"%PDF-")
    sheet = load_workbook(io.BytesIO(xlsx), read_only=True).active
    assert sheet is not None
    figures = {str(r[0]): r[1:] for r in sheet.iter_rows(values_only=True) if r and r[0] is not None}
    assert figures["完成的服务（次）"][0] == 2  # the hotline order and the paper service record
    assert str(figures["服务时长（小时，实际）"][0]) == "13.0"  # 60 + 720 minutes
    assert list(figures["存入（服务所得）"][:2]) == [2, 60 + RECORD_MINUTES]

    # The database, at the end of the day.
    walk_in = Member.objects.get(name=WALK_IN)
    assert walk_in.status == MemberStatus.ACTIVE and walk_in.home_org == world.community and walk_in.is_recipient
    assert walk_in.user is not None and walk_in.user.username == "sunguilan" and walk_in.user.check_password(temporary)
    imported = CensusImport.objects.get()
    assert imported.status == "confirmed" and imported.org == world.community
    assert set(Member.objects.filter(name__in=CENSUS_GOOD).values_list("name", flat=True)) == set(CENSUS_GOOD)
    assert not Member.objects.filter(name=CENSUS_BAD).exists()
    assert list(need.orders.all()) == [order]
    assert order.volunteer is not None and order.volunteer.user is None  # served by a volunteer without a login
    assert order.actual_minutes == 60
    confirmed = AuditEntry.objects.get(action="order.confirm", object_id=str(order.pk))
    assert confirmed.actor_id == world.users["staff"].pk
    calls = CallLog.objects.filter(member=caller)
    assert calls.count() == 2 and calls.filter(order=order).exists()
    approval.refresh_from_db()
    assert approval.state == ApprovalState.APPROVED
    assert approval.maker_id == world.users["staff"].pk and approval.decided_by_id == world.users["branch_admin"].pk
    service = ServiceRecord.objects.get()
    assert (service.volunteer, service.minutes) == (paper_volunteer, RECORD_MINUTES)
    earned = Account.objects.get(member=paper_volunteer, kind="earned").balance_minutes
    assert earned == (order.credited_minutes or 0) + service.credited_minutes
    staff_login = User.objects.get(username="staff")
    assert staff_login.check_password("shunhe-new-pass-1") and not staff_login.check_password("pass-word-1")
    assert not staff_login.must_change_password


def test_the_pages_of_the_day_fit_a_phone(
    world: World, items: dict[str, ServiceItem], paper_volunteer: Member, visit: Any, tmp_path: Path
) -> None:
    """Every page the walk above visits, opened afresh at 360 x 740 by its role, in the states the walk sees it
    (built here through the API and the actions): none scrolls sideways."""
    staff_api, op_api = world.api("staff"), world.api("operator")
    tabs: dict[str, Any] = {}  # one phone tab per role
    make_member(world.community, WALK_IN, login="sunguilan", roles=["recipient"])
    headers: dict[str, Any] = dict(staff_api.headers)
    with census_file(tmp_path).open("rb") as file:
        form = {"file": file, "org_id": world.community.pk}
        upload = staff_api.client.post("/api/v1/census-imports", form, **headers)
    assert upload.status_code == 201, upload.content
    census_id = upload.json()["id"]
    caller = do_register_member(
        world.users["operator"],
        home_org=world.community,
        data=MemberInput(name=CALLER, phone=CALLER_PHONE, roles=["recipient"], address="顺河社区 8 号楼"),
        approved=False,
    )
    need = op_api.post(
        "/api/v1/needs",
        {"recipient_id": caller.pk, "level": "special", "found_by": "phone_call", "item_ids": [items["meals"].pk]},
    )
    assert need.status_code == 201, need.content
    need_id = need.json()["id"]
    pages: list[tuple[str, str]] = [
        ("staff", "/staff/"),
        ("staff", "/staff/members/new/"),
        ("staff", "/staff/census-imports/"),
        ("staff", f"/staff/census-imports/{census_id}/"),  # the dry run's report
        ("staff", "/staff/members/?status=pending"),
        ("operator", "/hotline/"),
        ("operator", f"/hotline/new/?q={CALLER_PHONE}"),
        ("operator", f"/hotline/new/{caller.pk}/?need={need_id}"),  # registered, pending: the need taken down
    ]
    checked = check_pages(visit, tabs, pages, "before")
    # The census report's names stay on one line (each character had its own line: the table now scrolls inside
    # its frame instead, and only the reasons wrap).
    tabs["staff"].go(f"/staff/census-imports/{census_id}/")
    for text in (CENSUS_GOOD[0], "顺河社区", "将导入"):
        assert tabs["staff"].page.evaluate(LINES_OF_CELL, text) == 1, text

    # The rest of the day, as the walk leaves it after each step.
    assert staff_api.post(f"/api/v1/census-imports/{census_id}/confirm").status_code == 200
    do_approve_member(world.users["staff"], caller)
    start = (timezone.now() + dt.timedelta(minutes=30)).isoformat()
    body = {"recipient_id": caller.pk, "service_item_id": items["meals"].pk, "scheduled_start": start}
    created = op_api.post("/api/v1/orders", {**body, "planned_minutes": 60, "payer": "subsidy", "channel": "hotline"})
    assert created.status_code == 201, created.content
    oid = created.json()["id"]
    assert op_api.post(f"/api/v1/needs/{need_id}/orders", {"order_id": oid}).status_code in (200, 201)
    assert op_api.post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": paper_volunteer.pk}).status_code == 200
    pages = [
        ("staff", f"/staff/census-imports/{census_id}/"),  # confirmed
        ("operator", f"/hotline/callers/{caller.pk}/"),
        ("operator", f"/hotline/callers/{caller.pk}/?order={oid}"),  # the dispatch, done
        ("staff", "/staff/orders/"),
        ("staff", f"/staff/orders/{oid}/"),  # dispatched: 代为接单
    ]
    checked += check_pages(visit, tabs, pages, "dispatched")
    for action in ("accept", "check-in"):
        assert staff_api.post(f"/api/v1/orders/{oid}/{action}", {"source": "paper_sheet"}).status_code == 200
    checked += check_pages(visit, tabs, [("staff", f"/staff/orders/{oid}/")], "in-service")  # 代为签退
    Order.objects.filter(pk=oid).update(check_in_at=timezone.now() - dt.timedelta(minutes=60))
    assert staff_api.post(f"/api/v1/orders/{oid}/check-out", {"source": "paper_sheet"}).status_code == 200
    checked += check_pages(visit, tabs, [("staff", f"/staff/orders/{oid}/")], "completed")  # 代为确认
    assert staff_api.post(f"/api/v1/orders/{oid}/confirm").status_code == 200
    record = {
        "volunteer_id": paper_volunteer.pk,
        "service_item_id": items["clean_up"].pk,
        "minutes": RECORD_MINUTES,
        "served_at": (timezone.now() - dt.timedelta(hours=13)).isoformat(),
        "idempotency_key": "station-day-clean-up",
    }
    assert staff_api.post("/api/v1/service-records", record).status_code == 202  # waits for approval
    pages = [
        ("staff", f"/staff/orders/{oid}/"),  # confirmed
        ("staff", "/staff/service-records/new/?q=张纸质"),
        ("staff", f"/staff/service-records/new/?volunteer_id={paper_volunteer.pk}"),
        ("staff", "/staff/approvals/"),
        ("branch_admin", "/staff/"),
        ("branch_admin", "/staff/approvals/"),
        ("branch_admin", "/manage/"),
        ("branch_admin", "/manage/staff/"),
        ("branch_admin", f"/manage/dashboard/{world.branch.pk}/"),
        ("branch_admin", f"/manage/half-year/{world.branch.pk}/"),
        ("staff", "/me/password/"),
    ]
    checked += check_pages(visit, tabs, pages, "approval")
    assert len(checked) == 26


def check_pages(visit: Any, tabs: dict[str, Any], pages: list[tuple[str, str]], moment: str) -> list[str]:
    """Open each page in a 360 x 740 tab of its role: it must not scroll sideways. A screenshot of each."""
    done = []
    for persona, path in pages:
        if persona not in tabs:
            tabs[persona] = visit(PHONE)
            tabs[persona].login(persona)
        tab = tabs[persona]
        tab.go(path)
        wide = tab.page.evaluate(WIDER_THAN_SCREEN)
        # Named without the ids (they differ from run to run on PostgreSQL): the same page keeps its file.
        slug = re.sub(r"[^a-z]+", "-", re.sub(r"\d+", "n", path.lower())).strip("-") or "home"
        tab.shot(f"station-day-360-{moment}-{persona}-{slug}")
        assert wide == [], (persona, path, wide)
        assert tab.errors == [], (persona, path, tab.errors)
        done.append(path)
    return done
