"""Register exports (.xlsx): streamed, well-formed, masked unless the role may see the data, audited."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from django.http import FileResponse
from django.utils import timezone
from openpyxl import load_workbook

from tests.conftest import World, web_client
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.exports.xlsx import Column, export_response, write_xlsx
from timebank.lib.masking import mask_name
from timebank.orders import actions as orders


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


REGISTERS = ["members", "orders", "needs", "insurance", "trainings", "redemptions", "calls", "fund-entries"]


@pytest.mark.parametrize("register", REGISTERS)
def test_every_register_exports_for_staff_and_refuses_members(world: World, register: str) -> None:
    rows = sheet(web_client(world.users["staff"]).get(f"/exports/{register}.xlsx"))
    assert rows and all(isinstance(title, str) for title in rows[0])
    assert AuditEntry.objects.filter(action=f"export.{register.replace('-', '_')}").exists()
    assert web_client(world.users["volunteer"]).get(f"/exports/{register}.xlsx").status_code == 403


def test_orders_export_masks_people_outside_the_readers_subtree(world: World) -> None:
    item = do_create_service_item(None, head_office=world.bank, name="陪诊", category="health_care", tier="ordinary")
    order = orders.do_create_order(
        world.users["operator"],
        recipient=world.members["recipient"],
        service_item=item,
        scheduled_start=timezone.now() + dt.timedelta(hours=2),
        planned_minutes=60,
        payer="subsidy",
        channel="hotline",
    )
    # A volunteer from 泥沟村 serves in 顺河社区.
    orders.do_dispatch(world.users["branch_admin"], order, world.members["neighbour"])
    full = sheet(web_client(world.users["staff"]).get("/exports/orders.xlsx?full=1"))
    assert column(full, "服务对象") == ["李大爷"]
    assert column(full, "志愿者") == ["赵**"]  # not of the staff's subtree, even with full=1
    masked = sheet(web_client(world.users["staff"]).get("/exports/orders.xlsx"))
    assert column(masked, "服务对象") == ["李**"]
    #
    branch = sheet(web_client(world.users["head_office_admin"]).get("/exports/orders.xlsx?full=1"))
    assert column(branch, "志愿者") == ["赵阿姨"]


def test_calls_export_masks_phone_for_full_without_rights(world: World) -> None:
    grandpa = world.members["recipient"]
    response = world.api("operator").post(
        "/api/v1/hotline/calls",
        {"member_id": grandpa.pk, "phone": "13700001234", "kind": "legal_advice", "summary": "问服务"},
    )
    assert response.status_code in (200, 201), response.content
    masked = sheet(web_client(world.users["operator"]).get("/exports/calls.xlsx"))
    assert column(masked, "电话") == ["137****1234"] and column(masked, "摘要") == ["***"]
    full = sheet(web_client(world.users["operator"]).get("/exports/calls.xlsx?full=1"))
    assert column(full, "电话") == ["13700001234"]
    # staff_next's subtree (泥沟村) does not hold the call at all.
    other = sheet(web_client(world.users["staff_next"]).get("/exports/calls.xlsx?full=1"))
    assert len(other) == 1


def test_a_large_export_streams_from_a_temporary_file(world: World) -> None:
    """Many rows through the same path as the registers: streamed (FileResponse) and well-formed. Memory
    figures are in bench/exports.py."""
    n = 5000
    response = export_response(
        world.users["staff"],
        name="synthetic",
        title="many",
        columns=[Column("n", lambda i: i), Column("名", lambda i: f"张{i}", mask=mask_name)],
        rows=iter(range(n)),
        bank_id=world.bank.pk,
    )
    assert isinstance(response, FileResponse) and response.streaming
    rows = sheet(response)
    assert len(rows) == n + 1 and rows[-1] == [n - 1, "张****"]
    assert AuditEntry.objects.filter(action="export.synthetic").get().data["rows"] == n
