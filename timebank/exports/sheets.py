"""A day's printable sign-in sheet (签到表, issue 13 "Paper mode"): one row per order of the day dispatched to a
volunteer (number, service, time, volunteer, the recipient's masked name and the address staff see), blank
columns for the times and a signature, and a QR code of the page where the filled sheet is entered back
(orders/views_sheets.py). Staff and operators of a subtree print it (orders.sheets.check_sheet_reader)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any
from xml.sax.saxutils import escape

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from timebank.exports.pdf import _font, _styles, qr_drawing
from timebank.lib.masking import mask_name
from timebank.members.actions import do_view_personal_data
from timebank.orders.models import Order
from timebank.orders.sheets import check_sheet_reader, day_orders, parse_day
from timebank.orgs.models import Org, User
from timebank.orgs.scope import user_of
from timebank.web.views.common import page


def day_sheet_rows(user: User, day: dt.date, org: Org | None = None) -> list[dict[str, Any]]:
    """The sheet's rows: what the paper shows of each order (the recipient's name masked as lists mask it)."""
    return [
        {
            "order": order,
            "number": f"#{order.pk}",
            "service": order.service_item.name,
            "time": timezone.localtime(order.scheduled_start).strftime("%H:%M"),
            "volunteer": order.volunteer.name if order.volunteer else "",
            "recipient": mask_name(order.recipient.name),
            "address": order.recipient.address or "—",
        }
        for order in day_orders(user, day, org)
    ]


def render_day_sheet(rows: list[dict[str, Any]], day: dt.date, org: Org | None, entry_url: str) -> bytes:
    s = _styles()
    cell = s["small"].clone("cell", textColor=colors.black, fontSize=9, leading=11)
    buffer = io.BytesIO()
    title = _("签到表")
    doc = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=title,
    )
    width = doc.width
    head = [_("订单号"), _("服务项目"), _("预约"), _("志愿者"), _("老人"), _("地址")]
    head += [_("接单时间"), _("签到时间"), _("签退时间"), _("志愿者签字")]
    table_rows: list[list[Any]] = [head]
    for row in rows:
        texts = [row["number"], row["service"], row["time"], row["volunteer"], row["recipient"], row["address"]]
        table_rows.append([Paragraph(escape(t), cell) for t in texts] + ["", "", "", ""])
    if not rows:
        table_rows.append([_("这一天没有已派给志愿者的订单。"), "", "", "", "", "", "", "", "", ""])
    shares = [0.07, 0.12, 0.06, 0.09, 0.08, 0.20, 0.09, 0.09, 0.09, 0.11]
    table = Table(table_rows, colWidths=[width * f for f in shares], repeatRows=1, rowHeights=None)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), _font(), 9),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 1), (-1, -1), 8),
                ("BOTTOMPADDING", (0, 1), (-1, -1), 8),
            ]
        )
    )
    where = f" · {org.name}" if org else ""
    story: list[Flowable] = [
        Paragraph(escape(title), s["title"]),
        Paragraph(escape(_("日期：%(day)s") % {"day": day.isoformat()} + where), s["small"]),
        Spacer(1, 4),
        table,
        Spacer(1, 10),
    ]
    note = Paragraph(
        escape(_("时间请写“时:分”。交回社区后，工作人员扫描二维码打开当天的录入页，一次登记整张签到表。")),
        s["small"],
    )
    footer = Table([[qr_drawing(entry_url, 100), note]], colWidths=[110, width - 110])
    footer.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    story.append(footer)
    doc.build(story)
    return buffer.getvalue()


def _orders_with_address(rows: list[dict[str, Any]]) -> list[Order]:
    return [row["order"] for row in rows if row["order"].recipient.address]


@page("workbench")
def day_sheet(request: HttpRequest, day: str) -> HttpResponse:
    """The day's sheet as a PDF (`?org=` narrows it to a part of the caller's subtree)."""
    user = user_of(request)
    the_day = parse_day(day)
    org = check_sheet_reader(user, request.GET.get("org", ""))
    rows = day_sheet_rows(user, the_day, org)
    shown = {order.recipient.pk: order.recipient for order in _orders_with_address(rows)}
    if shown:  # the addresses in full, as on the staff order page: each showing is audited
        do_view_personal_data(user, [(r, ["address"]) for r in shown.values()], via=f"sheet:{the_day}")
    query = f"?org={org.pk}" if org else ""
    url = request.build_absolute_uri(reverse("web:staff_order_sheet", args=[the_day.isoformat()]) + query)
    response = HttpResponse(render_day_sheet(rows, the_day, org, url), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="sign-in-sheet-{the_day}.pdf"'
    return response
