"""PDFs for people: the volunteer service certificate (志愿服务证明), the member statement and a member's own
data (PIPL). Drawn with reportlab and its built-in CID font, so no font file ships and readers supply glyphs."""

from __future__ import annotations

import datetime as dt
import functools
import io
from collections.abc import Iterable
from typing import Any
from xml.sax.saxutils import escape

import segno
from django.utils.translation import gettext as _
from reportlab.graphics.shapes import Drawing, Rect
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from timebank.exports.certificates import category_label, check_code
from timebank.exports.models import IssuedCertificate
from timebank.ledger.statement_words import Balance
from timebank.lib import clock
from timebank.web.templatetags.web import dated

FONT = "STSong-Light"
GREY = colors.HexColor("#555555")


@functools.cache
def _font() -> str:
    pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    return FONT


def _styles() -> dict[str, ParagraphStyle]:
    font = _font()
    return {
        "title": ParagraphStyle("title", fontName=font, fontSize=20, leading=28, alignment=1, spaceAfter=6),
        "heading": ParagraphStyle("heading", fontName=font, fontSize=13, leading=18, spaceBefore=8, spaceAfter=4),
        "body": ParagraphStyle("body", fontName=font, fontSize=11.5, leading=19),
        "small": ParagraphStyle("small", fontName=font, fontSize=9, leading=13, textColor=GREY),
    }


def hours_text(minutes: int) -> str:
    return f"{minutes / 60:.2f}".rstrip("0").rstrip(".") or "0"


def qr_drawing(data: str, size: float) -> Drawing:
    """The QR code as vector squares (no image library needed)."""
    qr = segno.make(data, error="m")
    matrix = [list(row) for row in qr.matrix]
    n = len(matrix) + 8  # quiet zone of 4 modules each side
    module = size / n
    drawing = Drawing(size, size)
    drawing.add(Rect(0, 0, size, size, fillColor=colors.white, strokeColor=None))
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                drawing.add(
                    Rect(
                        (x + 4) * module,
                        size - (y + 5) * module,
                        module,
                        module,
                        fillColor=colors.black,
                        strokeColor=None,
                    )
                )
    return drawing


def _table(rows: list[list[str]], widths: list[float]) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), _font(), 10.5),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


def _doc(buffer: io.BytesIO, title: str) -> SimpleDocTemplate:
    return SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=title,
    )


def render_certificate(cert: IssuedCertificate, verify_url: str) -> bytes:
    s = _styles()
    c = cert.content
    buffer = io.BytesIO()
    doc = _doc(buffer, _("志愿服务证明"))
    width = doc.width
    start, end = c["period"]
    story: list[Flowable] = [
        Paragraph(_("志愿服务证明"), s["title"]),
        Paragraph(escape(_("编号：%(serial)s") % {"serial": cert.serial}), s["small"]),
        Spacer(1, 6 * mm),
        Paragraph(
            escape(
                _(
                    "兹证明 %(name)s（身份证号 %(id)s）于 %(start)s 至 %(end)s 期间，在%(bank)s%(org)s参加志愿服务 "
                    "%(count)s 次，累计服务 %(hours)s 小时。"
                )
                % {
                    "name": c["name"],
                    "id": c["id_number_masked"] or "—",
                    "start": start,
                    "end": end,
                    "bank": c["bank"],
                    "org": c["org"],
                    "count": c["total_count"],
                    "hours": hours_text(c["total_minutes"]),
                }
            ),
            s["body"],
        ),
        Paragraph(_("按服务类别"), s["heading"]),
    ]
    rows = [[_("服务类别"), _("服务次数"), _("服务时长（小时）"), _("存入时间（小时）")]]
    rows += [
        [
            category_label(row["category"]),
            str(row["count"]),
            hours_text(row["minutes"]),
            hours_text(row["credited_minutes"]),
        ]
        for row in c["by_category"]
    ]
    rows.append(
        [
            _("合计"),
            str(c["total_count"]),
            hours_text(c["total_minutes"]),
            hours_text(c["total_credited_minutes"]),
        ]
    )
    story.append(_table(rows, [width * 0.34, width * 0.2, width * 0.23, width * 0.23]))
    story.append(Spacer(1, 8 * mm))
    qr = qr_drawing(verify_url, 32 * mm)
    check = Paragraph(
        escape(
            _("扫描二维码或打开 %(url)s 核验本证明的真伪。校验码：%(code)s。出具日期：%(date)s。")
            % {"url": verify_url, "code": check_code(cert), "date": c["issued_on"]}
        ),
        s["small"],
    )
    footer = Table([[qr, check]], colWidths=[36 * mm, width - 36 * mm])
    footer.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    story.append(footer)
    story.append(Spacer(1, 4 * mm))
    story.append(Paragraph(escape(_("本证明由时间银行系统根据服务记录生成，服务时长以平台记录为准。")), s["small"]))
    doc.build(story)
    return buffer.getvalue()


