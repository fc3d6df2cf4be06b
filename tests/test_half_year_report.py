"""The half-year report for the 民政局: its figures equal counts taken straight from the database, it refuses bad
half-years and other banks' admins, and the page links the two downloads."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum
from django.utils import timezone
from openpyxl import load_workbook

from tests.conftest import World, web_client
from tests.test_orders import items as items
from tests.test_orders import run_loop
from tests.test_paper_mode import pdf_text
from timebank.catalogue.models import ServiceItem
from timebank.funds.actions import EntryInput, do_record_entry
from timebank.ledger import actions as ledger
from timebank.ledger.models import Transaction
from timebank.members.models import Certificate, Member, MemberStatus
from timebank.orders.models import Order, ServiceRecord
from timebank.orders.records import do_service_record
from timebank.reports.halfyear import current_half_year, parse_half_year

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def busy(world: World, items: dict[str, ServiceItem]) -> World:
    Certificate.objects.create(member=world.members["volunteer"], kind="counselling", issuer="协会")
    ledger.do_adjustment(None, member=world.members["recipient"], minutes=600, bucket="reserve", reason="开户")
    run_loop(world, items["cleaning"], 120)  # paid from the recipient's time: one 存 and one 取
    run_loop(world, items["counselling"], 60, payer="subsidy")  # a deposit (60 × 3)
    do_service_record(
        None,
        volunteer=world.members["neighbour"],
        service_item=items["repair"],
        minutes=30,
        served_at=timezone.now(),
        idempotency_key="hy1",
    )  # 泥沟村
    ledger.do_withdrawal(None, member=world.members["recipient"], minutes=45, memo="上门理发")
    today = timezone.localdate()
    for org, direction, extra, amount in (
        (world.community, "income", {"source": "government"}, "1000.00"),
        (world.community2, "expense", {"kind": "insurance"}, "250.50"),
    ):
        do_record_entry(None, org, EntryInput(direction=direction, amount=amount, occurred_on=today, **extra))
    return world


def sheet(content: bytes) -> dict[str, list[Any]]:
    """The workbook's rows keyed by their first cell (the first time it appears)."""
    ws = load_workbook(io.BytesIO(content), read_only=True).active
    assert ws is not None
    found: dict[str, list[Any]] = {}
    for row in ws.iter_rows(values_only=True):
        if row and row[0] is not None:
            found.setdefault(str(row[0]), list(row[1:]))
    return found


def minutes(hours_text: Any) -> Decimal:
    return Decimal(str(hours_text))


def test_xlsx_figures_equal_counts_from_the_database(busy: World) -> None:
    w = busy
    half = current_half_year().code
    start, end = parse_half_year(half).start, parse_half_year(half).end
    resp = w.api("head_office_admin").get("/api/v1/reports/half-year.xlsx", {"org_id": w.bank.pk, "half_year": half})
    assert resp.status_code == 200, resp.content
    assert resp["Content-Type"] == XLSX
    rows = sheet(resp.content)
    active = Member.objects.filter(bank=w.bank, status=MemberStatus.ACTIVE)
    assert rows["会员（现在）"][0] == active.count() == 4
    assert rows["志愿者（现在）"][0] == active.filter(is_volunteer=True).count() == 2
    assert rows["服务对象（现在）"][0] == active.filter(is_recipient=True).count() == 1
    assert rows["本期新加入的会员"][0] == active.filter(created_at__date__gte=start, created_at__date__lte=end).count()
    orders = Order.objects.filter(bank=w.bank, confirmed_at__isnull=False)
    records = ServiceRecord.objects.filter(bank=w.bank)
    assert rows["完成的服务（次）"][0] == orders.count() + records.count() == 3
    actual = (orders.aggregate(s=Sum("actual_minutes"))["s"] or 0) + (records.aggregate(s=Sum("minutes"))["s"] or 0)
    assert minutes(rows["服务时长（小时，实际）"][0]) == round(Decimal(actual) / 60, 1) == Decimal("3.5")
    # Services by category and tier, each counted straight from the orders and service records.
    expected: dict[tuple[str, str], int] = {}
    for item_id in [
        *orders.values_list("service_item_id", flat=True),
        *records.values_list("service_item_id", flat=True),
    ]:
        item = ServiceItem.objects.get(pk=item_id)
        key = (str(item.get_category_display()), str(item.get_tier_display()))
        expected[key] = expected.get(key, 0) + 1
    table = load_rows(resp.content)
    start_row = next(i for i, r in enumerate(table) if r and r[0] == "各类服务（按等级）") + 2
    got = {}
    for r in table[start_row:]:
        if not r or r[0] is None:
            break
        got[(r[0], r[1])] = r[2]
    assert got == expected and len(got) == 3
    # 存取次数: deposits = transactions crediting a volunteer for service, withdrawals = a member spending.
    tx = Transaction.objects.filter(bank=w.bank)
    deposits = tx.filter(kind__in=["deposit", "service_record", "service_redemption"])
    withdrawals = tx.filter(kind__in=["withdrawal", "service_redemption", "goods_redemption"])
    assert (
        rows["存入（服务所得）"][:2]
        == [deposits.count(), deposits.aggregate(s=Sum("minutes"))["s"]]
        == [3, 120 + 180 + 60]
    )
    assert rows["支取（兑换服务和物品）"][:2] == [withdrawals.count(), withdrawals.aggregate(s=Sum("minutes"))["s"]]
    assert rows["支取（兑换服务和物品）"][:2] == [2, 120 + 45]
    assert rows["存取次数合计"][0] == 5
    # Funds: the fund book's income and expense of the subtree in the half-year.
    assert rows["收入（现金）"][0] == "1000.00"
    assert rows["支出"][0] == "250.50"
    assert rows["期末结余"][0] == "749.50"
    assert "欠会员的时间（小时）" in rows
    # Aggregates only: no member's name appears anywhere.
    text = " ".join(str(v) for r in load_rows(resp.content) for v in r if v is not None)
    for m in Member.objects.all():
        assert m.name not in text


