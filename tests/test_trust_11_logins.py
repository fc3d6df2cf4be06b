"""Finding 11 of issue 12: passwords and logins (the contract's "Passwords and logins").

A login changes its own password; staff reset a member's login and admins a staff login (a temporary password
shown once, a forced change at the next login); suspended and departed members and disabled staff logins can
no longer log in and their tokens answer 401 at once; the lockout is keyed on username and client address, so
a stranger elsewhere cannot keep an elder out."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from tests.conftest import Api, World, make_member, web_client
from timebank.audit.models import AuditEntry
from timebank.members.actions import do_member_leaves, do_reactivate_member, do_suspend_member
from timebank.orgs.actions import do_create_staff, do_issue_token
from timebank.orgs.models import ApiToken, User

PW = "pass-word-1"


def token_for(username: str, password: str, *, address: str = "127.0.0.1") -> Any:
    return Client().post(
        "/api/v1/auth/token",
        {"username": username, "password": password},
        content_type="application/json",
        REMOTE_ADDR=address,
    )


def bearer(token: str) -> Api:
    api = Api(None)
    api.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    return api


def audit_text(action: str) -> str:
    return " ".join(str(e.data) for e in AuditEntry.objects.filter(action=action))


# The finding itself --------------------------------------------------------------------------------------------


def test_finding_11_passwords_change_and_reset_departed_logins_close_and_strangers_cannot_lock_elders_out(
    world: World,
) -> None:
    # A member changes their own password.
    volunteer = world.api("volunteer")
    resp = volunteer.post("/api/v1/me/password", {"old_password": PW, "new_password": "a-new-secret-7"})
    assert resp.status_code == 200, resp.content
    assert token_for("volunteer", "a-new-secret-7").status_code == 200
    assert token_for("volunteer", PW).status_code == 401

    # Staff of the elder's community reset the elder's forgotten password: shown once, changed at next login.
    elder = world.members["recipient"]
    resp = world.api("staff").post(f"/api/v1/members/{elder.pk}/password-reset")
    assert resp.status_code == 200, resp.content
    temporary = resp.json()["temporary_password"]
    assert token_for("recipient", PW).status_code == 401
    answer = token_for("recipient", temporary)
    assert answer.status_code == 200 and answer.json()["must_change_password"] is True

    # Suspended: the member's existing token answers 401 at once, and no new login.
    neighbour = world.api("neighbour")
    assert neighbour.get("/api/v1/me").status_code == 200
    do_suspend_member(world.users["staff_next"], world.members["neighbour"])
    assert neighbour.get("/api/v1/me").status_code == 401
    assert token_for("neighbour", PW).status_code == 401

    # A stranger guessing from elsewhere locks only themselves out; the elder at home still logs in.
    for _ in range(12):
        token_for("relative", "wrong-guess-1", address="203.0.113.9")
    assert token_for("relative", PW, address="203.0.113.9").status_code in (403, 429)
    assert token_for("relative", PW, address="192.0.2.20").status_code == 200


# POST /me/password ---------------------------------------------------------------------------------------------


def test_own_password_change_keeps_the_calling_token_and_revokes_the_others(world: World) -> None:
    first = token_for("volunteer", PW).json()["token"]
    second = token_for("volunteer", PW).json()["token"]
    resp = bearer(first).post("/api/v1/me/password", {"old_password": PW, "new_password": "a-new-secret-7"})
    assert resp.status_code == 200, resp.content
    assert resp.json() == {"changed": True, "must_change_password": False}
    assert bearer(first).get("/api/v1/me").status_code == 200
    assert bearer(second).get("/api/v1/me").status_code == 401
    entries = AuditEntry.objects.filter(action="login.password_change")
    assert entries.count() == 1
    assert "a-new-secret-7" not in audit_text("login.password_change") and PW not in audit_text("login.password_change")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"old_password": "not-my-password", "new_password": "a-new-secret-7"}, 403, None),
        ({"old_password": PW, "new_password": "short"}, 422, "new_password"),
        ({"old_password": PW, "new_password": PW}, 422, "new_password"),
        ({"old_password": PW, "new_password": "x" * 129}, 422, "new_password"),
        ({"old_password": PW, "new_password": 12345678}, 422, "new_password"),
        ({"old_password": PW}, 422, "new_password"),
    ],
)
def test_own_password_change_refuses_bad_input(
    world: World, body: dict[str, Any], status: int, field: str | None
) -> None:
    api = world.api("staff")
    resp = api.post("/api/v1/me/password", body)
    assert resp.status_code == status, resp.content
    if field:
        assert field in resp.json()["error"]["fields"]
    else:
        assert resp.json()["error"]["code"] == "wrong_password"
    world.users["staff"].refresh_from_db()
    assert world.users["staff"].check_password(PW)
    assert not AuditEntry.objects.filter(action="login.password_change").exists()


def test_wrong_old_passwords_count_like_failed_logins(world: World) -> None:
    """A stolen token cannot guess its way to a new password (and lock the owner out)."""
    thief = world.api("volunteer")
    body = {"old_password": "guess-guess-1", "new_password": "a-new-secret-7"}
    for _ in range(10):
        assert thief.post("/api/v1/me/password", body, REMOTE_ADDR="203.0.113.9").status_code in (403, 429)
    right = {"old_password": PW, "new_password": "a-new-secret-7"}
    resp = thief.post("/api/v1/me/password", right, REMOTE_ADDR="203.0.113.9")
    assert resp.status_code == 429 and resp.json()["error"]["code"] == "locked_out"
    world.users["volunteer"].refresh_from_db()
    assert world.users["volunteer"].check_password(PW)
    # The owner elsewhere still logs in and changes it.
    key = token_for("volunteer", PW, address="192.0.2.20").json()["token"]
    assert bearer(key).post("/api/v1/me/password", right, REMOTE_ADDR="192.0.2.20").status_code == 200


def test_own_password_change_needs_a_login(world: World) -> None:
    resp = world.api("anonymous").post("/api/v1/me/password", {"old_password": PW, "new_password": "a-new-secret-7"})
    assert resp.status_code == 401


# Password resets -----------------------------------------------------------------------------------------------

MEMBER_RESET = {
    "superuser": 200,
    "head_office_admin": 200,
    "branch_admin": 200,
    "staff": 200,
    "staff_next": 403,
    "operator": 403,
    "assessor": 403,
    "other_bank_admin": 403,
    "other_bank_staff": 403,
    "volunteer": 403,
    "relative": 403,
    "neighbour": 403,
    "stranger": 403,
    "anonymous": 401,
}


@pytest.mark.parametrize(("persona", "status"), sorted(MEMBER_RESET.items()))
def test_member_password_reset_by_every_role(world: World, persona: str, status: int) -> None:
    elder = world.members["recipient"]
    resp = world.api(persona).post(f"/api/v1/members/{elder.pk}/password-reset")
    assert resp.status_code == status, resp.content
    elder.user.refresh_from_db()  # type: ignore[union-attr]
    assert elder.user.check_password(PW) is (status != 200)  # type: ignore[union-attr]
    assert elder.user.must_change_password is (status == 200)  # type: ignore[union-attr]


def test_a_reset_revokes_old_tokens_and_the_new_login_may_only_change_its_password(world: World) -> None:
    elder = world.members["recipient"]
    old = world.api("recipient")
    assert old.get("/api/v1/me").status_code == 200
    temporary = world.api("staff").post(f"/api/v1/members/{elder.pk}/password-reset").json()["temporary_password"]
    assert len(temporary) >= 8
    assert old.get("/api/v1/me").status_code == 401
    answer = token_for("recipient", temporary).json()
    assert answer["must_change_password"] is True
    forced = bearer(answer["token"])
    for method, url in (
        ("get", "/api/v1/me"),
        ("get", f"/api/v1/members/{elder.pk}/statement"),
        ("get", "/api/v1/orders"),
    ):
        resp = forced.call(method, url)
        assert resp.status_code == 403, url
        assert resp.json()["error"]["code"] == "password_change_required"
    # Keeping the temporary password is not a change.
    assert forced.post("/api/v1/me/password", {"old_password": temporary, "new_password": temporary}).status_code == 422
    resp = forced.post("/api/v1/me/password", {"old_password": temporary, "new_password": "my-own-secret-8"})
    assert resp.status_code == 200, resp.content
    assert forced.get("/api/v1/me").status_code == 200
    answer = token_for("recipient", "my-own-secret-8").json()
    assert answer["must_change_password"] is False
    assert token_for("recipient", temporary).status_code == 401
    # Audited, never with the password.
    assert AuditEntry.objects.filter(action="login.password_reset").count() == 1
    assert temporary not in audit_text("login.password_reset")


def test_a_member_without_a_login_has_nothing_to_reset(world: World) -> None:
    member = make_member(world.community, "孙奶奶", roles=["recipient"])
    resp = world.api("staff").post(f"/api/v1/members/{member.pk}/password-reset")
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "no_login"
    assert world.api("staff").post("/api/v1/members/999999/password-reset").status_code == 404


# Each persona resetting the login of the community's staff ("staff").
STAFF_RESET = {
    "superuser": 200,
    "head_office_admin": 200,
    "branch_admin": 200,
    "staff": 403,  # their own login: /me/password
    "staff_next": 403,
    "operator": 403,
    "assessor": 403,
    "other_bank_admin": 403,
    "other_bank_staff": 403,
    "volunteer": 403,
    "anonymous": 401,
}


@pytest.mark.parametrize(("persona", "status"), sorted(STAFF_RESET.items()))
def test_staff_password_reset_by_every_role(world: World, persona: str, status: int) -> None:
    target = world.users["staff"]
    resp = world.api(persona).post(f"/api/v1/staff/{target.pk}/password-reset")
    assert resp.status_code == status, resp.content
    target.refresh_from_db()
    assert target.check_password(PW) is (status != 200)
    if status == 200:
        assert set(resp.json()) == {"temporary_password"}


def test_admins_never_reset_a_higher_login_nor_a_member_login_as_staff(world: World) -> None:
    # The branch admin reaches neither the head office's admin nor a member's login through /staff.
    api = world.api("branch_admin")
    assert api.post(f"/api/v1/staff/{world.users['head_office_admin'].pk}/password-reset").status_code == 403
    assert api.post(f"/api/v1/staff/{world.users['volunteer'].pk}/password-reset").status_code == 404
    assert api.post(f"/api/v1/staff/{world.users['superuser'].pk}/password-reset").status_code in (403, 404)
    # A peer branch admin in the same branch: the same role, inside the subtree.
    peer = do_create_staff(
        world.users["superuser"], org=world.branch, username="peer", password=PW, name="peer", role="branch_admin"
    )
    assert api.post(f"/api/v1/staff/{peer.pk}/password-reset").status_code == 200


# GET/PATCH /staff ----------------------------------------------------------------------------------------------


def usernames(resp: Any) -> set[str]:
    assert resp.status_code == 200, resp.content
    return {row["username"] for row in resp.json()["items"]}


def test_staff_list_shows_the_callers_subtree(world: World) -> None:
    bank_staff = {"head_office_admin", "branch_admin", "staff", "staff_next", "operator", "assessor", "supervisor"}
    assert usernames(world.api("head_office_admin").get("/api/v1/staff")) == bank_staff
    assert usernames(world.api("branch_admin").get("/api/v1/staff")) == {"branch_admin", "staff", "supervisor"}
    assert usernames(world.api("staff").get("/api/v1/staff")) == {"staff"}
    assert usernames(world.api("other_bank_admin").get("/api/v1/staff")) == {"other_bank_admin", "other_bank_staff"}
    for persona in ("operator", "assessor", "volunteer", "recipient"):
        assert world.api(persona).get("/api/v1/staff").status_code == 403, persona
    assert world.api("anonymous").get("/api/v1/staff").status_code == 401
    row = world.api("branch_admin").get("/api/v1/staff", {"role": "staff"}).json()["items"][0]
    assert row == {
        "id": world.users["staff"].pk,
        "username": "staff",
        "name": "staff",
        "org_id": world.community.pk,
        "role": "staff",
        "is_active": True,
    }
    page = world.api("head_office_admin").get("/api/v1/staff", {"limit": 4}).json()
    assert len(page["items"]) == 4 and page["next_cursor"]
    rest = world.api("head_office_admin").get("/api/v1/staff", {"limit": 4, "cursor": page["next_cursor"]}).json()
    assert len(rest["items"]) == len(bank_staff) - 4 and rest["next_cursor"] is None
    assert world.api("head_office_admin").get("/api/v1/staff", {"limit": 0}).status_code == 422


# Each persona moving the community's staff to the outlet (inside the community, the branch and the bank).
STAFF_PATCH = {
    "superuser": 200,
    "head_office_admin": 200,
    "branch_admin": 200,
    "staff": 403,
    "staff_next": 403,
    "operator": 403,
    "assessor": 403,
    "other_bank_admin": 403,
    "other_bank_staff": 403,
    "volunteer": 403,
    "anonymous": 401,
}


@pytest.mark.parametrize(("persona", "status"), sorted(STAFF_PATCH.items()))
def test_staff_patch_by_every_role(world: World, persona: str, status: int) -> None:
    target = world.users["staff"]
    resp = world.api(persona).patch(f"/api/v1/staff/{target.pk}", {"org_id": world.outlet.pk})
    assert resp.status_code == status, resp.content
    target.refresh_from_db()
    assert target.org_id == (world.outlet.pk if status == 200 else world.community.pk)
    if status == 200:
        assert resp.json()["org_id"] == world.outlet.pk
        assert AuditEntry.objects.filter(action="staff.update", object_id=str(target.pk)).count() == 1


def test_staff_patch_keeps_to_the_callers_subtree_and_rank(world: World) -> None:
    api = world.api("branch_admin")
    target = world.users["staff"]
    # Out of the branch: 403, nothing changed.
    resp = api.patch(f"/api/v1/staff/{target.pk}", {"org_id": world.community2.pk})
    assert resp.status_code == 403
    resp = api.patch(f"/api/v1/staff/{target.pk}", {"org_id": world.other_community.pk})
    assert resp.status_code == 403
    # Never above the caller's own role.
    resp = api.patch(f"/api/v1/staff/{target.pk}", {"role": "head_office_admin"})
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "role_too_high"
    # A role that does not fit the org.
    resp = api.patch(f"/api/v1/staff/{target.pk}", {"role": "branch_admin"})
    assert resp.status_code == 422
    resp = api.patch(f"/api/v1/staff/{target.pk}", {"role": "king"})
    assert resp.status_code == 422
    resp = api.patch(f"/api/v1/staff/{target.pk}", {"is_active": "maybe"})
    assert resp.status_code == 422
    # Their own login, and a login of higher rank.
    assert api.patch(f"/api/v1/staff/{world.users['branch_admin'].pk}", {"is_active": False}).status_code == 403
    assert api.patch(f"/api/v1/staff/{world.users['head_office_admin'].pk}", {"is_active": False}).status_code == 403
    target.refresh_from_db()
    assert (target.org_id, target.role, target.is_active) == (world.community.pk, "staff", True)
    # Allowed: to the branch, as an operator there.
    resp = api.patch(f"/api/v1/staff/{target.pk}", {"org_id": world.branch.pk, "role": "operator"})
    assert resp.status_code == 200, resp.content
    assert resp.json()["role"] == "operator"


def test_a_disabled_staff_login_stops_at_once(world: World) -> None:
    target = world.users["staff"]
    own = world.api("staff")
    session = web_client(target)
    assert own.get("/api/v1/me").status_code == 200
    assert session.get("/staff/").status_code == 200
    resp = world.api("branch_admin").patch(f"/api/v1/staff/{target.pk}", {"is_active": False})
    assert resp.status_code == 200 and resp.json()["is_active"] is False
    assert own.get("/api/v1/me").status_code == 401
    assert not ApiToken.objects.filter(user=target, revoked_at__isnull=True).exists()
    assert token_for("staff", PW).status_code == 401
    assert session.get("/staff/").status_code == 302
    assert "staff" not in usernames(world.api("branch_admin").get("/api/v1/staff", {"is_active": True}))
    # Enabled again: logs in again.
    assert world.api("branch_admin").patch(f"/api/v1/staff/{target.pk}", {"is_active": True}).status_code == 200
    assert token_for("staff", PW).status_code == 200


# Suspended and departed members --------------------------------------------------------------------------------


@pytest.mark.parametrize("change", ["suspend", "leave"])
def test_a_suspended_or_departed_member_loses_login_tokens_and_session(world: World, change: str) -> None:
    member = world.members["volunteer"]
    api = world.api("volunteer")
    session = web_client(world.users["volunteer"])
    key = do_issue_token(world.users["volunteer"])
    assert api.get("/api/v1/me").status_code == 200
    resp = world.api("staff").post(f"/api/v1/members/{member.pk}/{change}")
    assert resp.status_code == 200, resp.content
    assert api.get("/api/v1/me").status_code == 401
    assert bearer(key).get("/api/v1/me").status_code == 401
    assert not ApiToken.objects.filter(user=world.users["volunteer"], revoked_at__isnull=True).exists()
    assert token_for("volunteer", PW).status_code == 401
    assert session.get("/me/time/").status_code == 302
    page = Client().post("/login/", {"username": "volunteer", "password": PW})
    assert page.status_code == 200 and "_auth_user_id" not in page.client.session


def test_a_token_of_a_member_suspended_behind_the_actions_back_still_answers_401(world: World) -> None:
    """Checked when the token is used, not only when the status changes."""
    api = world.api("volunteer")
    type(world.members["volunteer"]).objects.filter(pk=world.members["volunteer"].pk).update(status="suspended")
    assert api.get("/api/v1/me").status_code == 401


def test_a_reactivated_member_logs_in_again(world: World) -> None:
    member = do_suspend_member(world.users["staff"], world.members["volunteer"])
    do_reactivate_member(world.users["staff"], member)
    assert token_for("volunteer", PW).status_code == 200
    do_member_leaves(world.users["staff"], member)
    assert token_for("volunteer", PW).status_code == 401


# Lockout by username and client address ------------------------------------------------------------------------


def test_a_stranger_locks_only_their_own_address(world: World) -> None:
    for _ in range(10):
        assert token_for("recipient", "wrong-guess-1", address="203.0.113.9").status_code in (401, 429)
    # The attacker's own address: locked for this username, even with the right password (the contract).
    locked = token_for("recipient", PW, address="203.0.113.9")
    assert locked.status_code in (403, 429) and locked.json()["error"]["code"]
    # The elder at home logs in, through the API and the page.
    assert token_for("recipient", PW, address="192.0.2.20").status_code == 200
    page = Client(REMOTE_ADDR="192.0.2.21").post("/login/", {"username": "recipient", "password": PW})
    assert page.status_code == 302
    # A header cannot move the attacker to another address.
    spoofed = Client().post(
        "/api/v1/auth/token",
        {"username": "recipient", "password": PW},
        content_type="application/json",
        REMOTE_ADDR="203.0.113.9",
        HTTP_X_FORWARDED_FOR="192.0.2.99",
    )
    assert spoofed.status_code in (403, 429)


def test_behind_a_trusted_proxy_the_forwarded_address_counts(world: World, settings: Any) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(10):
        Client().post(
            "/api/v1/auth/token",
            {"username": "recipient", "password": "wrong-guess-1"},
            content_type="application/json",
            HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9",
        )
    body = {"username": "recipient", "password": PW}
    attacker = Client().post(
        "/api/v1/auth/token", body, content_type="application/json", HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert attacker.status_code in (403, 429)
    elder = Client().post(
        "/api/v1/auth/token", body, content_type="application/json", HTTP_X_FORWARDED_FOR="192.0.2.20"
    )
    assert elder.status_code == 200


# Pages ---------------------------------------------------------------------------------------------------------


def csrf_free_post(client: Client, url: str, data: dict[str, Any]) -> Any:
    return client.post(url, data)


@pytest.mark.parametrize("persona", ["volunteer", "recipient", "staff", "operator", "assessor", "head_office_admin"])
def test_every_logged_in_role_changes_its_password_on_a_page(world: World, persona: str) -> None:
    client = web_client(world.users[persona])
    home = client.get("/", follow=True)
    assert 'href="/me/password/"' in home.content.decode()
    page = client.get("/me/password/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'name="old_password"' in text and "csrfmiddlewaretoken" in text
    wrong = client.post(
        "/me/password/",
        {"old_password": "nope-nope-1", "new_password1": "x-new-pass-9", "new_password2": "x-new-pass-9"},
    )
    assert wrong.status_code == 422
    resp = client.post(
        "/me/password/", {"old_password": PW, "new_password1": "x-new-pass-9", "new_password2": "x-new-pass-9"}
    )
    assert resp.status_code == 302
    # The session stays logged in; the old password no longer works.
    assert client.get("/me/password/").status_code == 200
    user = User.objects.get(pk=world.users[persona].pk)
    assert user.check_password("x-new-pass-9")


def test_the_password_page_counts_wrong_old_passwords(world: World) -> None:
    client = web_client(world.users["recipient"])
    body = {"old_password": "guess-guess-1", "new_password1": "x-new-pass-9", "new_password2": "x-new-pass-9"}
    for _ in range(10):
        client.post("/me/password/", body)
    body["old_password"] = PW
    resp = client.post("/me/password/", body)
    assert resp.status_code == 429
    assert "修改密码" in resp.content.decode() and 'name="old_password"' in resp.content.decode()
    assert User.objects.get(username="recipient").check_password(PW)


def test_after_a_reset_the_login_page_leads_to_the_forced_change(world: World) -> None:
    elder = world.members["recipient"]
    staff = web_client(world.users["staff"])
    resp = staff.post(f"/staff/members/{elder.pk}/password-reset/")
    assert resp.status_code == 200
    match = re.search(r"data-temporary-password>([^<]+)<", resp.content.decode())
    assert match, resp.content.decode()
    temporary = match.group(1).strip()
    # Shown once: nothing stored that shows it again.
    assert temporary not in staff.get("/staff/members/").content.decode()
    browser = Client()
    resp = browser.post("/login/", {"username": "recipient", "password": temporary})
    assert resp.status_code == 302 and resp["Location"].startswith("/me/password/")
    # Every other page sends them back there until they choose their own.
    resp = browser.get("/me/time/")
    assert resp.status_code == 302 and resp["Location"].startswith("/me/password/")
    assert browser.get("/api/v1/me").status_code == 403
    resp = browser.post(
        "/me/password/", {"old_password": temporary, "new_password1": "my-own-pass-8", "new_password2": "my-own-pass-8"}
    )
    assert resp.status_code == 302
    assert browser.get("/me/time/").status_code == 200


def test_the_member_row_offers_a_reset_to_staff_only(world: World) -> None:
    text = web_client(world.users["staff"]).get("/staff/members/").content.decode()
    assert f"/staff/members/{world.members['recipient'].pk}/password-reset/" in text
    operator = web_client(world.users["operator"])
    assert "/password-reset/" not in operator.get("/staff/members/").content.decode()
    assert operator.post(f"/staff/members/{world.members['recipient'].pk}/password-reset/").status_code == 403
    outsider = web_client(world.users["staff_next"])
    assert outsider.post(f"/staff/members/{world.members['recipient'].pk}/password-reset/").status_code == 403


def test_the_staff_logins_page_lists_creates_moves_disables_and_resets(world: World) -> None:
    admin = web_client(world.users["branch_admin"])
    manage = admin.get("/manage/").content.decode()
    assert 'href="/manage/staff/"' in manage
    page = admin.get("/manage/staff/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "工作人员账号" in text and ">staff<" in text and "head_office_admin" not in text
    # Create
    resp = admin.post(
        "/manage/staff/",
        {
            "username": "new-staff",
            "password": "pass-word-2",
            "name": "新人",
            "org_id": world.community.pk,
            "role": "staff",
        },
    )
    assert resp.status_code == 302, resp.content.decode()
    new = User.objects.get(username="new-staff")
    assert new.org_id == world.community.pk and new.role == "staff"
    # Move to the outlet
    resp = admin.post(f"/manage/staff/{new.pk}/", {"org_id": world.outlet.pk, "role": "staff", "is_active": "on"})
    assert resp.status_code == 302
    new.refresh_from_db()
    assert new.org_id == world.outlet.pk
    # Disable
    resp = admin.post(f"/manage/staff/{new.pk}/", {"org_id": world.outlet.pk, "role": "staff"})
    assert resp.status_code == 302
    new.refresh_from_db()
    assert new.is_active is False
    # Reset: the temporary password is on the answer page, once.
    resp = admin.post(f"/manage/staff/{new.pk}/password-reset/")
    assert resp.status_code == 200
    match = re.search(r"data-temporary-password>([^<]+)<", resp.content.decode())
    assert match
    new.refresh_from_db()
    assert new.check_password(match.group(1).strip()) and new.must_change_password
    # Outside the subtree, and for staff who are not admins: refused.
    assert admin.post(f"/manage/staff/{world.users['staff_next'].pk}/password-reset/").status_code in (403, 404)
    assert web_client(world.users["staff"]).get("/manage/staff/").status_code == 403
