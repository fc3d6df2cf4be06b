"""The half-year report for the 民政局 (civil affairs bureau): one org subtree, one half-year, as .xlsx and PDF.

Every figure comes from the reports' own functions: the head counts, services and hours from `stats.compute`,
services by category and tier over the same rows (`stats.confirmed_orders`, `stats.posted_records`), the money
from the public disclosure (`funds.disclosure.fund_report`) and the risk headline from `risk.compute_risk`.
Only aggregates leave this module: no member's name, phone or ID number is read.

存取次数 (the first seed's count of deposits and withdrawals) is counted from ledger transactions posted in the
half-year with a leg on a member of the subtree:
- 存 (deposit): credits earned by serving — kinds `deposit`, `service_record` and `service_redemption` (an order
  the recipient paid from their own time) with a credit to a member of the subtree;
- 取 (withdrawal): credits spent — kinds `withdrawal`, `service_redemption` and `goods_redemption` with a debit
  from a member of the subtree.
An order the recipient paid counts once as 存 (the volunteer's) and once as 取 (the recipient's). Reversals,
transfers, donations, adjustments and settlement moves are neither.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from django.db.models import Count, Exists, OuterRef, Sum
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from timebank.catalogue.models import Category, Tier
from timebank.funds.disclosure import Period, fund_report
from timebank.funds.money import yuan
from timebank.ledger.models import Leg, Transaction, TransactionKind
from timebank.lib import clock
from timebank.lib.errors import Invalid
from timebank.orgs.models import Org, OrgKind
from timebank.reports.risk import compute_risk
from timebank.reports.stats import compute, confirmed_orders, posted_records

HALF_YEAR_RE = re.compile(r"^(\d{4})-H([12])$")
DEPOSIT_KINDS = (TransactionKind.DEPOSIT, TransactionKind.SERVICE_RECORD, TransactionKind.SERVICE_REDEMPTION)
WITHDRAWAL_KINDS = (
    TransactionKind.WITHDRAWAL,
    TransactionKind.SERVICE_REDEMPTION,
    TransactionKind.GOODS_REDEMPTION,
)
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class HalfYear:
    code: str  # "2026-H1"
    start: dt.date
    end: dt.date  # inclusive

    @property
    def label(self) -> str:
        year, half = self.code.split("-H")
        return _("%(year)s 年上半年") % {"year": year} if half == "1" else _("%(year)s 年下半年") % {"year": year}


def parse_half_year(code: str | None) -> HalfYear:
    """`2026-H1` is January to June, `2026-H2` July to December; years 2000–2100."""
    m = HALF_YEAR_RE.match(code or "")
    if not m or not 2000 <= int(m.group(1)) <= 2100:
        raise Invalid(
            gettext_lazy("半年的格式应为 2026-H1（上半年）或 2026-H2（下半年）。"), fields={"half_year": "invalid"}
        )
    year = int(m.group(1))
    if m.group(2) == "1":
        return HalfYear(m.group(0), dt.date(year, 1, 1), dt.date(year, 6, 30))
    return HalfYear(m.group(0), dt.date(year, 7, 1), dt.date(year, 12, 31))


def current_half_year(today: dt.date | None = None) -> HalfYear:
    today = today or clock.localdate()
    return parse_half_year(f"{today.year}-H{1 if today.month <= 6 else 2}")


def recent_half_years(today: dt.date | None = None, count: int = 6) -> list[HalfYear]:
    """The current half-year and the ones before it, newest first (the page's picker)."""
    found = [current_half_year(today)]
    while len(found) < count:
        year, half = found[-1].start.year, 1 if found[-1].start.month == 1 else 2
        found.append(parse_half_year(f"{year - 1}-H2" if half == 1 else f"{year}-H1"))
    return found


@dataclass
class Flow:
    count: int = 0
    minutes: int = 0


@dataclass
class HalfYearReport:
    org: Org
    bank: Org
    half_year: HalfYear
    generated_at: dt.datetime
    stats: dict[str, Any]
    services: list[dict[str, Any]]  # per category and tier with any service
    deposits: Flow
    withdrawals: Flow
    funds: dict[str, Any]
    risk: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def access_count(self) -> int:
        """存取次数."""
        return self.deposits.count + self.withdrawals.count


def services_by_category(org: Org, start: dt.datetime | None, end: dt.datetime | None) -> list[dict[str, Any]]:
    """Services completed in the period (orders confirmed and service records posted), by category and tier:
    the same rows as the stats' `services_completed`, `service_minutes` and `credited_minutes`."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for qs, actual in (
        (confirmed_orders(org, start, end), "actual_minutes"),
        (posted_records(org, start, end), "minutes"),
    ):
        rows = qs.values("service_item__category", "service_item__tier").annotate(
            n=Count("pk"), m=Sum(actual), c=Sum("credited_minutes")
        )
        for r in rows:
            got = counts.setdefault((r["service_item__category"], r["service_item__tier"]), {"n": 0, "m": 0, "c": 0})
            got["n"] += int(r["n"])
            got["m"] += int(r["m"] or 0)
            got["c"] += int(r["c"] or 0)
    found = []
    for category in Category:
        for tier in Tier:
            key = (category.value, tier.value)
            if key in counts:
                got = counts.pop(key)
                found.append(_service_row(str(category.label), str(tier.label), got))
    for (category_code, tier_code), got in sorted(counts.items()):  # codes no longer in the catalogue's lists
        found.append(_service_row(category_code, tier_code, got))
    return found


def _service_row(category: str, tier: str, got: dict[str, int]) -> dict[str, Any]:
    return {"category": category, "tier": tier, "services": got["n"], "minutes": got["m"], "credited_minutes": got["c"]}


def ledger_flow(
    org: Org, start: dt.datetime | None, end: dt.datetime | None, kinds: tuple[str, ...], credit: bool
) -> Flow:
    """Transactions of `kinds` in [start, end) crediting (`credit`) or debiting a member of the subtree: count and
    minutes moved. A head office's are its bank's transactions of those kinds that touch a member's account."""
    bank_id = org.pk if org.kind == OrgKind.HEAD_OFFICE else org.head_office_id
    leg = Leg.objects.filter(transaction=OuterRef("pk"), account__member__isnull=False)
    leg = leg.filter(minutes__gt=0) if credit else leg.filter(minutes__lt=0)
    if org.kind != OrgKind.HEAD_OFFICE:
        leg = leg.filter(account__member__home_org__path__startswith=org.path)
    qs = Transaction.objects.filter(bank_id=bank_id, kind__in=kinds)
    if start is not None:
        qs = qs.filter(created_at__gte=start)
    if end is not None:
        qs = qs.filter(created_at__lt=end)
    got = qs.filter(Exists(leg)).aggregate(n=Count("pk"), m=Sum("minutes"))
    return Flow(int(got["n"] or 0), int(got["m"] or 0))


def build(org: Org, half_year: HalfYear) -> HalfYearReport:
    start, end = clock.day_bounds(half_year.start, half_year.end)
    stats = compute(org, half_year.start, half_year.end)
    risk = compute_risk(org)
    return HalfYearReport(
        org=org,
        bank=org.head_office or org,
        half_year=half_year,
        generated_at=clock.now(),
        stats=stats.as_dict(),
        services=services_by_category(org, start, end),
        deposits=ledger_flow(org, start, end, DEPOSIT_KINDS, credit=True),
        withdrawals=ledger_flow(org, start, end, WITHDRAWAL_KINDS, credit=False),
        funds=fund_report(org, Period(half_year.start, half_year.end)),
        risk={
            "outstanding_minutes": risk.outstanding_minutes,
            "capacity_minutes_per_month": risk.capacity_minutes_per_month,
            "months_to_honour": risk.months_to_honour,
            "window_months": risk.window_months,
            "unfilled_percent": risk.unfilled_percent,
            "alerts": [a.message for a in risk.alerts],
        },
    )


def hours(minutes: int) -> str:
    return f"{(Decimal(minutes) / 60).quantize(Decimal('0.1')):f}"


def sections(report: HalfYearReport) -> list[tuple[str, list[str], list[list[Any]]]]:
    """The report as titled tables (heading, column titles, rows): the xlsx and the PDF print the same ones."""
    s = report.stats
    funds = report.funds
    risk = report.risk
    months = risk["months_to_honour"]
    return [
        (
            _("会员"),
            [_("项目"), _("人数")],
            [
                [_("会员（现在）"), s["members"]],
                [_("志愿者（现在）"), s["volunteers"]],
                [_("服务对象（现在）"), s["recipients"]],
                [_("本期新加入的会员"), s["new_members"]],
                [_("本期由会员介绍来的志愿者"), s["referred_volunteers"]],
            ],
        ),
        (
            _("服务"),
            [_("项目"), _("数量")],
            [
                [_("完成的服务（次）"), s["services_completed"]],
                [_("其中订单（次）"), s["orders_completed"]],
                [_("其中服务记录（次）"), s["service_records"]],
                [_("服务时长（小时，实际）"), hours(s["service_minutes"])],
                [_("记入的时间（小时，按等级折算）"), hours(s["credited_minutes"])],
            ],
        ),
        (
            _("各类服务（按等级）"),
            [_("服务类别"), _("等级"), _("次数"), _("服务时长（小时）"), _("记入时间（小时）")],
            [
                [r["category"], r["tier"], r["services"], hours(r["minutes"]), hours(r["credited_minutes"])]
                for r in report.services
            ]
            or [[_("本期没有完成的服务"), "", 0, "0.0", "0.0"]],
        ),
        (
            _("时间币存取"),
            [_("项目"), _("次数"), _("分钟"), _("小时")],
            [
                [_("存入（服务所得）"), report.deposits.count, report.deposits.minutes, hours(report.deposits.minutes)],
                [
                    _("支取（兑换服务和物品）"),
                    report.withdrawals.count,
                    report.withdrawals.minutes,
                    hours(report.withdrawals.minutes),
                ],
                [
                    _("存取次数合计"),
                    report.access_count,
                    report.deposits.minutes + report.withdrawals.minutes,
                    hours(report.deposits.minutes + report.withdrawals.minutes),
                ],
                [_("会员账户余额（现在）"), "", s["outstanding_minutes"], hours(s["outstanding_minutes"])],
            ],
        ),
        (
            _("资金（元）"),
            [_("项目"), _("金额")],
            [
                [_("期初结余"), yuan(funds["opening_balance"])],
                [_("收入（现金）"), yuan(funds["income"]["cash"])],
                [_("收入（实物折价）"), yuan(funds["income"]["in_kind"])],
                *[
                    [_("其中：%(label)s") % {"label": r["label"]}, yuan(r["total"])]
                    for r in funds["income"]["by_source"]
                ],
                [_("支出"), yuan(funds["expense"]["total"])],
                *[
                    [_("其中：%(label)s") % {"label": r["label"]}, yuan(r["amount"])]
                    for r in funds["expense"]["by_kind"]
                ],
                [_("期末结余"), yuan(funds["closing_balance"])],
            ],
        ),
        (
            _("供不应求风险（生成报表时）"),
            [_("项目"), _("数值")],
            [
                [_("欠会员的时间（小时）"), hours(risk["outstanding_minutes"])],
                [
                    _("每月服务能力（小时，最近 %(months)s 个月平均）") % {"months": risk["window_months"]},
                    hours(int(risk["capacity_minutes_per_month"])),
                ],
                [_("兑付所需月数"), str(months) if months is not None else _("无服务能力")],
                [
                    _("没有派出志愿者的订单占比"),
                    f"{risk['unfilled_percent']}%" if risk["unfilled_percent"] is not None else "—",
                ],
                *([[_("提醒"), a] for a in risk["alerts"]] or [[_("提醒"), _("无")]]),
            ],
        ),
    ]


def title_of(report: HalfYearReport) -> str:
    return _("%(org)s 时间银行运行情况（%(period)s）") % {"org": report.org.name, "period": report.half_year.label}


def subtitle_of(report: HalfYearReport) -> str:
    local = timezone.localtime(report.generated_at)
    return _("所属银行：%(bank)s；统计期间：%(start)s 至 %(end)s；生成时间：%(at)s。人数和余额是生成时的数字。") % {
        "bank": report.bank.name,
        "start": report.half_year.start.isoformat(),
        "end": report.half_year.end.isoformat(),
        "at": local.strftime("%Y-%m-%d %H:%M"),
    }


def file_name(report: HalfYearReport, ext: str) -> str:
    return f"half-year-{report.org.pk}-{report.half_year.code}.{ext}"


def render_xlsx(report: HalfYearReport) -> bytes:
    from openpyxl import Workbook

    from timebank.exports.xlsx import cell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=report.half_year.code)
    # The org's and bank's names come from people: written as text, never a formula.
    ws.append([cell(ws, title_of(report))])
    ws.append([cell(ws, subtitle_of(report))])
    for heading, columns, rows in sections(report):
        ws.append([])
        ws.append([cell(ws, heading)])
        ws.append([cell(ws, str(c)) for c in columns])
        for row in rows:
            ws.append([cell(ws, v) for v in row])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def render_pdf(report: HalfYearReport) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from timebank.funds.pdf import _font

    font = _font()
    title = ParagraphStyle("title", fontName=font, fontSize=16, leading=22, spaceAfter=4)
    heading = ParagraphStyle("heading", fontName=font, fontSize=13, leading=18, spaceBefore=8, spaceAfter=4)
    body = ParagraphStyle("body", fontName=font, fontSize=9.5, leading=13)
    cell_style = ParagraphStyle("cell", fontName=font, fontSize=9.5, leading=12)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=title_of(report),
    )
    width = A4[0] - 30 * mm
    story: list[Any] = [
        Paragraph(escape(title_of(report)), title),
        Paragraph(escape(subtitle_of(report)), body),
    ]
    for name, columns, rows in sections(report):
        story.append(Paragraph(escape(name), heading))
        first = width * (0.4 if len(columns) > 2 else 0.6)
        widths = [first] + [(width - first) / (len(columns) - 1)] * (len(columns) - 1)
        data = [[Paragraph(escape(str(c)), cell_style) for c in columns]]
        data += [[Paragraph(escape(str(v)), cell_style) for v in row] for row in rows]
        table = Table(data, colWidths=widths, repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                    ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ]
            )
        )
        story.append(table)
        story.append(Spacer(1, 2 * mm))
    doc.build(story)
    return out.getvalue()


def download(org: Org, half_year: HalfYear, ext: str) -> HttpResponse:
    """The report as a file answer (`xlsx` or `pdf`): the API and the page both answer with this. The figures are
    read from the replica when there is one; who may read them was decided before, on the primary."""
    from timebank.ops.replica import reading_from_replica

    with reading_from_replica():
        report = build(org, half_year)
    if ext == "pdf":
        response = HttpResponse(render_pdf(report), content_type="application/pdf")
    else:
        response = HttpResponse(render_xlsx(report), content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{file_name(report, ext)}"'
    return response
