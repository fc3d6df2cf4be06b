"""Members: registration and approval, moving home (通存通兑), relatives, personal data."""

from __future__ import annotations

from tests.conftest import World, error_code, new_id_number
from timebank.audit.models import AuditEntry
from timebank.ledger import actions
from timebank.members.models import Member


def test_self_registration_waits_for_approval_by_staff(world: World) -> None:
    body = {
        "name": "新会员",
        "home_org_id": world.community.pk,
        "id_number": new_id_number(),
        "roles": ["volunteer"],
        "login": {"username": "newbie", "password": "newbie-pass-1"},
    }
    resp = world.api("anonymous").post("/api/v1/register", body)
    assert resp.status_code == 201, resp.content
    member = resp.json()
    assert member["status"] == "pending"
    # The new login works but cannot move credits until approved.
    token = world.api("anonymous").post("/api/v1/auth/token", {"username": "newbie", "password": "newbie-pass-1"})
    assert token.status_code == 200 and token.json()["member_id"] == member["id"]
    # Staff of another community cannot approve; staff of this one can.
    assert world.api("staff_next").post(f"/api/v1/members/{member['id']}/approve").status_code == 403
    approved = world.api("staff").post(f"/api/v1/members/{member['id']}/approve")
    assert approved.status_code == 200 and approved.json()["status"] == "active"
    again = world.api("staff").post(f"/api/v1/members/{member['id']}/approve")
    assert again.status_code == 409 and error_code(again) == "invalid_status"


def test_staff_created_members_are_active_at_once(world: World) -> None:
    resp = world.api("staff").post("/api/v1/members", {"name": "张大妈", "home_org_id": world.community.pk})
    assert resp.status_code == 201 and resp.json()["status"] == "active"


def test_moving_home_keeps_every_credit(world: World) -> None:
    volunteer = world.members["volunteer"]
    actions.do_adjustment(None, member=volunteer, minutes=240, bucket="reserve", reason="opening")
    before = world.api("volunteer").get(f"/api/v1/members/{volunteer.pk}/balance").json()
    # Staff of one community cannot move a member to a community outside their subtree.
    resp = world.api("staff").patch(f"/api/v1/members/{volunteer.pk}", {"home_org_id": world.community2.pk})
    assert resp.status_code == 403
    # The head office's admin holds both in their subtree.
    resp = world.api("head_office_admin").patch(f"/api/v1/members/{volunteer.pk}", {"home_org_id": world.community2.pk})
    assert resp.status_code == 200 and resp.json()["home_org_id"] == world.community2.pk
    assert world.api("volunteer").get(f"/api/v1/members/{volunteer.pk}/balance").json() == before
    # Now the new community's staff look after them, and the old one's no longer see them.
    assert world.api("staff_next").get(f"/api/v1/members/{volunteer.pk}").status_code == 200
    assert world.api("staff").get(f"/api/v1/members/{volunteer.pk}").status_code == 403
    # To another bank it is a conflict: that is the inter-bank move.
    resp = world.api("superuser").patch(f"/api/v1/members/{volunteer.pk}", {"home_org_id": world.other_community.pk})
    assert resp.status_code == 409 and error_code(resp) == "other_bank"


def test_relatives_are_symmetric(world: World) -> None:
    a, b = world.members["volunteer"], world.members["neighbour"]
    resp = world.api("head_office_admin").post(
        f"/api/v1/members/{a.pk}/relatives", {"relative_id": b.pk, "relation": "姐妹"}
    )
    assert resp.status_code == 201
    assert [r["relative_id"] for r in world.api("volunteer").get(f"/api/v1/members/{a.pk}/relatives").json()] == [b.pk]
    assert [r["relative_id"] for r in world.api("neighbour").get(f"/api/v1/members/{b.pk}/relatives").json()] == [a.pk]
    # Now each may read the other's balance.
    assert world.api("neighbour").get(f"/api/v1/members/{a.pk}/balance").status_code == 200


def test_id_number_is_encrypted_masked_and_its_viewing_audited(world: World) -> None:
    number = new_id_number()
    resp = world.api("staff").post(
        "/api/v1/members", {"name": "身份证测试", "home_org_id": world.community.pk, "id_number": number}
    )
    member_id = resp.json()["id"]
    assert resp.json()["id_number_masked"] == number[:4] + "*" * 10 + number[-4:]
    assert number not in resp.content.decode()
    stored = Member.objects.get(pk=member_id)
    assert number not in stored.id_number_encrypted and number[-6:] not in stored.id_number_hash
    # Operators read members but do not see the number; staff do, and the view is on the audit chain.
    assert world.api("operator").get(f"/api/v1/members/{member_id}/id-number").status_code == 403
    seen = AuditEntry.objects.filter(action="member.view_id_number", object_id=str(member_id)).count()
    shown = world.api("staff").get(f"/api/v1/members/{member_id}/id-number")
    assert shown.status_code == 200 and shown.json()["id_number"] == number
    assert AuditEntry.objects.filter(action="member.view_id_number", object_id=str(member_id)).count() == seen + 1


def test_lists_mask_phones(world: World) -> None:
    items = world.api("staff").get("/api/v1/members").json()["items"]
    assert items and all("****" in m["phone"] for m in items if m["phone"])
    one = world.api("staff").get(f"/api/v1/members/{items[0]['id']}").json()
    assert "*" not in one["phone"]


def test_same_id_number_is_allowed_in_another_bank(world: World) -> None:
    number = new_id_number()
    assert (
        world.api("staff")
        .post("/api/v1/members", {"name": "甲", "home_org_id": world.community.pk, "id_number": number})
        .status_code
        == 201
    )
    dup = world.api("staff").post(
        "/api/v1/members", {"name": "乙", "home_org_id": world.community.pk, "id_number": number}
    )
    assert dup.status_code == 409 and error_code(dup) == "duplicate_id_number"
    other = world.api("other_bank_staff").post(
        "/api/v1/members", {"name": "丙", "home_org_id": world.other_community.pk, "id_number": number}
    )
    assert other.status_code == 201


def test_english_messages_follow_accept_language(world: World) -> None:
    resp = world.api("staff").post(
        "/api/v1/members",
        {"name": "x", "home_org_id": world.community.pk, "id_number": "110105194912310021"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert resp.status_code == 422
    assert "check digit" in resp.json()["error"]["message"]
    zh = world.api("staff").post(
        "/api/v1/members", {"name": "x", "home_org_id": world.community.pk, "id_number": "110105194912310021"}
    )
    assert "校验位" in zh.json()["error"]["message"]
