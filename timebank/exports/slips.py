"""The printable dispatch slip (派单单) for a volunteer without a smartphone (issue 13, paper mode): the order's
number, the recipient's masked name and the address staff may see, the time and the service, blanks to write
the times by hand, and a QR code of the staff order page, where the filled slip is entered back (代为接单,
代为签到, 代为签退). Linked from the staff order page; staff and operators of the order's subtree print it."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from reportlab.platypus import Flowable, Paragraph, Spacer, Table, TableStyle

from timebank.exports.pdf import _doc, _font, _styles, hours_text, qr_drawing
from timebank.lib.errors import Forbidden
from timebank.lib.masking import mask_name
from timebank.members.actions import do_view_personal_data
from timebank.orders.access import OPERATOR, STAFF, access_order
from timebank.orders.models import Order
from timebank.orgs.scope import user_of
from timebank.web.views.common import page


def render_dispatch_slip(order: Order, order_url: str) -> bytes:
    s = _styles()
    buffer = io.BytesIO()
    title = _("派单单")
    doc = _doc(buffer, title)
    width = doc.width
    recipient = order.recipient
    when = formats.date_format(timezone.localtime(order.scheduled_start), "Y-m-d H:i")
    facts = [
        [_("订单号"), f"#{order.pk}"],
        [_("服务项目"), order.service_item.name],
        [_("老人"), mask_name(recipient.name)],
        [_("地址"), recipient.address or "—"],
        [_("预约时间"), when],
        [_("预计时长（小时）"), hours_text(order.planned_minutes)],
        [_("志愿者"), order.volunteer.name if order.volunteer else "—"],
        [_("社区"), order.org.name],
    ]
    blanks = [[_("接单时间"), ""], [_("签到时间"), ""], [_("签退时间"), ""], [_("志愿者签字"), ""], [_("老人签字"), ""]]
    story: list[Flowable] = [
        Paragraph(escape(title), s["title"]),
        Paragraph(escape(_("订单号 #%(id)s") % {"id": order.pk}), s["small"]),
        Spacer(1, 4),
        _facts(facts, width),
        Paragraph(escape(_("服务时请填写（交回社区后由工作人员代为登记）")), s["heading"]),
        _facts(blanks, width, tall=True),
        Spacer(1, 12),
    ]
    qr = qr_drawing(order_url, 110)
    note = Paragraph(
        escape(_("工作人员扫描二维码打开订单 #%(id)s，按本单填写的时间代为签到、签退。") % {"id": order.pk}),
        s["small"],
    )
    footer = Table([[qr, note]], colWidths=[120, width - 120])
    footer.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    story.append(footer)
    doc.build(story)
    return buffer.getvalue()


def _facts(rows: list[list[str]], width: float, *, tall: bool = False) -> Table:
    table = Table(rows, colWidths=[width * 0.3, width * 0.7], rowHeights=[30] * len(rows) if tall else None)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), _font(), 11),
                ("GRID", (0, 0), (-1, -1), 0.5, "#888888"),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    return table


@page("workbench")
def dispatch_slip(request: HttpRequest, order_id: int) -> HttpResponse:
    """The slip as a PDF: staff and operators of the order's subtree (the staff order page's access)."""
    user = user_of(request)
    order, roles = access_order(user, order_id)
    if not roles & {STAFF, OPERATOR}:
        raise Forbidden(_("这个订单不在您的工作范围内。"), code="outside_subtree")
    if order.recipient.address:  # the address in full, as on the order page: the showing is audited
        do_view_personal_data(user, [(order.recipient, ["address"])], via=f"slip:{order.pk}")
    url = request.build_absolute_uri(reverse("web:staff_order", args=[order.pk]))
    response = HttpResponse(render_dispatch_slip(order, url), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="dispatch-slip-{order.pk}.pdf"'
    return response
