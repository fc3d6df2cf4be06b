"""Finding 7 of issue 12, four eyes (四眼原则): the second pair of eyes belongs to a different person.

An attacker got their own large credits approved with a login they controlled: one they created with
`POST /staff`, or a colleague's after resetting its password. A decider is now refused (403
`approver_not_independent`) when the maker created, reset, re-activated, moved or re-roled the deciding
login (or a login that did so to it, and so on), when the decider reset, re-activated, moved or re-roled
the maker's login, or when the deciding login was created after the credit was requested. Approving also
checks the member as they are now: suspended, left or in another bank is 409 `member_not_active`, and the
decider must reach the member's current home.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.conftest import Api, World, error_code, web_client
from timebank.approvals.models import Approval, ApprovalState
from timebank.ledger.models import Account
from timebank.members.actions import do_member_leaves, do_suspend_member
from timebank.members.models import Member
from timebank.orgs.actions import do_create_staff
from timebank.orgs.models import User

ADJUST = "/api/v1/ledger/adjustments"
PW = "pass-word-1"


def earned(member: Member) -> int:
    return Account.objects.get(member=member, kind="earned").balance_minutes


def token(username: str, password: str) -> str:
    r = Client().post(
        "/api/v1/auth/token", {"username": username, "password": password}, content_type="application/json"
    )
    assert r.status_code == 200, r.content
    return str(r.json()["token"])


def bearer(tok: str) -> Api:
    api = Api(None)
    api.headers = {"HTTP_AUTHORIZATION": f"Bearer {tok}"}
    return api


def big(api: Api, w: World, key: str, member: str = "volunteer") -> int:
    r = api.post(
        ADJUST,
        {
            "member_id": w.members[member].pk,
            "minutes": 50_000,
            "bucket": "earned",
            "reason": "补录",
            "idempotency_key": key,
        },
    )
    assert r.status_code == 202, r.content
    return int(r.json()["approval_id"])


def take_over(w: World, admin: str, target: User) -> Api:
    """`admin` resets `target`'s password, logs in with it and chooses a new one: now they are `target`."""
    tmp = w.api(admin).post(f"/api/v1/staff/{target.pk}/password-reset").json()["temporary_password"]
    t = token(target.username, tmp)
    assert (
        bearer(t).post("/api/v1/me/password", {"old_password": tmp, "new_password": "mine-now-77x"}).status_code == 200
    )
    return bearer(t)


def superuser_staff(w: World, username: str, org: Any, role: str = "staff") -> User:
    return do_create_staff(w.users["superuser"], org=org, username=username, password=PW, name=username, role=role)


def assert_refused(resp: Any, w: World, approval_id: int, before: int, code: str = "approver_not_independent") -> None:
    assert resp.status_code == 403, resp.content
    assert error_code(resp) == code
    assert earned(w.members["volunteer"]) == before
    assert Approval.objects.get(pk=approval_id).state == ApprovalState.PENDING


def test_finding_7_maker_cannot_approve_with_a_login_they_created(world: World) -> None:
    w = world
    before = earned(w.members["volunteer"])
    approval_id = big(w.api("head_office_admin"), w, "k1")
    made = w.api("head_office_admin").post(
        "/api/v1/staff",
        {"username": "sock", "password": "sock-pass-word-9", "name": "sock", "org_id": w.community.pk, "role": "staff"},
    )
    assert made.status_code == 201
    resp = bearer(token("sock", "sock-pass-word-9")).post(f"/api/v1/approvals/{approval_id}/approve")
    assert_refused(resp, w, approval_id, before)


