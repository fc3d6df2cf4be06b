"""The demo's census import (人口普查导入), the way staff bring one in: the file is checked (a dry run with its
report), then confirmed. The demo's timeline plans the rows and calls this at its moment."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from timebank.members.models import Member
from timebank.needs.actions import do_confirm_census_import, do_create_census_import
from timebank.needs.census import check_table, read_table
from timebank.orgs.models import Org, User

HEADER = ("姓名", "身份证号", "性别", "出生日期", "联系电话", "家庭住址", "所属社区", "对象类别", "需求描述")


def import_census(actor: User | None, org: Org, filename: str, rows: Sequence[Sequence[str]]) -> list[Member]:
    """Check and confirm a census file of `rows` for `org`; answer the members it wrote, in the file's order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(rows)
    checked = check_table(org, read_table(filename, buffer.getvalue().encode()))
    imp = do_create_census_import(actor, org=org, filename=filename, checked=checked)
    imp = do_confirm_census_import(actor, imp)
    written = {row["row"]: row["member_id"] for row in imp.report["rows"] if row.get("member_id")}
    return [Member.objects.get(pk=written[n]) for n in sorted(written)]