def load_rows(content: bytes) -> list[tuple[Any, ...]]:
    ws = load_workbook(io.BytesIO(content), read_only=True).active
    assert ws is not None
    return [tuple(r) for r in ws.iter_rows(values_only=True)]


def test_a_branch_counts_its_own_subtree(busy: World) -> None:
    """泥沟镇 holds the service record only (the orders and the withdrawal are 顺河社区's); its fund book's expense."""
    half = current_half_year().code
    rows = sheet(
        busy.api("head_office_admin")
        .get("/api/v1/reports/half-year.xlsx", {"org_id": busy.branch2.pk, "half_year": half})
        .content
    )
    assert rows["完成的服务（次）"][0] == 1
    assert rows["存入（服务所得）"][:2] == [1, 60]
    assert rows["支取（兑换服务和物品）"][:2] == [0, 0]
    assert rows["支出"][0] == "250.50" and rows["收入（现金）"][0] == "0.00"
    # A past half-year counts none of today's services.
    today = timezone.localdate()
    past = f"{today.year - 1}-H{1 if today.month <= 6 else 2}"
    rows = sheet(
        busy.api("head_office_admin")
        .get("/api/v1/reports/half-year.xlsx", {"org_id": busy.bank.pk, "half_year": past})
        .content
    )
    assert rows["完成的服务（次）"][0] == 0 and rows["存取次数合计"][0] == 0
    assert rows["会员（现在）"][0] == 4


def test_pdf_is_a_pdf_with_the_bank_name(busy: World) -> None:
    half = current_half_year().code
    resp = busy.api("branch_admin").get("/api/v1/reports/half-year.pdf", {"org_id": busy.branch.pk, "half_year": half})
    assert resp.status_code == 200
    assert resp["Content-Type"] == "application/pdf"
    assert resp.content.startswith(b"%PDF-") and b"%%EOF" in resp.content[-32:]
    text = pdf_text(resp.content).replace(" ", "").replace("\n", "")
    assert "台儿庄区时间银行" in text and "运河街道时间银行运行情况" in text and "存取次数合计" in text


@pytest.mark.parametrize(
    "bad", ["2026-H3", "2026H1", "26-H1", "1999-H1", "2026-h1", "", "2026-H1; drop", "９９９９-H1"]
)
def test_bad_half_years_are_refused(world: World, bad: str) -> None:
    api = world.api("head_office_admin")
    for ext in ("xlsx", "pdf"):
        resp = api.get(f"/api/v1/reports/half-year.{ext}", {"org_id": world.bank.pk, "half_year": bad})
        assert resp.status_code in (400, 422), (bad, resp.status_code)
    page = web_client(world.users["head_office_admin"]).get(
        f"/manage/half-year/{world.bank.pk}/report.xlsx", {"half_year": bad}
    )
    assert page.status_code in (400, 422)


@pytest.mark.parametrize("persona", ["other_bank_admin", "other_bank_staff", "staff_next", "volunteer", "operator"])
def test_outside_the_subtree_is_refused(world: World, persona: str) -> None:
    half = current_half_year().code
    for ext in ("xlsx", "pdf"):
        resp = world.api(persona).get(
            f"/api/v1/reports/half-year.{ext}", {"org_id": world.community.pk, "half_year": half}
        )
        assert resp.status_code == 403, (persona, ext)
        page = web_client(world.users[persona]).get(
            f"/manage/half-year/{world.community.pk}/report.{ext}", {"half_year": half}
        )
        assert page.status_code == 403, (persona, ext)
    assert world.api("anonymous").get("/api/v1/reports/half-year.pdf", {"half_year": half}).status_code == 401


def test_page_picks_a_half_year_and_links_both_downloads(busy: World) -> None:
    client = web_client(busy.users["branch_admin"])
    overview = client.get(f"/manage/dashboard/{busy.branch.pk}/")
    assert f"/manage/half-year/{busy.branch.pk}/" in overview.content.decode()
    page = client.get(f"/manage/half-year/{busy.branch.pk}/", {"half_year": "2025-H1"})
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="half_year"' in html and "2025 年上半年" in html
    for ext in ("xlsx", "pdf"):
        link = f"/manage/half-year/{busy.branch.pk}/report.{ext}?half_year=2025-H1"
        assert link in html
        got = client.get(link)
        assert got.status_code == 200 and got["Content-Disposition"].endswith(f'2025-H1.{ext}"')
    assert client.get(f"/manage/half-year/{busy.bank.pk}/").status_code == 403  # above the branch admin
    assert dt.date(2025, 6, 30) == parse_half_year("2025-H1").end
