"""The settlement report (.xlsx): a summary, one row per settled member, and totals per org.

Written with openpyxl's write-only workbook: rows go to a temporary file as they are read from the database
in chunks, so memory stays flat for a million members. ID numbers appear only masked; names only for
readers allowed to see the member's home org (others get 王**)."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from typing import IO, Any

from django.db.models import Count, Sum
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from timebank.ledger.models import Settlement, SettlementLine
from timebank.lib import clock
from timebank.members.person import NameShield
from timebank.orgs.models import User

CHUNK = 2000
CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _text(ws: WriteOnlyWorksheet, value: str) -> WriteOnlyCell:
    """Always a plain string: a name such as "=HYPERLINK(…)" must never become a formula."""
    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    return cell


def _hours(minutes: int) -> Decimal:
    return (Decimal(minutes) / 60).quantize(Decimal("0.01"))


def _row(ws: WriteOnlyWorksheet, values: list[Any]) -> list[Any]:
    return [_text(ws, v) if isinstance(v, str) else v for v in values]


def write_report(settlement: Settlement, reader: User, out: IO[bytes]) -> None:
    wb = Workbook(write_only=True)
    bank = settlement.head_office

    summary = wb.create_sheet(_("汇总"))
    for label, value in (
        (_("时间银行"), bank.name),
        (_("结算截止日期"), settlement.period_end.isoformat()),
        (_("换物品比例（%）"), settlement.goods_share_percent),
        (_("状态"), str(settlement.get_status_display())),
        (_("结算会员数"), settlement.members),
        (_("结算分钟数"), settlement.moved_minutes),
        (_("其中可兑换物品（分钟）"), settlement.goods_minutes),
        (_("其中储存（分钟）"), settlement.reserve_minutes),
        (_("结算小时数"), _hours(settlement.moved_minutes)),
        (_("生成时间"), clock.localtime().strftime("%Y-%m-%d %H:%M")),
    ):
        summary.append(_row(summary, [label, value]))

    members = wb.create_sheet(_("会员明细"))
    members.append(
        _row(
            members,
            [
                _("会员编号"),
                _("姓名"),
                _("身份证号（已遮挡）"),
                _("所属机构"),
                _("结算分钟数"),
                _("可兑换物品（分钟）"),
                _("储存（分钟）"),
            ],
        )
    )
    shield = NameShield(reader)
    lines = (
        SettlementLine.objects.filter(settlement=settlement)
        .order_by("pk")
        .values_list(
            "member_id",
            "member__name",
            "member__id_number_masked",
            "org_id",
            "org__name",
            "earned_minutes",
            "goods_minutes",
            "reserve_minutes",
        )
    )
    for member_id, name, masked, org_id, org_name, earned, goods, reserve in lines.iterator(chunk_size=CHUNK):
        members.append(
            _row(members, [member_id, shield.name(name, org_id), masked or "", org_name, earned, goods, reserve])
        )

    orgs = wb.create_sheet(_("各机构合计"))
    orgs.append(
        _row(
            orgs,
            [
                _("机构"),
                _("会员数"),
                _("结算分钟数"),
                _("可兑换物品（分钟）"),
                _("储存（分钟）"),
                _("结算小时数"),
            ],
        )
    )
    totals = (
        SettlementLine.objects.filter(settlement=settlement)
        .values("org_id", "org__name", "org__path")
        .annotate(
            n=Count("pk"), earned=Sum("earned_minutes"), goods=Sum("goods_minutes"), reserve=Sum("reserve_minutes")
        )
        .order_by("org__path")
    )
    for t in totals:
        orgs.append(
            _row(orgs, [t["org__name"], t["n"], t["earned"], t["goods"], t["reserve"], _hours(t["earned"] or 0)])
        )
    wb.save(out)


def report_file(settlement: Settlement, reader: User) -> IO[bytes]:
    """The report in a temporary file, rewound, for a streamed download (the file is gone once closed)."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it after streaming
    write_report(settlement, reader, out)
    out.seek(0)
    return out


def report_name(settlement: Settlement) -> str:
    return f"settlement-{settlement.head_office_id}-{settlement.period_end.isoformat()}.xlsx"
