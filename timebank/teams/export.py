"""The school's moral-education (德育考核) export: one row per student, hours for one term, as .xlsx."""

from __future__ import annotations

import io

from django.utils.translation import gettext as _
from openpyxl import Workbook

from timebank.exports.xlsx import cell
from timebank.teams.models import Team
from timebank.teams.stats import Term, student_rows


def school_workbook(team: Team, term: Term) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=term.code)
    # Names, student numbers and the team's name come from people: each is written as text, never a formula.
    ws.append([cell(ws, _("%(team)s 志愿服务时长（%(term)s）") % {"team": team.name, "term": term.code})])
    ws.append(
        [
            cell(ws, str(title))
            for title in (
                _("序号"),
                _("学号"),
                _("姓名"),
                _("性别"),
                _("服务次数"),
                _("服务时长（小时）"),
                _("时间币（分钟）"),
            )
        ]
    )
    for row in student_rows(team, term):
        ws.append(
            [cell(ws, row[key]) for key in ("n", "external_id", "name", "gender", "services", "hours", "minutes")]
        )
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
