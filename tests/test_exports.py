"""Register exports (.xlsx): streamed, well-formed, masked unless the role may see the data, audited."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import load_workbook

from tests.conftest import World, web_client
from timebank.audit.models import AuditEntry
from timebank.exports.xlsx import Column, write_xlsx
from timebank.lib.masking import mask_name


def sheet(response: Any) -> list[list[Any]]:
    assert response.status_code == 200, response.content[:300]
    assert response.streaming
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    data = b"".join(response.streaming_content)
    wb = load_workbook(io.BytesIO(data), read_only=True)
    ws = wb.worksheets[0]
    return [list(r) for r in ws.iter_rows(values_only=True)]


def column(rows: list[list[Any]], title: str) -> list[Any]:
    i = rows[0].index(title)
    return [r[i] for r in rows[1:]]


def test_members_export_is_masked_by_default_and_audited(world: World) -> None:
    rows = sheet(web_client(world.users["staff"]).get("/exports/members.xlsx"))
    names = column(rows, "姓名")
    assert "王秀英" not in names and "王**" in names
    assert all(p is None or "****" in p for p in column(rows, "电话"))
    assert set(column(rows, "地址")) <= {"***", None}
    volunteer = world.members["volunteer"]
    assert volunteer.id_number() not in str(rows)
    assert volunteer.id_number_masked in column(rows, "身份证号（已遮挡）")
    # Only the staff's own community: nobody from 泥沟村 or the other bank.
    assert "赵*" not in names and "陈**" not in names
    entry = AuditEntry.objects.filter(action="export.members").latest("pk")
    assert entry.actor == world.users["staff"]
    assert entry.data["rows"] == len(rows) - 1 and entry.data["unmasked_rows"] == 0


def test_members_export_full_for_staff_of_the_subtree(world: World) -> None:
    rows = sheet(web_client(world.users["staff"]).get("/exports/members.xlsx?full=1"))
    assert "王秀英" in column(rows, "姓名")
    assert "13800000000" in column(rows, "电话")
    assert "运河街道 1 号" in column(rows, "地址")
    entry = AuditEntry.objects.filter(action="export.members").latest("pk")
    assert entry.data["unmasked_rows"] == len(rows) - 1 > 0


def test_export_refused_to_members_and_outsiders(world: World) -> None:
    for persona in ("volunteer", "assessor"):
        assert web_client(world.users[persona]).get("/exports/members.xlsx").status_code == 403
    assert web_client(None).get("/exports/members.xlsx").status_code == 302
    # Another bank's org is not a filter a reader may use.
    response = web_client(world.users["staff"]).get(f"/exports/members.xlsx?org={world.other_community.pk}")
    assert response.status_code in (403, 404)
    assert web_client(world.users["staff"]).get("/exports/orders.xlsx?from=yesterday").status_code == 422
    assert not AuditEntry.objects.filter(action__startswith="export.").exists()


def test_formula_is_written_as_text() -> None:
    out = io.BytesIO()
    result = write_xlsx(
        out,
        title="t",
        columns=[Column("名", lambda r: r, mask=mask_name)],
        rows=['=HYPERLINK("http://x")', "张三"],
        reveal=True,
    )
    assert result.rows == 2
    out.seek(0)
    ws = load_workbook(out).worksheets[0]
    assert ws["A2"].data_type == "s" and ws["A2"].value.startswith("=")
