"""Issue 13: a community's staff register and look after members from the pages, by clicking from the staff home:
a walk-in member (with a login), a member's page, editing, giving a login, linking a relative. Each page is
guarded like its endpoint and calls its action; bad input is answered next to the field with nothing written; a
double submit acts once. Also the API's `PATCH /members/{id}` with `login` (it was silently ignored)."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client

from tests.conftest import World, error_code, make_member, new_id_number, web_client
from timebank.audit.models import AuditEntry
from timebank.members.models import Consent, Member, MemberStatus, RelativeLink
from timebank.orgs.models import User

REFUSED = (403, 404)


def _key(html: str, action: str) -> str:
    """The hidden form key of the form posting to `action`."""
    form = html[html.index(f'action="{action}"') :]
    match = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', form)
    assert match, f"no form key for {action}"
    return match.group(1)


def _temporary(html: str) -> str:
    match = re.search(r"<code data-temporary-password>([a-z0-9]+)</code>", html)
    assert match, "no temporary password shown"
    return match.group(1)


def _token_login(username: str, password: str) -> Any:
    return Client().post(
        "/api/v1/auth/token", {"username": username, "password": password}, content_type="application/json"
    )


def _walk_in(world: World, **extra: Any) -> dict[str, Any]:
    return {
        "home_org_id": world.community.pk,
        "name": "孙桂兰",
        "phone": "13912345678",
        "id_number": new_id_number(),
        "birth_date": "1948-04-02",
        "gender": "female",
        "address": "顺河社区 3 号楼",
        "roles": ["recipient"],
        "recipient_categories": ["living_alone"],
        "occupation": "退休教师",
        "username": "",
        "consent_sensitive_personal_info": "on",
        **extra,
    }


# ---------------------------------------------------------------------------------------------------------------
# The whole walk, clicking from the staff home
# ---------------------------------------------------------------------------------------------------------------


def test_staff_register_a_walk_in_member_with_a_login_and_look_after_them(world: World) -> None:
    staff = web_client(world.users["staff"])
    home = staff.get("/staff/").content.decode()
    assert 'href="/staff/members/new/"' in home
    assert 'href="/staff/members/new/"' in staff.get("/staff/members/").content.decode()
    page = staff.get("/staff/members/new/")
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("home_org_id", "name", "id_number", "birth_date", "gender", "phone", "address", "roles", "username"):
        assert f'name="{name}"' in html
    form = _walk_in(world, username="sunguilan", idempotency_key=_key(html, "/staff/members/new/"))
    response = staff.post("/staff/members/new/", form)
    assert response.status_code == 200
    temporary = _temporary(response.content.decode())
    member = Member.objects.get(name="孙桂兰")
    assert member.status == MemberStatus.ACTIVE and member.home_org == world.community
    assert member.is_recipient and not member.is_volunteer and member.recipient_categories == ["living_alone"]
    assert member.user is not None and member.user.username == "sunguilan" and member.user.must_change_password
    consents = {c.scope: c.granted for c in Consent.objects.filter(member=member, channel="staff")}
    assert consents == {"sensitive_personal_info": True, "health_info": False, "share_with_insurer": False}
    assert AuditEntry.objects.filter(action="member.register", object_id=str(member.pk)).exists()
    # The temporary password opens one login, which must choose a new password.
    token = _token_login("sunguilan", temporary)
    assert token.status_code == 200 and token.json()["must_change_password"] is True

    # See them: the list links to their page; the phone in full (audited), the ID number masked.
    listed = staff.get("/staff/members/", {"q": "孙桂"}).content.decode()
    assert f'href="/staff/members/{member.pk}/"' in listed
    views = AuditEntry.objects.filter(action="member.view_personal_data", object_id=str(member.pk)).count()
    page = staff.get(f"/staff/members/{member.pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and "13912345678" in html and member.id_number_masked in html
    assert member.id_number() not in html
    assert f'href="/staff/members/{member.pk}/statement/"' in html  # the time account, one click away
    assert AuditEntry.objects.filter(action="member.view_personal_data", object_id=str(member.pk)).count() == views + 1
    # The full ID number on request, on the audit chain.
    shown = staff.post(f"/staff/members/{member.pk}/id-number/").content.decode()
    assert member.id_number() in shown
    assert AuditEntry.objects.filter(action="member.view_id_number", object_id=str(member.pk)).count() == 1

    # Edit the phone: only the phone changes.
    response = staff.post(
        f"/staff/members/{member.pk}/edit/",
        {
            "idempotency_key": _key(html, f"/staff/members/{member.pk}/edit/"),
            "name": "孙桂兰",
            "phone": "13700001111",
            "birth_date": "1948-04-02",
            "gender": "female",
            "address": "顺河社区 3 号楼",
            "roles": ["recipient"],
            "recipient_categories": ["living_alone"],
            "occupation": "退休教师",
        },
    )
    assert response.status_code == 302 and response["Location"] == f"/staff/members/{member.pk}/"
    member.refresh_from_db()
    assert member.phone == "13700001111" and member.address == "顺河社区 3 号楼"
    update = AuditEntry.objects.filter(action="member.update", object_id=str(member.pk)).latest("pk")
    assert update.data["fields"] == ["phone"]

    # Link a relative (symmetric).
    son = make_member(world.community, "孙小军", roles=[])
    html = staff.get(f"/staff/members/{member.pk}/").content.decode()
    assert "开通登录账号" not in html.split("<main")[1]  # she has a login already
    response = staff.post(
        f"/staff/members/{member.pk}/relatives/",
        {
            "idempotency_key": _key(html, f"/staff/members/{member.pk}/relatives/"),
            "relative_id": son.pk,
            "relation": "子女",
        },
    )
    assert response.status_code == 302
    assert RelativeLink.objects.filter(member=member, relative=son, relation="子女").exists()
    assert RelativeLink.objects.filter(member=son, relative=member).exists()
    assert "孙小军" in staff.get(f"/staff/members/{member.pk}/").content.decode()


def test_staff_add_a_login_to_a_member_who_had_none(world: World) -> None:
    member = make_member(world.community, "钱大妈", roles=["recipient"])
    assert member.user is None
    staff = web_client(world.users["staff"])
    html = staff.get(f"/staff/members/{member.pk}/").content.decode()
    action = f"/staff/members/{member.pk}/login/"
    key = _key(html, action)
    response = staff.post(action, {"idempotency_key": key, "username": "qiandama"})
    assert response.status_code == 200
    temporary = _temporary(response.content.decode())
    member.refresh_from_db()
    assert member.user is not None and member.user.username == "qiandama" and member.user.must_change_password
    assert AuditEntry.objects.filter(action="member.add_login", object_id=str(member.pk)).count() == 1
    assert _token_login("qiandama", temporary).status_code == 200
    # The same form again (a double click): acts once, the password is not shown again.
    again = staff.post(action, {"idempotency_key": key, "username": "qiandama"})
    assert again.status_code == 302 and again["Location"] == f"/staff/members/{member.pk}/"
    assert User.objects.filter(username="qiandama").count() == 1
    assert AuditEntry.objects.filter(action="member.add_login", object_id=str(member.pk)).count() == 1
    # A new form for a member who has a login now: refused next to the field.
    refused = staff.post(action, {"idempotency_key": "f" * 32, "username": "qiandama2"})
    assert refused.status_code == 422 and 'id="id_login_username_error_1"' in refused.content.decode()
    assert not User.objects.filter(username="qiandama2").exists()


# ---------------------------------------------------------------------------------------------------------------
# Who may
# ---------------------------------------------------------------------------------------------------------------


def test_each_page_is_refused_to_staff_of_another_community_and_to_members(world: World) -> None:
    member = make_member(world.community, "周奶奶", roles=["recipient"])
    other = make_member(world.community, "吴爷爷", roles=[])
    before = (Member.objects.count(), User.objects.count(), RelativeLink.objects.count(), AuditEntry.objects.count())
    posts: list[tuple[str, dict[str, Any]]] = [
        ("/staff/members/new/", _walk_in(world, username="intruder")),
        (f"/staff/members/{member.pk}/edit/", {"name": "改名", "phone": "13000000000"}),
        (f"/staff/members/{member.pk}/login/", {"username": "intruder"}),
        (f"/staff/members/{member.pk}/relatives/", {"relative_id": other.pk, "relation": "子女"}),
        (f"/staff/members/{member.pk}/id-number/", {}),
    ]
    for persona in ("staff_next", "other_bank_staff", "other_bank_admin", "volunteer", "recipient", "stranger"):
        client = web_client(world.users[persona])
        assert client.get(f"/staff/members/{member.pk}/").status_code in REFUSED, persona
        for url, body in posts:
            status = client.post(url, body).status_code
            # Another community's staff may open the register page, but only for their own communities.
            if persona in ("staff_next", "other_bank_staff", "other_bank_admin") and url.endswith("/new/"):
                assert status == 422, (persona, url)
            else:
                assert status in REFUSED, (persona, url, status)
    # Operators read the member (as GET /members/{id}) but register and change nothing.
    operator = web_client(world.users["operator"])
    page = operator.get(f"/staff/members/{member.pk}/")
    assert page.status_code == 200 and "修改会员信息" not in page.content.decode()
    assert operator.get("/staff/members/new/").status_code == 403
    for url, body in posts:
        assert operator.post(url, body).status_code in REFUSED, url
    # Visitors are sent to log in.
    assert Client().get(f"/staff/members/{member.pk}/").status_code == 302
    assert Client().post("/staff/members/new/", _walk_in(world)).status_code == 302
    after = (Member.objects.count(), User.objects.count(), RelativeLink.objects.count())
    assert after == before[:3]
    assert not AuditEntry.objects.filter(pk__gt=0, action__in=["member.update", "member.view_id_number"]).exists()
    member.refresh_from_db()
    assert member.name == "周奶奶" and member.user is None


# ---------------------------------------------------------------------------------------------------------------
# Bad input, double submits
# ---------------------------------------------------------------------------------------------------------------


def test_bad_input_is_answered_next_to_the_field_and_writes_nothing(world: World) -> None:
    staff = web_client(world.users["staff"])
    count = Member.objects.count()
    good = new_id_number()
    bad_checksum = good[:-1] + ("0" if good[-1] != "0" else "1")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"id_number": bad_checksum}, "id_id_number_error_1"),
        ({"id_number": "12345"}, "id_id_number_error_1"),
        ({"phone": "not a phone"}, "id_phone_error_1"),
        ({"birth_date": "2999-01-01"}, "id_birth_date_error_1"),
        ({"name": ""}, "id_name_error_1"),
        ({"name": "x" * 51}, "id_name_error_1"),
        ({"consent_sensitive_personal_info": ""}, "id_id_number_error_1"),  # an ID number needs the consent
        ({"home_org_id": world.other_community.pk}, "id_home_org_id_error_1"),
        ({"home_org_id": "99999999999"}, "id_home_org_id_error_1"),
        ({"username": "volunteer"}, "id_username_error_1"),  # taken
        ({"roles": ["admin"]}, "id_roles_error_1"),
        ({"recipient_categories": ["rich"]}, "id_recipient_categories_error_1"),
        ({"gender": "x"}, "id_gender_error_1"),
    ]
    for extra, error_id in cases:
        response = staff.post("/staff/members/new/", _walk_in(world, **extra))
        assert response.status_code == 422, extra
        assert f'id="{error_id}"' in response.content.decode(), extra
    assert Member.objects.count() == count
    assert not User.objects.filter(username="").exists()
    # A duplicate ID number in the bank: next to the field, nothing written.
    taken = _walk_in(world)
    assert staff.post("/staff/members/new/", taken).status_code == 302
    response = staff.post("/staff/members/new/", {**taken, "name": "重复"})
    assert response.status_code == 422 and 'id="id_id_number_error_1"' in response.content.decode()
    assert not Member.objects.filter(name="重复").exists()

    # Editing: a bad phone or ID number changes nothing.
    member = world.members["recipient"]
    for extra, error_id in (
        ({"phone": "abc"}, "id_edit_phone_error_1"),
        ({"id_number": "1"}, "id_edit_id_number_error_1"),
    ):
        body = {"name": member.name, "phone": member.phone, "gender": "female", "roles": ["recipient"], **extra}
        response = staff.post(f"/staff/members/{member.pk}/edit/", body)
        assert response.status_code == 422 and f'id="{error_id}"' in response.content.decode(), extra
    fresh = Member.objects.get(pk=member.pk)
    assert (fresh.phone, fresh.id_number_hash) == (member.phone, member.id_number_hash)

    # A login: a blank or taken username.
    loginless = make_member(world.community, "郑大爷", roles=[])
    for username in ("", "volunteer", "x" * 151):
        response = staff.post(f"/staff/members/{loginless.pk}/login/", {"username": username})
        assert response.status_code == 422 and 'id="id_login_username_error_1"' in response.content.decode()
    loginless.refresh_from_db()
    assert loginless.user is None

    # Relatives: unknown, not a number, another bank's, themselves, no relation, another community's member.
    url = f"/staff/members/{member.pk}/relatives/"
    relative_cases: tuple[tuple[dict[str, Any], str], ...] = (
        ({"relative_id": "99999999", "relation": "子女"}, "id_relative_relative_id_error_1"),
        ({"relative_id": "-3", "relation": "子女"}, "id_relative_relative_id_error_1"),
        ({"relative_id": "abc", "relation": "子女"}, "id_relative_relative_id_error_1"),
        ({"relative_id": world.members["stranger"].pk, "relation": "子女"}, "id_relative_relative_id_error_1"),
        ({"relative_id": member.pk, "relation": "子女"}, "id_relative_relative_id_error_1"),
        ({"relative_id": loginless.pk, "relation": ""}, "id_relative_relation_error_1"),
        ({"relative_id": loginless.pk, "relation": "x" * 31}, "id_relative_relation_error_1"),
        ({"relative_id": world.members["relative"].pk, "relation": "子女"}, "id_relative_relative_id_error_1"),
    )
    for body, error_id in relative_cases:
        response = staff.post(url, body)
        assert response.status_code == 422, body
        assert f'id="{error_id}"' in response.content.decode(), body
    assert not RelativeLink.objects.filter(member=member, relative__in=[loginless, world.members["stranger"]]).exists()


def test_a_double_submitted_registration_registers_once(world: World) -> None:
    staff = web_client(world.users["staff"])
    key = _key(staff.get("/staff/members/new/").content.decode(), "/staff/members/new/")
    form = _walk_in(world, idempotency_key=key, username="twice")
    first = staff.post("/staff/members/new/", form)
    assert first.status_code == 200 and _temporary(first.content.decode())
    second = staff.post("/staff/members/new/", form)
    member = Member.objects.get(name="孙桂兰")
    assert second.status_code == 302 and second["Location"] == f"/staff/members/{member.pk}/"
    assert "data-temporary-password" not in staff.get(second["Location"]).content.decode()
    assert Member.objects.filter(name="孙桂兰").count() == 1 and User.objects.filter(username="twice").count() == 1
    # A refused submit gives its key back: corrected, the same form goes through.
    key = _key(staff.get("/staff/members/new/").content.decode(), "/staff/members/new/")
    bad = _walk_in(world, idempotency_key=key, name="冯奶奶", phone="bad")
    assert staff.post("/staff/members/new/", bad).status_code == 422
    assert staff.post("/staff/members/new/", {**bad, "phone": "13811112222"}).status_code == 302
    assert Member.objects.filter(name="冯奶奶").count() == 1
    # An edit sent twice changes and audits once.
    member = Member.objects.get(name="冯奶奶")
    edits = AuditEntry.objects.filter(action="member.update", object_id=str(member.pk))
    body = {"idempotency_key": "e" * 32, "name": "冯奶奶", "phone": "13811113333", "roles": ["recipient"]}
    assert staff.post(f"/staff/members/{member.pk}/edit/", body).status_code == 302
    assert staff.post(f"/staff/members/{member.pk}/edit/", body).status_code == 302
    assert edits.count() == 1


# ---------------------------------------------------------------------------------------------------------------
# The API: PATCH /members/{id} with `login` (was silently ignored)
# ---------------------------------------------------------------------------------------------------------------


def test_patch_with_login_gives_a_member_who_had_none_their_login(world: World) -> None:
    member = make_member(world.community, "陈阿婆", roles=["recipient"])
    api = world.api("staff")
    url = f"/api/v1/members/{member.pk}"
    # Another community's staff: refused, nothing written.
    response = world.api("staff_next").patch(url, {"login": {"username": "chenapo", "password": "chen-apo-pass-1"}})
    assert response.status_code == 403
    # A weak password or a taken username: refused with the field, and nothing else of the body written.
    response = api.patch(url, {"phone": "13600000000", "login": {"username": "chenapo", "password": "1"}})
    assert response.status_code == 422 and "password" in response.json()["error"]["fields"]
    response = api.patch(
        url, {"phone": "13600000000", "login": {"username": "volunteer", "password": "chen-apo-pass-1"}}
    )
    assert response.status_code == 409 and error_code(response) == "username_taken"
    member.refresh_from_db()
    assert member.user is None and member.phone == "13800000000"
    # The login is created, acting as the member.
    response = api.patch(url, {"phone": "13600000000", "login": {"username": "chenapo", "password": "chen-apo-pass-1"}})
    assert response.status_code == 200 and response.json()["has_login"] is True
    member.refresh_from_db()
    assert member.user is not None and member.user.username == "chenapo" and member.phone == "13600000000"
    assert not member.user.must_change_password
    token = _token_login("chenapo", "chen-apo-pass-1")
    assert token.status_code == 200 and token.json()["member_id"] == member.pk
    # A member who has a login: 409 has_login with the field; their login unchanged.
    response = api.patch(url, {"login": {"username": "chenapo2", "password": "chen-apo-pass-1"}})
    assert response.status_code == 409 and error_code(response) == "has_login"
    assert response.json()["error"]["fields"] == {"login": "has_login"}
    assert not User.objects.filter(username="chenapo2").exists()
    # Malformed login bodies: 422.
    for login in ({"username": "x"}, {"username": "", "password": "chen-apo-pass-1"}, "chenapo3"):
        assert api.patch(url, {"login": login}).status_code == 422, login


def test_staff_suspend_reactivate_and_record_a_leaver_from_the_members_page(world: World) -> None:
    member = make_member(world.community, "蒋大伯", login="jiangdabo", roles=["volunteer"])
    staff = web_client(world.users["staff"])
    html = staff.get(f"/staff/members/{member.pk}/").content.decode()
    suspend = f"/staff/members/{member.pk}/status/suspend/"
    assert f'action="{suspend}"' in html and "/status/reactivate/" not in html
    # Refused to another community's staff, operators and members: nothing changes.
    for persona in ("staff_next", "other_bank_staff", "operator", "volunteer"):
        assert web_client(world.users[persona]).post(suspend).status_code in REFUSED, persona
    member.refresh_from_db()
    assert member.status == MemberStatus.ACTIVE
    # Suspended: the login stops; the same form sent twice acts once.
    key = re.search(r'name="idempotency_key" value="([^"]+-suspend)"', html)
    assert key
    assert staff.post(suspend, {"idempotency_key": key.group(1)}).status_code == 302
    assert staff.post(suspend, {"idempotency_key": key.group(1)}).status_code == 302
    member.refresh_from_db()
    assert member.status == MemberStatus.SUSPENDED
    assert AuditEntry.objects.filter(action="member.suspend", object_id=str(member.pk)).count() == 1
    assert _token_login("jiangdabo", "pass-word-1").status_code in (401, 403)
    # A new submit in a status that does not allow it: the reason, nothing changes.
    page = staff.post(suspend, follow=True).content.decode()
    assert "当前状态不能办理" in page
    html = staff.get(f"/staff/members/{member.pk}/").content.decode()
    assert "/status/reactivate/" in html
    assert staff.post(f"/staff/members/{member.pk}/status/reactivate/").status_code == 302
    member.refresh_from_db()
    assert member.status == MemberStatus.ACTIVE
    assert staff.post(f"/staff/members/{member.pk}/status/leave/").status_code == 302
    member.refresh_from_db()
    assert member.status == MemberStatus.LEFT
    assert staff.post(f"/staff/members/{member.pk}/status/nonsense/").status_code == 404


def test_staff_record_a_consent_given_on_paper(world: World) -> None:
    member = make_member(world.community, "韩奶奶", roles=["recipient"])
    staff = web_client(world.users["staff"])
    url = f"/staff/members/{member.pk}/consents/"
    html = staff.get(f"/staff/members/{member.pk}/").content.decode()
    body = {"idempotency_key": _key(html, url), "scope": "health_info", "granted": "true"}
    for persona in ("staff_next", "other_bank_staff", "operator", "recipient"):
        assert web_client(world.users[persona]).post(url, body).status_code in REFUSED, persona
    for bad, error_id in (
        ({"scope": "everything"}, "id_consent_scope_error_1"),
        ({"granted": "maybe"}, "id_consent_granted_error_1"),
    ):
        response = staff.post(url, {**body, **bad})
        assert response.status_code == 422 and f'id="{error_id}"' in response.content.decode(), bad
    assert not Consent.objects.filter(member=member).exists()
    assert staff.post(url, body).status_code == 302
    assert staff.post(url, body).status_code == 302  # sent twice: recorded once
    consents = Consent.objects.filter(member=member)
    assert [(c.scope, c.granted, c.channel) for c in consents] == [("health_info", True, "staff")]


def test_staff_move_a_member_home_within_their_subtree_only(world: World) -> None:
    member = make_member(world.community, "魏大姐", roles=["volunteer"])
    staff = web_client(world.users["staff"])
    url = f"/staff/members/{member.pk}/edit/"
    html = staff.get(f"/staff/members/{member.pk}/").content.decode()
    assert 'name="home_org_id"' in html and world.community2.name not in html.split('name="home_org_id"')[1][:2000]
    body = {
        "idempotency_key": _key(html, url),
        "name": member.name,
        "phone": member.phone,
        "address": member.address,
        "roles": ["volunteer"],
    }
    for org in (world.community2, world.other_community):  # not theirs: refused next to the field
        response = staff.post(url, {**body, "home_org_id": org.pk})
        assert response.status_code == 422 and 'id="id_edit_home_org_id_error_1"' in response.content.decode()
    member.refresh_from_db()
    assert member.home_org == world.community
    assert staff.post(url, {**body, "home_org_id": world.outlet.pk}).status_code == 302
    member.refresh_from_db()
    assert member.home_org == world.outlet
    update = AuditEntry.objects.filter(action="member.update", object_id=str(member.pk)).latest("pk")
    assert update.data["fields"] == ["home_org"]