def render_statement(
    *,
    member_name: str,
    bank: str,
    period: str,
    balance: Balance,
    lines: Iterable[tuple[Any, str, str, str, int, int]],
) -> bytes:
    """A member's statement: the balance now, told as on 我的时间 (one total, its parts, what pays for services),
    then every change in the period in the member's words (date, what happened, memo, part, change, balance
    after)."""
    s = _styles()
    buffer = io.BytesIO()
    doc = _doc(buffer, _("时间银行对账单"))
    width = doc.width
    story: list[Flowable] = [
        Paragraph(_("时间银行对账单"), s["title"]),
        Paragraph(escape(f"{member_name}\u3000{bank}\u3000{period}"), s["body"]),
        Paragraph(_("现在的余额（小时）"), s["heading"]),
        *balance_story(balance, width),
        Paragraph(_("明细"), s["heading"]),
    ]
    rows = [[_("时间"), _("发生了什么"), _("说明"), _("部分"), _("变动（小时）"), _("之后余额")]]
    for when, words, memo, part, change, after in lines:
        # A download is read later and kept: the year always, never 今天/昨天.
        rows.append([dated(when, always_year=True), words, memo[:24], part, signed(change), hours_text(after)])
    if len(rows) == 1:
        rows.append([_("这段时间没有变动。"), "", "", "", "", ""])
    story.append(_table(rows, [width * 0.22, width * 0.2, width * 0.2, width * 0.12, width * 0.13, width * 0.13]))
    story.append(Spacer(1, 4 * mm))
    generated = dated(clock.now(), always_year=True)
    story.append(Paragraph(escape(_("生成时间 %(when)s。1 小时 = 1 个时间币。") % {"when": generated}), s["small"]))
    doc.build(story)
    return buffer.getvalue()


def signed(minutes: int) -> str:
    return ("+" if minutes > 0 else "") + hours_text(minutes)


def balance_story(balance: Balance, width: float) -> list[Flowable]:
    """The one total, its parts and what pays for services, each with its words (statement_words)."""
    s = _styles()
    rows = [[balance.total_label, hours_text(balance.total), balance.total_words]]
    rows += [[p.label, hours_text(p.minutes), p.words] for p in balance.parts]
    rows.append([balance.spendable_label, hours_text(balance.spendable), balance.spendable_words])
    cells = [[Paragraph(escape(str(c)), s["small" if i == 2 else "body"]) for i, c in enumerate(r)] for r in rows]
    table = Table(cells, colWidths=[width * 0.3, width * 0.15, width * 0.55])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.grey), ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    return [table, Paragraph(escape(str(balance.why_two_numbers)), s["small"])]


def render_personal_data(data: dict[str, Any], balance: Balance | None = None) -> bytes:
    """A member's own data (PIPL): every section of the JSON export as label/value tables; the balance and the
    statement as on 我的时间 (the one total with its parts, each line in the member's words)."""
    s = _styles()
    buffer = io.BytesIO()
    doc = _doc(buffer, _("我的个人信息"))
    width = doc.width
    story: list[Flowable] = [Paragraph(_("我的个人信息"), s["title"])]
    rows = [[_("项目"), _("内容")]] + [[str(k), _plain(v)] for k, v in data.get("member", {}).items()]
    story += [Paragraph(_("基本信息"), s["heading"]), _table(rows, [width * 0.35, width * 0.65])]
    if balance is not None:
        story += [Paragraph(_("现在的余额（小时）"), s["heading"]), *balance_story(balance, width)]
    story += [Paragraph(_("时间明细"), s["heading"]), _statement_table(data.get("statement", []), width)]
    for section, title in (
        ("relatives", _("亲属")),
        ("consents", _("单独同意记录")),
        ("orders", _("订单")),
        ("certificates", _("志愿服务证明")),
    ):
        items = data.get(section, [])
        story.append(Paragraph(title, s["heading"]))
        if not items:
            story.append(Paragraph(_("无"), s["body"]))
            continue
        keys = list(items[0].keys())
        rows = [keys] + [[_plain(item.get(k))[:30] for k in keys] for item in items]
        story.append(_table(rows, [width / len(keys)] * len(keys)))
    story.append(Spacer(1, 4 * mm))
    story.append(
        Paragraph(
            escape(_("生成时间 %(when)s。这是我们保存的关于您的全部信息。") % {"when": data.get("generated_at", "")}),
            s["small"],
        )
    )
    doc.build(story)
    return buffer.getvalue()


def _statement_table(lines: list[dict[str, Any]], width: float) -> Flowable:
    if not lines:
        return Paragraph(_("无"), _styles()["body"])
    rows = [[_("时间"), _("发生了什么"), _("说明"), _("变动（小时）"), _("之后余额")]]
    for line in lines:
        at = dt.datetime.fromisoformat(line["at"]) if line.get("at") else None
        rows.append(
            [
                dated(at, always_year=True),
                line["words"],
                (line.get("memo") or "")[:24],
                signed(line["minutes"]),
                hours_text(line["balance_after_minutes"]),
            ]
        )
    return _table(rows, [width * 0.24, width * 0.24, width * 0.24, width * 0.14, width * 0.14])


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return "、".join(str(v) for v in value)
    if isinstance(value, dict):
        return "；".join(f"{k}: {v}" for k, v in value.items())
    return str(value)
