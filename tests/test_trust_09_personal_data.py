"""Finding 9: personal data escapes. Lists mask phones and addresses for every role, the full values only on one
object's endpoint or page, audited; a team leader cannot learn names by adding ids; audit entries hold field
names, not personal values; home coordinates are kept to about 100 m; every .xlsx cell is text.

(The idempotency-token part of finding 9 is tested in its own file.)"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from decimal import Decimal
from typing import Any

from django.utils import timezone
from openpyxl import load_workbook

from tests.conftest import World, error_code, make_member, web_client
from timebank.audit.chain import walk_audit
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.exports.xlsx import Column, write_xlsx
from timebank.members.actions import MemberInput, do_anonymise_member, do_member_leaves, do_update_member
from timebank.members.models import Member
from timebank.orders.models import Order
from timebank.teams import actions as teams
from timebank.teams.models import TeamKind

VIEW = "member.view_personal_data"
FORMULAS = ("=1+1", "+1+2", "-3+4", "@SUM(A1:A2)", '=HYPERLINK("http://evil.example","点我")')


def _views(member: Member) -> int:
    return AuditEntry.objects.filter(action=VIEW, object_id=str(member.pk)).count()


def _order(world: World) -> Order:
    item = do_create_service_item(None, head_office=world.bank, name="助洁", category="mutual_care", tier="ordinary")
    body = {
        "recipient_id": world.members["recipient"].pk,
        "service_item_id": item.pk,
        "scheduled_start": (timezone.now() + dt.timedelta(hours=2)).isoformat(),
        "planned_minutes": 60,
        "payer": "subsidy",
        "channel": "staff",
    }
    resp = world.api("staff").post("/api/v1/orders", body)
    assert resp.status_code == 201, resp.content
    oid = resp.json()["id"]
    resp = world.api("staff").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": world.members["volunteer"].pk})
    assert resp.status_code == 200, resp.content
    # An action's answer is not a place to read them either.
    recipient = world.members["recipient"]
    assert resp.json()["recipient"]["address"] is None and resp.json()["recipient"]["phone"] != recipient.phone
    assert world.api("volunteer").post(f"/api/v1/orders/{oid}/accept").status_code == 200
    return Order.objects.get(pk=oid)


def test_finding_9_order_lists_mask_phone_and_address_for_every_role(world: World) -> None:
    order = _order(world)
    recipient = world.members["recipient"]
    assert recipient.phone and recipient.address
    before = _views(recipient)
    for persona in ("superuser", "head_office_admin", "branch_admin", "staff", "operator", "recipient", "relative"):
        items = world.api(persona).get("/api/v1/orders", {"limit": 200}).json()["items"]
        listed = next(o for o in items if o["id"] == order.pk)
        assert listed["recipient"]["phone"] != recipient.phone and "*" in listed["recipient"]["phone"], persona
        assert listed["recipient"]["address"] is None, persona
    mine = world.api("volunteer").get("/api/v1/orders", {"mine": "true"}).json()["items"]
    assert mine and mine[0]["recipient"]["address"] is None and "*" in mine[0]["recipient"]["phone"]
    assert _views(recipient) == before  # lists show nothing to audit


def test_one_order_shows_contact_details_in_full_and_audits_the_view(world: World) -> None:
    order = _order(world)
    recipient = world.members["recipient"]
    for persona in ("operator", "staff", "volunteer", "relative"):
        before = _views(recipient)
        body = world.api(persona).get(f"/api/v1/orders/{order.pk}").json()
        assert body["recipient"]["phone"] == recipient.phone and body["recipient"]["address"] == recipient.address
        assert _views(recipient) == before + 1, persona
        entry = AuditEntry.objects.filter(action=VIEW, object_id=str(recipient.pk)).latest("pk")
        assert entry.actor_id == world.users[persona].pk
        assert entry.data == {"fields": ["address", "phone"], "via": f"order:{order.pk}"}
    # The recipient reading their own order: nothing to audit.
    before = _views(recipient)
    assert world.api("recipient").get(f"/api/v1/orders/{order.pk}").json()["recipient"]["phone"] == recipient.phone
    assert _views(recipient) == before
    # The staff page of the order shows them, audited.
    before = _views(recipient)
    page = web_client(world.users["staff"]).get(f"/staff/orders/{order.pk}/")
    assert page.status_code == 200 and recipient.phone in page.content.decode()
    assert _views(recipient) == before + 1
    assert walk_audit(f"bank:{world.bank.pk}") == []


def test_member_lists_mask_and_one_member_is_audited(world: World) -> None:
    recipient = world.members["recipient"]
    do_update_member(None, recipient, MemberInput(latitude=Decimal("34.5"), longitude=Decimal("117.7")))
    before = _views(recipient)
    for persona in ("staff", "operator", "head_office_admin"):
        items = world.api(persona).get("/api/v1/members", {"limit": 200}).json()["items"]
        row = next(m for m in items if m["id"] == recipient.pk)
        assert "*" in row["phone"] and row["address"] is None and row["latitude"] is None, persona
    assert _views(recipient) == before
    one = world.api("staff").get(f"/api/v1/members/{recipient.pk}").json()
    assert one["phone"] == recipient.phone and one["address"] == recipient.address and one["latitude"] is not None
    assert _views(recipient) == before + 1
    # An action's answer (approve, suspend, edit) shows them masked.
    patched = world.api("staff").patch(f"/api/v1/members/{recipient.pk}", {"occupation": "退休"}).json()
    assert "*" in patched["phone"] and patched["address"] is None
    # Their own data: in full, not audited.
    me = world.api("recipient").get("/api/v1/me").json()["member"]
    assert me["phone"] == recipient.phone and _views(recipient) == before + 1


def test_hotline_queues_mask_phones_api_and_pages(world: World) -> None:
    from timebank.orgs.models import Rules

    Rules.objects.filter(head_office=world.bank).update(
        welfare_check_every_days=7, welfare_check_categories=["living_alone"]
    )
    elder = make_member(world.community, "独居老人", roles=["recipient"], phone="13712345678")
    Member.objects.filter(pk=elder.pk).update(recipient_categories=["living_alone"])
    items = world.api("operator").get("/api/v1/hotline/welfare-checks/due", {"limit": 200}).json()["items"]
    row = next(i for i in items if i["member_id"] == elder.pk)
    assert row["phone"] == "137****5678"
    page = web_client(world.users["operator"]).get("/hotline/welfare-checks/").content.decode()
    assert "独居老人" in page and "13712345678" not in page and "137****5678" in page
    # The caller screen (one member) shows the number in full, audited.
    before = _views(elder)
    screen = web_client(world.users["operator"]).get(f"/hotline/callers/{elder.pk}/").content.decode()
    assert "13712345678" in screen and _views(elder) == before + 1


def _school(world: World) -> Any:
    team = teams.do_create_team(world.users["staff"], org=world.community, name="顺河志愿队", kind=TeamKind.RESIDENTS)
    teams.do_add_team_member(world.users["staff"], team, world.members["volunteer"], role="leader")
    return team


def test_a_team_leader_cannot_learn_names_by_adding_ids(world: World) -> None:
    team = _school(world)
    leader = world.api("volunteer")
    url = f"/api/v1/teams/{team.pk}/members"
    outsiders = {
        "neighbour": world.members["neighbour"],  # a volunteer of the bank the leader may not read
        "recipient": world.members["recipient"],  # not a volunteer: must not answer differently
        "stranger": world.members["stranger"],  # another bank
    }
    unknown = leader.post(url, {"member_id": 10**9})
    assert unknown.status_code == 404
    for who, member in outsiders.items():
        resp = leader.post(url, {"member_id": member.pk})
        assert (resp.status_code, error_code(resp)) == (404, "member_not_found"), who
        assert member.name not in resp.content.decode(), who
        assert resp.json()["error"]["message"] == unknown.json()["error"]["message"]
    names = {m["name"] for m in leader.get(url).json()["items"]}
    assert names == {world.members["volunteer"].name}
    # Removing is the same: no name of an outsider comes back.
    resp = leader.post(f"{url}/{world.members['neighbour'].pk}/remove")
    assert resp.status_code == 404 and world.members["neighbour"].name not in resp.content.decode()
    # The page refuses the same way.
    page = web_client(world.users["volunteer"]).post(
        f"/teams/{team.pk}/members/", {"member_id": world.members["neighbour"].pk, "role": "member"}
    )
    assert page.status_code == 422 and world.members["neighbour"].name not in page.content.decode()
    # Staff of the member's home may add them; once in the team, the leader knows them.
    staff_next = world.api("staff_next")
    assert staff_next.post(url, {"member_id": world.members["neighbour"].pk}).status_code in (403, 404)
    assert world.api("head_office_admin").post(url, {"member_id": world.members["neighbour"].pk}).status_code == 200
    assert leader.post(f"{url}/{world.members['neighbour'].pk}/remove").status_code == 200
    assert leader.post(url, {"member_id": world.members["neighbour"].pk}).status_code == 200  # a former member


def test_a_leader_adds_a_volunteer_who_signed_up_for_the_teams_activity(world: World) -> None:
    team = _school(world)
    item = do_create_service_item(None, head_office=world.bank, name="讲座", category="health_talks", tier="ordinary")
    start = timezone.now() + dt.timedelta(days=2)
    activity = teams.do_publish_activity(
        world.users["staff"],
        org=world.community,
        team=team,
        data=teams.ActivityInput(
            title="讲座",
            service_item=item,
            place="活动室",
            starts_at=start,
            ends_at=start + dt.timedelta(hours=1),
            places=5,
        ),
    )
    teams.do_sign_up(world.users["neighbour"], activity, world.members["neighbour"])
    resp = world.api("volunteer").post(f"/api/v1/teams/{team.pk}/members", {"member_id": world.members["neighbour"].pk})
    assert resp.status_code == 200, resp.content


def test_audit_rows_hold_field_names_not_personal_values_even_after_anonymisation(world: World) -> None:
    member = make_member(world.community, "张秘密", roles=["volunteer"], phone="13911112222")
    old_number = member.id_number()
    resp = world.api("staff").patch(
        f"/api/v1/members/{member.pk}",
        {
            "name": "张新名",
            "phone": "13933334444",
            "latitude": "34.567891",
            "longitude": "117.654321",
            "birth_date": "1950-01-02",
            "address": "秘密路 8 号",
            "occupation": "教师",
        },
    )
    assert resp.status_code == 200, resp.content
    entry = AuditEntry.objects.filter(action="member.update", object_id=str(member.pk)).latest("pk")
    assert set(entry.data["fields"]) >= {"name", "phone", "latitude", "longitude", "birth_date", "occupation"}
    assert entry.data["values"] == {}  # which fields changed, not what they became
    do_member_leaves(None, member)
    do_anonymise_member(None, member)
    trail = json.dumps([e.data for e in AuditEntry.objects.all()], ensure_ascii=False)
    for secret in ("张秘密", "张新名", "13911112222", "13933334444", "34.56", "117.65", "1950-01-02", "秘密路"):
        assert secret not in trail, secret
    assert old_number not in trail and old_number[-6:] not in trail
    assert walk_audit(f"bank:{world.bank.pk}") == []


def test_home_coordinates_are_kept_to_about_100_m(world: World) -> None:
    resp = world.api("staff").post(
        "/api/v1/members",
        {"name": "坐标", "home_org_id": world.community.pk, "latitude": "34.567891", "longitude": "-117.654321"},
    )
    assert resp.status_code == 201, resp.content
    member = Member.objects.get(pk=resp.json()["id"])
    assert member.latitude == Decimal("34.568") and member.longitude == Decimal("-117.654")
    do_update_member(None, member, MemberInput(latitude=Decimal("1.0000049")))
    member.refresh_from_db()
    assert member.latitude == Decimal("1.000")


def _body(resp: Any) -> bytes:
    return b"".join(resp.streaming_content) if resp.streaming else bytes(resp.content)


def _assert_all_text(data: bytes) -> list[tuple[Any, ...]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name) and b"<f " not in archive.read(name), name
    ws = load_workbook(io.BytesIO(data)).worksheets[0]
    return list(ws.iter_rows(values_only=True))


def test_a_name_starting_with_a_formula_sign_stays_text_in_the_school_hours_export(world: World) -> None:
    school = teams.do_create_team(world.users["staff"], org=world.community, name="=学校", kind=TeamKind.SCHOOL)
    for i, name in enumerate(FORMULAS):
        student = make_member(world.community, name[:50], born=dt.date(2008, 1, 1 + i))
        teams.do_add_team_member(world.users["staff"], school, student, external_id=f"=A{i}")
    resp = world.api("staff").get(f"/api/v1/teams/{school.pk}/school-hours.xlsx", {"term": "2024-2025-2"})
    assert resp.status_code == 200
    rows = _assert_all_text(_body(resp))
    assert {r[2] for r in rows[2:]} == {n[:50] for n in FORMULAS}
    assert {r[1] for r in rows[2:]} == {f"=A{i}" for i in range(len(FORMULAS))}
    # The page's download is the same workbook.
    page = web_client(world.users["staff"]).get(f"/teams/{school.pk}/export/", {"term": "2024-2025-2"})
    assert page.status_code == 200
    _assert_all_text(_body(page))


def test_every_register_export_writes_text_cells() -> None:
    out = io.BytesIO()
    write_xlsx(out, title="t", columns=[Column("姓名", lambda r: r)], rows=list(FORMULAS), reveal=True)
    rows = _assert_all_text(out.getvalue())
    assert [r[0] for r in rows[1:]] == list(FORMULAS)


def test_the_data_migration_rounds_homes_stored_before(world: World) -> None:
    import importlib

    from django.apps import apps

    migration = importlib.import_module("timebank.needs.migrations.0002_round_member_home_coordinates")
    member = world.members["recipient"]
    Member.objects.filter(pk=member.pk).update(latitude=Decimal("34.567891"), longitude=Decimal("117.654321"))
    migration.round_homes(apps, None)
    member.refresh_from_db()
    assert (member.latitude, member.longitude) == (Decimal("34.568"), Decimal("117.654"))