def test_finding_7_a_login_the_maker_created_beforehand_cannot_approve_either(world: World) -> None:
    w = world
    made = w.api("head_office_admin").post(
        "/api/v1/staff",
        {"username": "sock", "password": "sock-pass-word-9", "name": "sock", "org_id": w.community.pk, "role": "staff"},
    )
    assert made.status_code == 201
    sock = bearer(token("sock", "sock-pass-word-9"))
    before = earned(w.members["volunteer"])
    approval_id = big(w.api("head_office_admin"), w, "k1")
    assert_refused(sock.post(f"/api/v1/approvals/{approval_id}/approve"), w, approval_id, before)
    # Rejecting is deciding too.
    resp = sock.post(f"/api/v1/approvals/{approval_id}/reject", {"reason": "x"})
    assert_refused(resp, w, approval_id, before)


def test_finding_7_nor_a_login_created_by_a_login_the_maker_created(world: World) -> None:
    """A chain of socks prepared in advance: the maker's branch admin creates the approver."""
    w = world
    made = w.api("head_office_admin").post(
        "/api/v1/staff",
        {
            "username": "sock1",
            "password": "sock-pass-word-9",
            "name": "s1",
            "org_id": w.branch.pk,
            "role": "branch_admin",
        },
    )
    assert made.status_code == 201
    made = bearer(token("sock1", "sock-pass-word-9")).post(
        "/api/v1/staff",
        {"username": "sock2", "password": "sock-pass-word-9", "name": "s2", "org_id": w.community.pk, "role": "staff"},
    )
    assert made.status_code == 201
    before = earned(w.members["volunteer"])
    approval_id = big(w.api("head_office_admin"), w, "k1")
    resp = bearer(token("sock2", "sock-pass-word-9")).post(f"/api/v1/approvals/{approval_id}/approve")
    assert_refused(resp, w, approval_id, before)


def test_finding_7_maker_cannot_approve_as_a_colleague_whose_password_they_reset(world: World) -> None:
    w = world
    before = earned(w.members["volunteer"])
    approval_id = big(w.api("branch_admin"), w, "k2")
    as_staff = take_over(w, "branch_admin", w.users["staff"])
    assert_refused(as_staff.post(f"/api/v1/approvals/{approval_id}/approve"), w, approval_id, before)


def test_finding_7_on_the_page_a_colleague_whose_password_the_maker_reset_cannot_approve(world: World) -> None:
    w = world
    before = earned(w.members["volunteer"])
    approval_id = big(w.api("branch_admin"), w, "k2")
    take_over(w, "branch_admin", w.users["staff"])
    staff = User.objects.get(pk=w.users["staff"].pk)
    page = web_client(staff).get("/staff/approvals/").content.decode()
    assert f"approval-{approval_id}" in page and "不是同一个人" in page
    assert f"/staff/approvals/{approval_id}/approve/" not in page  # no button for a login the maker holds
    resp = web_client(staff).post(f"/staff/approvals/{approval_id}/approve/", follow=True)
    assert resp.status_code == 200
    assert "不是同一个人" in resp.content.decode()
    assert earned(w.members["volunteer"]) == before
    assert Approval.objects.get(pk=approval_id).state == ApprovalState.PENDING


def test_finding_7_decider_cannot_approve_what_they_asked_for_through_a_login_they_reset(world: World) -> None:
    """The other way round: the admin takes over a colleague's login, asks as them, approves as themselves."""
    w = world
    as_staff = take_over(w, "branch_admin", w.users["staff"])
    before = earned(w.members["volunteer"])
    approval_id = big(as_staff, w, "k3")
    resp = w.api("branch_admin").post(f"/api/v1/approvals/{approval_id}/approve")
    assert_refused(resp, w, approval_id, before)


def test_finding_7_a_login_the_maker_reactivated_cannot_approve(world: World) -> None:
    w = world
    staff = w.users["staff"]
    assert w.api("branch_admin").patch(f"/api/v1/staff/{staff.pk}", {"is_active": False}).status_code == 200
    assert w.api("branch_admin").patch(f"/api/v1/staff/{staff.pk}", {"is_active": True}).status_code == 200
    before = earned(w.members["volunteer"])
    approval_id = big(w.api("branch_admin"), w, "k4")
    resp = bearer(token("staff", PW)).post(f"/api/v1/approvals/{approval_id}/approve")
    assert_refused(resp, w, approval_id, before)


