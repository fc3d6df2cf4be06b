"""An activity's blank sign-in sheet (签到表, issue 13 "Paper mode"): its signed-up volunteers, with blank columns
to sign in and out, and a QR code of the page where whoever runs it enters the filled sheet on one screen
(teams/views_sheet.py). Those who manage the activity print it (the page's own access: `access_activity(manage=True)`)."""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import escape

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.platypus import Flowable, Paragraph, Spacer, Table, TableStyle

from timebank.exports.pdf import _doc, _font, _styles, qr_drawing
from timebank.lib.masking import mask_phone
from timebank.orgs.scope import user_of
from timebank.teams.access import access_activity
from timebank.teams.models import Activity, ActivitySignup, SignupStatus
from timebank.web.views.common import page


def activity_sheet_rows(activity: Activity) -> list[dict[str, Any]]:
    """The confirmed sign-ups, as the sheet lists them (the phone masked: the sheet lies on a table)."""
    signups = (
        ActivitySignup.objects.filter(activity=activity, status=SignupStatus.CONFIRMED)
        .select_related("member")
        .order_by("queued_at", "pk")
    )
    return [
        {"number": str(n), "name": s.member.name, "phone": mask_phone(s.member.phone) if s.member.phone else ""}
        for n, s in enumerate(signups, start=1)
    ]


def render_activity_sheet(activity: Activity, rows: list[dict[str, Any]], page_url: str) -> bytes:
    s = _styles()
    buffer = io.BytesIO()
    title = _("活动签到表")
    doc = _doc(buffer, title)
    width = doc.width
    start, end = timezone.localtime(activity.starts_at), timezone.localtime(activity.ends_at)
    head = [_("序号"), _("志愿者"), _("手机"), _("签到时间"), _("签退时间"), _("签字")]
    table_rows: list[list[str]] = [head]
    table_rows += [[r["number"], r["name"], r["phone"], "", "", ""] for r in rows]
    table_rows += [["", "", "", "", "", ""] for _blank in range(3)]  # walk-ins (现场报名) write themselves in
    table = Table(table_rows, colWidths=[width * f for f in (0.08, 0.2, 0.18, 0.16, 0.16, 0.22)], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), _font(), 10.5),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("TOPPADDING", (0, 1), (-1, -1), 9),
                ("BOTTOMPADDING", (0, 1), (-1, -1), 9),
            ]
        )
    )
    when = (
        f"{start:%Y-%m-%d %H:%M} – {end:%H:%M}"
        if start.date() == end.date()
        else f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M}"
    )
    story: list[Flowable] = [
        Paragraph(escape(title), s["title"]),
        Paragraph(escape(activity.title), s["heading"]),
        Paragraph(escape(_("活动编号 #%(id)s") % {"id": activity.pk}), s["small"]),
        Paragraph(escape(f"{when} · {activity.place} · {activity.org.name}"), s["small"]),
        Spacer(1, 6),
        table,
        Spacer(1, 10),
    ]
    note = Paragraph(
        escape(_("活动结束后，组织者扫描二维码打开录入页面，按本表在一个页面里登记每位志愿者的出勤。")),
        s["small"],
    )
    footer = Table([[qr_drawing(page_url, 100), note]], colWidths=[110, width - 110])
    footer.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    story.append(footer)
    doc.build(story)
    return buffer.getvalue()


@page("login")
def activity_sheet(request: HttpRequest, activity_id: int) -> HttpResponse:
    """The blank sheet as a PDF, for those who may mark the activity's attendance (as on its page)."""
    activity = access_activity(user_of(request), activity_id, manage=True)
    url = request.build_absolute_uri(reverse("teams:activity_sheet_entry", args=[activity.pk]))
    response = HttpResponse(
        render_activity_sheet(activity, activity_sheet_rows(activity), url), content_type="application/pdf"
    )
    response["Content-Disposition"] = f'inline; filename="activity-sheet-{activity.pk}.pdf"'
    return response
