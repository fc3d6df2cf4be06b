"""The disclosure as a printable PDF for the notice board (公示栏), drawn with reportlab.

It prints exactly the figures of `disclosure.disclose`; nothing here reads people."""

from __future__ import annotations

import functools
import io
from typing import Any
from xml.sax.saxutils import escape

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from reportlab.graphics.shapes import Drawing, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from timebank.funds.disclosure import Bar, as_text, chart_bars, hours_text

# Adobe's built-in CID font: no font file to ship; PDF readers supply the Chinese glyphs.
FONT = "STSong-Light"
INCOME_COLOUR = colors.HexColor("#2e7d32")
EXPENSE_COLOUR = colors.HexColor("#c62828")


@functools.cache
def _font() -> str:
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def period_text(report: dict[str, Any]) -> str:
    start, end = report["from"], report["to"]
    if start is None and end is None:
        return _("全部时间")
    if end is None:
        return _("%(start)s 起至今") % {"start": start.isoformat()}
    if start is None:
        return _("截至 %(end)s") % {"end": end.isoformat()}
    return _("%(start)s 至 %(end)s") % {"start": start.isoformat(), "end": end.isoformat()}


def _table(rows: list[list[str]], widths: list[float], *, total_row: bool = True) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    style = [
        ("FONT", (0, 0), (-1, -1), _font(), 10.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
        ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]
    if total_row:
        style.append(("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#f6f6f6")))
    table.setStyle(TableStyle(style))
    return table


def _chart(bars: list[Bar], width: float) -> Drawing:
    row, label_w, value_w = 16, 36 * mm, 30 * mm
    bar_w = width - label_w - value_w
    drawing = Drawing(width, row * len(bars) + 4)
    for i, bar in enumerate(bars):
        y = drawing.height - (i + 1) * row
        colour = INCOME_COLOUR if bar.group == "income" else EXPENSE_COLOUR
        drawing.add(String(0, y + 4, bar.label, fontName=_font(), fontSize=9))
        if bar.share > 0:
            drawing.add(Rect(label_w, y + 2, bar_w * bar.share, row - 5, fillColor=colour, strokeColor=None))
        drawing.add(String(width, y + 4, as_text(bar.amount), fontName=_font(), fontSize=9, textAnchor="end"))
    return drawing


def render_pdf(report: dict[str, Any]) -> bytes:
    font = _font()
    title = ParagraphStyle("title", fontName=font, fontSize=18, leading=24, spaceAfter=4)
    heading = ParagraphStyle(
        "heading", fontName=font, fontSize=13, leading=18, spaceBefore=10, spaceAfter=4, keepWithNext=1
    )
    body = ParagraphStyle("body", fontName=font, fontSize=10.5, leading=15)
    small = ParagraphStyle("small", fontName=font, fontSize=9, leading=13, textColor=colors.HexColor("#555555"))
    text = as_text(report)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=_("%(org)s 资金与服务公示") % {"org": text["org"]["name"]},
    )
    width = doc.width
    story: list[Any] = [
        # Paragraphs read markup: org names are escaped ("&", "<" would break or inject it).
        Paragraph(escape(_("%(org)s 资金与服务公示") % {"org": text["org"]["name"]}), title),
        # STSong-Light has no "·": ideographic spaces separate the parts.
        Paragraph(escape(f"{text['bank']['name']}\u3000{period_text(report)}\u3000{_('单位：元')}"), body),
        Spacer(1, 4 * mm),
        Paragraph(_("收入（按来源）"), heading),
    ]
    income = text["income"]
    rows = [[_("来源"), _("资金"), _("实物（估值）"), _("合计")]]
    rows += [[s["label"], s["cash"], s["in_kind"], s["total"]] for s in income["by_source"]]
    rows.append([_("收入合计"), income["cash"], income["in_kind"], income["total"]])
    story.append(_table(rows, [width * 0.34, width * 0.22, width * 0.22, width * 0.22]))

    story.append(Paragraph(_("支出（按类别）"), heading))
    expense = text["expense"]
    rows = [[_("类别"), _("金额")]]
    rows += [[k["label"], k["amount"]] for k in expense["by_kind"]]
    rows.append([_("支出合计"), expense["total"]])
    story.append(_table(rows, [width * 0.6, width * 0.4]))

    story.append(Paragraph(_("结余"), heading))
    rows = [[_("资金"), _("资金收入"), _("实物（估值）"), _("支出"), _("本期结余")]]
    rows += [[f["label"], f["income"], f["in_kind"], f["expense"], f["net"]] for f in text["funds"]]
    story.append(_table(rows, [width * 0.24, width * 0.19, width * 0.19, width * 0.19, width * 0.19], total_row=False))
    story.append(Spacer(1, 2 * mm))
    story.append(
        Paragraph(
            _("期初余额 %(opening)s，本期结余 %(net)s，期末余额 %(closing)s（只计资金，不含实物）。")
            % {"opening": text["opening_balance"], "net": text["net"], "closing": text["closing_balance"]},
            body,
        )
    )

    story.append(Paragraph(_("收支图"), heading))
    story.append(_chart(chart_bars(report), width))

    services = text["services"]
    story.append(Paragraph(_("服务成效"), heading))
    rows = [
        [_("项目"), _("数量")],
        [_("完成的服务订单"), str(services["orders_completed"])],
        [_("其中由专项基金购买"), str(services["orders_bought_by_fund"])],
        [_("集体活动等服务记录"), str(services["service_records"])],
        [_("服务时长（小时）"), hours_text(services["service_minutes"])],
        [_("存入的时间（小时，按倍率）"), hours_text(services["credited_minutes"])],
    ]
    story.append(_table(rows, [width * 0.6, width * 0.4], total_row=False))

    if text["donors"]:
        story.append(Paragraph(_("爱心企业"), heading))
        rows = [[_("企业"), _("捐赠（含实物估值）")]] + [[d["name"], d["amount"]] for d in text["donors"]]
        story.append(_table(rows, [width * 0.6, width * 0.4], total_row=False))
    if text["children"]:
        story.append(Paragraph(_("下级机构"), heading))
        rows = [[_("机构"), _("收入"), _("支出"), _("本期结余")]]
        rows += [[c["name"], c["income"], c["expense"], c["net"]] for c in text["children"]]
        story.append(_table(rows, [width * 0.4, width * 0.2, width * 0.2, width * 0.2], total_row=False))

    generated = formats.date_format(timezone.localtime(report["generated_at"]), "Y-m-d H:i")
    story.append(Spacer(1, 6 * mm))
    story.append(
        Paragraph(
            _("生成时间 %(when)s。本公示只含合计数，不含任何个人信息。如有疑问，请拨打 12349 或到社区咨询。")
            % {"when": generated},
            small,
        )
    )
    doc.build(story)
    return buffer.getvalue()