def test_finding_7_a_login_created_after_the_request_cannot_approve(world: World) -> None:
    """Even made by someone else (here the superuser): the approver was there when the credit was asked."""
    w = world
    before = earned(w.members["volunteer"])
    approval_id = big(w.api("branch_admin"), w, "k5")
    late = superuser_staff(w, "late_staff", w.community)
    resp = bearer(token(late.username, PW)).post(f"/api/v1/approvals/{approval_id}/approve")
    assert_refused(resp, w, approval_id, before)


def test_finding_7_an_independent_colleague_still_approves(world: World) -> None:
    """Logins the maker never touched: created (or reset, or disabled) by someone else, before the request."""
    w = world
    two = superuser_staff(w, "staff_two", w.community)
    tmp = w.api("superuser").post(f"/api/v1/staff/{two.pk}/password-reset").json()["temporary_password"]
    t = token("staff_two", tmp)
    assert (
        bearer(t).post("/api/v1/me/password", {"old_password": tmp, "new_password": "own-choice-55q"}).status_code
        == 200
    )
    # The maker disabling a login is no control over it (someone else re-enables it).
    assert w.api("branch_admin").patch(f"/api/v1/staff/{w.users['staff'].pk}", {"is_active": False}).status_code == 200
    before = earned(w.members["volunteer"])
    first = big(w.api("branch_admin"), w, "k6")
    second = big(w.api("head_office_admin"), w, "k7")
    ok = bearer(t).post(f"/api/v1/approvals/{first}/approve")
    assert ok.status_code == 200, ok.content
    # The head-office admin created none of the personas (the superuser did): the branch admin approves.
    ok = w.api("branch_admin").post(f"/api/v1/approvals/{second}/approve")
    assert ok.status_code == 200, ok.content
    assert earned(w.members["volunteer"]) == before + 100_000


@pytest.mark.parametrize("leaves", [do_suspend_member, do_member_leaves])
def test_finding_7_approving_a_credit_to_a_member_no_longer_active_is_409(world: World, leaves: Any) -> None:
    w = world
    two = superuser_staff(w, "staff_two", w.community)
    before = earned(w.members["volunteer"])
    approval_id = big(w.api("branch_admin"), w, "k8")
    leaves(w.users["superuser"], Member.objects.get(pk=w.members["volunteer"].pk))
    resp = bearer(token(two.username, PW)).post(f"/api/v1/approvals/{approval_id}/approve")
    assert resp.status_code == 409, resp.content
    assert error_code(resp) == "member_not_active"
    assert earned(w.members["volunteer"]) == before
    assert Approval.objects.get(pk=approval_id).state == ApprovalState.PENDING
    # It can still be rejected.
    resp = bearer(token(two.username, PW)).post(f"/api/v1/approvals/{approval_id}/reject", {"reason": "已退出"})
    assert resp.status_code == 200, resp.content


def test_finding_7_the_decider_must_reach_the_members_current_home(world: World) -> None:
    """The member moved to another branch while the credit waited: the old branch's admin no longer decides."""
    w = world
    before = earned(w.members["volunteer"])
    approval_id = big(w.api("staff"), w, "k9")
    moved = w.api("head_office_admin").patch(
        f"/api/v1/members/{w.members['volunteer'].pk}", {"home_org_id": w.community2.pk}
    )
    assert moved.status_code == 200, moved.content
    resp = w.api("branch_admin").post(f"/api/v1/approvals/{approval_id}/approve")
    assert_refused(resp, w, approval_id, before, code="outside_subtree")
    ok = w.api("head_office_admin").post(f"/api/v1/approvals/{approval_id}/approve")
    assert ok.status_code == 200, ok.content
