"""Issue 13: the needs register and the census import from the pages, for staff of the subtree.

A need's page (/staff/needs/<id>/) edits it, adds a follow-up and closes it through the API's actions
(`do_update_need`, `do_add_follow_up`, `do_close_need`), guarded by `access_need(manage=True)`; the census
import page uploads a file and shows its dry-run report (`do_create_census_import`), then confirms it
(`do_confirm_census_import`), guarded by `census_scope` / `access_census_import`. Reached from the workbench.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import World, new_id_number, web_client
from tests.test_census_import import HEADER, census_rows, xlsx_bytes
from tests.test_trust_08_races import Call, fire, postgres_only
from tests.test_trust_10_census_bomb import shared_strings_bomb
from timebank.audit.models import AuditEntry
from timebank.catalogue.models import ServiceItem
from timebank.members.models import Member
from timebank.needs.actions import do_create_need
from timebank.needs.models import CensusImport, Need, NeedFollowUp
from timebank.ops.idempotency import IdempotentRequest


def make_need(world: World) -> Need:
    return do_create_need(
        world.users["staff"],
        recipient=world.members["recipient"],
        level="general",
        found_by="home_visit",
        notes="腿脚不便",
    )


def item(world: World, name: str = "送餐", bank: Any = None) -> ServiceItem:
    return ServiceItem.objects.create(
        head_office=bank or world.bank, name=name, category="mutual_care", tier="ordinary"
    )


def key_of(html: str) -> str:
    found = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', html)
    assert found, "the form carries no idempotency key"
    return found.group(1)


def snapshot(need: Need) -> tuple[Any, ...]:
    need.refresh_from_db()
    return (
        need.level,
        need.notes,
        need.status,
        need.close_reason,
        sorted(need.items.values_list("pk", flat=True)),
        NeedFollowUp.objects.filter(need=need).count(),
        AuditEntry.objects.count(),
    )


# ---- reaching the pages ------------------------------------------------------------------------------------


def test_staff_click_from_the_workbench_to_the_register_and_a_need(world: World) -> None:
    need = make_need(world)
    item(world)
    client = web_client(world.users["staff"])
    home = client.get("/staff/").content.decode()
    assert 'href="/staff/needs/"' in home and 'href="/staff/census-imports/"' in home
    listing = client.get("/staff/needs/").content.decode()
    assert f'href="/staff/needs/{need.pk}/"' in listing and "李大爷" in listing
    page = client.get(f"/staff/needs/{need.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    for action in ("edit/", "follow-ups/", "close/"):
        assert f'action="/staff/needs/{need.pk}/{action}"' in html
    # Inputs named after the API's fields.
    for name in ("level", "item_ids", "notes", "status", "note", "reason"):
        assert f'name="{name}"' in html, name


def test_the_days_needs_without_orders_link_to_the_need(world: World) -> None:
    need = make_need(world)
    html = web_client(world.users["staff"]).get(f"/manage/today/{world.community.pk}/").content.decode()
    assert f'href="/staff/needs/{need.pk}/"' in html and 'href="/staff/needs/"' in html


def test_who_sees_the_need_and_its_forms(world: World) -> None:
    need = make_need(world)
    url = f"/staff/needs/{need.pk}/"
    # Operators of the subtree read it, without the forms (follow-ups and closing are the staff's).
    operator = web_client(world.users["operator"]).get(url)
    assert operator.status_code == 200 and 'name="reason"' not in operator.content.decode()
    for persona in ("branch_admin", "head_office_admin"):
        assert 'name="reason"' in web_client(world.users[persona]).get(url).content.decode(), persona
    assert web_client(world.users["staff_next"]).get(url).status_code == 403  # another community
    assert web_client(world.users["other_bank_staff"]).get(url).status_code == 403
    assert web_client(world.users["volunteer"]).get(url).status_code == 403
    assert web_client(world.users["recipient"]).get("/staff/needs/").status_code == 403
    assert web_client(world.users["staff"]).get("/staff/needs/999999/").status_code == 404
    assert web_client(None).get(url).status_code == 302
    # The list shows the subtree only.
    assert "李大爷" not in web_client(world.users["staff_next"]).get("/staff/needs/").content.decode()


# ---- editing, following up, closing ----------------------------------------------------------------------------


def test_staff_edit_a_need_through_the_action(world: World) -> None:
    need = make_need(world)
    meal = item(world)
    client = web_client(world.users["staff"])
    key = key_of(client.get(f"/staff/needs/{need.pk}/").content.decode())
    body = {"idempotency_key": key, "level": "essential", "item_ids": [meal.pk], "notes": "独居，需送餐", "status": ""}
    resp = client.post(f"/staff/needs/{need.pk}/edit/", body)
    assert resp.status_code == 302 and resp["Location"] == f"/staff/needs/{need.pk}/"
    need.refresh_from_db()
    assert (need.level, need.notes, list(need.items.all())) == ("essential", "独居，需送餐", [meal])
    audits = AuditEntry.objects.filter(action="need.update").count()
    assert audits == 1
    # The same form sent twice (a double click) does it once.
    again = client.post(f"/staff/needs/{need.pk}/edit/", body)
    assert again.status_code == 302
    # The form changed under the same key (restored by Back) is refused, not answered "done" with nothing written.
    changed = client.post(f"/staff/needs/{need.pk}/edit/", {**body, "notes": "changed"})
    assert changed.status_code == 409
    need.refresh_from_db()
    assert need.notes == "独居，需送餐" and AuditEntry.objects.filter(action="need.update").count() == 1
    # Moving it on: met is final.
    client.post(f"/staff/needs/{need.pk}/edit/", {**body, "idempotency_key": "k2", "status": "met"})
    need.refresh_from_db()
    assert need.status == "met" and need.met_at is not None


def test_bad_edits_show_every_error_at_once_and_write_nothing(world: World) -> None:
    need = make_need(world)
    foreign = item(world, "外行的服务", bank=world.other_bank)
    client = web_client(world.users["staff"])
    before = snapshot(need)
    body = {"idempotency_key": "e1", "level": "urgent!", "item_ids": [foreign.pk, "x"], "notes": "长" * 501}
    resp = client.post(f"/staff/needs/{need.pk}/edit/", body)
    assert resp.status_code == 422
    html = resp.content.decode()
    assert html.count('class="error"') >= 4  # the summary and one per field: level, item_ids, notes
    for field in ("level", "item_ids", "notes"):
        assert f'id="id_edit_{field}_error_1"' in html, field
    assert "有服务项目不存在或属于另一家时间银行" in html
    assert snapshot(need) == before
    # A closed-status request is for the close form.
    resp = client.post(f"/staff/needs/{need.pk}/edit/", {"level": "general", "status": "closed"})
    assert resp.status_code == 422 and snapshot(need) == before


def test_follow_up_and_close(world: World) -> None:
    need = make_need(world)
    client = web_client(world.users["staff"])
    url = f"/staff/needs/{need.pk}/"
    resp = client.post(
        url + "follow-ups/", {"idempotency_key": "f1", "note": "已电话联系家属", "status": "in_progress"}
    )
    assert resp.status_code == 302
    need.refresh_from_db()
    assert need.status == "in_progress"
    assert list(NeedFollowUp.objects.filter(need=need).values_list("note", "to_status")) == [
        ("已电话联系家属", "in_progress")
    ]
    # A double submit records it once.
    client.post(url + "follow-ups/", {"idempotency_key": "f1", "note": "已电话联系家属", "status": "in_progress"})
    assert NeedFollowUp.objects.filter(need=need).count() == 1
    # An empty note and an empty reason: the errors, nothing written.
    before = snapshot(need)
    assert client.post(url + "follow-ups/", {"idempotency_key": "f2", "note": "  "}).status_code == 422
    assert client.post(url + "close/", {"idempotency_key": "c0", "reason": ""}).status_code == 422
    assert snapshot(need) == before
    resp = client.post(url + "close/", {"idempotency_key": "c1", "reason": "老人已搬到子女家"})
    assert resp.status_code == 302
    need.refresh_from_db()
    assert need.status == "closed" and need.close_reason == "老人已搬到子女家"
    assert AuditEntry.objects.filter(action="need.close").count() == 1
    html = client.get(url).content.decode()
    assert "已关闭" in html and 'name="reason"' not in html  # no forms on a closed need
    # A closed need refuses every change with the reason, 409, and nothing written.
    before = snapshot(need)
    for action, body in (
        ("close/", {"idempotency_key": "c2", "reason": "再关一次"}),
        ("follow-ups/", {"idempotency_key": "f3", "note": "还想跟进"}),
        ("edit/", {"idempotency_key": "e3", "level": "special", "notes": "x"}),
    ):
        resp = client.post(url + action, body)
        assert resp.status_code == 409, action
        assert "这项需求已满足或已关闭" in resp.content.decode(), action
    assert snapshot(need) == before


@pytest.mark.parametrize("persona", ["staff_next", "other_bank_staff", "operator", "volunteer", "recipient"])
def test_others_cannot_change_a_need(world: World, persona: str) -> None:
    need = make_need(world)
    client = web_client(world.users[persona])
    before = snapshot(need)
    url = f"/staff/needs/{need.pk}/"
    for action, body in (
        ("edit/", {"level": "special", "notes": "x"}),
        ("follow-ups/", {"note": "x"}),
        ("close/", {"reason": "x"}),
    ):
        assert client.post(url + action, body).status_code == 403, action
    assert snapshot(need) == before
    assert web_client(world.users["staff"]).post("/staff/needs/999999/close/", {"reason": "x"}).status_code == 404


# ---- the census import ------------------------------------------------------------------------------------------


def upload(client: Any, name: str, data: bytes, **form: Any) -> Any:
    key = key_of(client.get("/staff/census-imports/").content.decode())
    return client.post(
        "/staff/census-imports/", {"idempotency_key": key, "file": SimpleUploadedFile(name, data), **form}
    )


def test_upload_shows_the_dry_run_then_confirm_writes(world: World) -> None:
    rows, good = census_rows(world)
    members = Member.objects.count()
    client = web_client(world.users["head_office_admin"])
    resp = upload(client, "普查.xlsx", xlsx_bytes(rows), org_id=world.bank.pk)
    assert resp.status_code == 302, resp.content.decode()[:2000]
    imp = CensusImport.objects.get()
    assert resp["Location"] == f"/staff/census-imports/{imp.pk}/"
    assert imp.status == "dry_run" and Member.objects.count() == members  # nothing written yet
    report = client.get(resp["Location"])
    html = report.content.decode()
    assert report.status_code == 200
    # Row numbers with their results and reasons, in Chinese.
    assert "<td>3</td>" in html and "<td>14</td>" in html and "<td>9</td>" not in html
    assert "确认导入" in html and "不导入" in html and "将导入" in html
    rejected = client.get(resp["Location"] + "?rows=rejected").content.decode()
    assert "<td>2</td>" not in rejected and "<td>13</td>" in rejected
    # Confirm, twice (a double click): written once.
    key = key_of(html)
    done = client.post(resp["Location"], {"idempotency_key": key})
    assert done.status_code == 302
    client.post(resp["Location"], {"idempotency_key": key})
    imp.refresh_from_db()
    assert imp.status == "confirmed"
    assert Member.objects.count() == members + len(good)
    assert set(good.values()) <= {m.id_number() for m in Member.objects.filter(is_recipient=True)}
    assert "确认导入" not in client.get(resp["Location"]).content.decode()


def test_a_double_upload_keeps_one_dry_run(world: World) -> None:
    rows, _good = census_rows(world)
    client = web_client(world.users["staff"])
    key = key_of(client.get("/staff/census-imports/").content.decode())
    for _ in range(2):
        resp = client.post(
            "/staff/census-imports/",
            {
                "idempotency_key": key,
                "file": SimpleUploadedFile("a.xlsx", xlsx_bytes(rows)),
                "org_id": world.community.pk,
            },
        )
        assert resp.status_code == 302
    assert CensusImport.objects.count() == 1
    assert IdempotentRequest.objects.count() == 1


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("a.pdf", b"%PDF-1.4", "只支持 .xlsx 和 .csv 文件"),
        ("a.xlsx", b"not a zip at all", "无法读取这个 Excel 文件"),
        ("a.xlsx", b"PK\x03\x04garbage", "无法读取这个 Excel 文件"),
        ("a.csv", b"", ""),
        ("bomb.xlsx", shared_strings_bomb(), ""),
    ],
    ids=["pdf", "not-a-zip", "broken-zip", "empty", "shared-strings-bomb"],
)
def test_bad_files_are_refused_with_a_chinese_reason_and_nothing_written(
    world: World, name: str, data: bytes, message: str
) -> None:
    client = web_client(world.users["staff"])
    resp = upload(client, name, data, org_id=world.community.pk)
    assert resp.status_code == 422, resp.status_code
    html = resp.content.decode()
    assert 'id="id_file_error_1"' in html
    if message:
        assert message in html
    assert CensusImport.objects.count() == 0 and IdempotentRequest.objects.count() == 0


def test_the_upload_form_shows_every_error_at_once(world: World) -> None:
    client = web_client(world.users["staff"])
    resp = client.post("/staff/census-imports/", {"idempotency_key": "u1", "org_id": world.other_community.pk})
    assert resp.status_code == 422
    html = resp.content.decode()
    assert 'id="id_file_error_1"' in html and 'id="id_org_id_error_1"' in html
    assert CensusImport.objects.count() == 0


def test_a_huge_file_is_refused(world: World) -> None:
    from timebank.needs import census

    client = web_client(world.users["staff"])
    resp = upload(client, "big.csv", b"x" * (census.MAX_FILE_BYTES + 1), org_id=world.community.pk)
    assert resp.status_code == 422 and "文件太大" in resp.content.decode()
    assert CensusImport.objects.count() == 0


def test_who_may_import(world: World) -> None:
    rows = [HEADER, ["张三", new_id_number(), "男", "", "", "", "顺河社区", "", ""]]
    data = xlsx_bytes(rows)
    # Staff cannot import into another community or another bank: the choice is refused, nothing written.
    staff = web_client(world.users["staff"])
    for org in (world.community2, world.other_community):
        resp = upload(staff, "a.xlsx", data, org_id=org.pk)
        assert resp.status_code == 422 and 'id="id_org_id_error_1"' in resp.content.decode()
        assert "这个机构不在您的管辖范围内" in resp.content.decode()
    assert upload(staff, "a.xlsx", data, org_id="abc").status_code == 422
    for persona in ("operator", "volunteer", "recipient"):
        client = web_client(world.users[persona])
        assert client.get("/staff/census-imports/").status_code == 403, persona
        resp = client.post("/staff/census-imports/", {"file": SimpleUploadedFile("a.xlsx", data)})
        assert resp.status_code == 403, persona
    assert CensusImport.objects.count() == 0
    # One made by staff: the next community's staff, operators and members can neither read nor confirm it.
    assert upload(staff, "a.xlsx", data, org_id=world.community.pk).status_code == 302
    imp = CensusImport.objects.get()
    for persona in ("staff_next", "other_bank_staff", "operator", "volunteer"):
        client = web_client(world.users[persona])
        assert client.get(f"/staff/census-imports/{imp.pk}/").status_code == 403, persona
        assert client.post(f"/staff/census-imports/{imp.pk}/", {"idempotency_key": "x"}).status_code == 403
    imp.refresh_from_db()
    assert imp.status == "dry_run"
    assert web_client(world.users["staff"]).get("/staff/census-imports/999999/").status_code == 404
    # The next community's list does not show it.
    assert "a.xlsx" not in web_client(world.users["staff_next"]).get("/staff/census-imports/").content.decode()


# ---- a double submit at once (PostgreSQL) -----------------------------------------------------------------------


@postgres_only
def test_a_double_submit_at_once_does_each_thing_once(world: World) -> None:
    need = make_need(world)
    url = f"/staff/needs/{need.pk}/"
    body = {"idempotency_key": "a" * 32, "note": "上门看过", "status": "in_progress"}
    answers = fire(world, Call("staff", url + "follow-ups/", body, form=True), "plain", threads=4)
    assert all(a.status < 500 for a in answers), [a.status for a in answers]
    assert NeedFollowUp.objects.filter(need=need).count() == 1
    answers = fire(
        world,
        Call("staff", url + "close/", {"idempotency_key": "b" * 32, "reason": "已搬走"}, form=True),
        "plain",
        threads=4,
    )
    assert all(a.status < 500 for a in answers), [a.status for a in answers]
    assert AuditEntry.objects.filter(action="need.close").count() == 1
    # Two keys (two staff closing at once): one closes, the other is told it is closed already.
    other = make_need(world)
    answers = fire(
        world, Call("staff", f"/staff/needs/{other.pk}/close/", {"reason": "不再需要"}, form=True), "plain", threads=4
    )
    assert sorted({a.status for a in answers}) == [302, 409], [a.status for a in answers]
    assert AuditEntry.objects.filter(action="need.close").count() == 2

    rows = [HEADER, ["张三", new_id_number(), "男", "", "", "", "顺河社区", "", ""]]
    client = web_client(world.users["staff"])
    assert upload(client, "a.xlsx", xlsx_bytes(rows), org_id=world.community.pk).status_code == 302
    imp = CensusImport.objects.get()
    members = Member.objects.count()
    answers = fire(
        world,
        Call("staff", f"/staff/census-imports/{imp.pk}/", {"idempotency_key": "c" * 32}, form=True),
        "plain",
        threads=4,
    )
    assert all(a.status < 500 for a in answers), [a.status for a in answers]
    assert Member.objects.count() == members + 1
