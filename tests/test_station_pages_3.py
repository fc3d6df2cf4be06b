"""Issue 13: pages for operations that were API-only, each reached by clicking from the role's home, guarded by its
endpoint's access function and calling its action: a member's insurance policies and certificates and a group
policy (staff), editing a team and removing a team member (staff), defining and editing award kinds (head-office
admins), a member's own separate consents, and anonymising a member who left (staff of the home subtree, with a
confirmation naming the member). Bad input comes back as the form with its error and nothing written; a persona
outside the subtree gets 403/404; a double submit of one rendered form acts once."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client

from tests.conftest import World, make_member, web_client
from timebank.audit.models import AuditEntry
from timebank.evaluation.models import AwardKind
from timebank.members.actions import current_consents
from timebank.members.models import Certificate, Consent, InsurancePolicy, Member
from timebank.orgs.models import User
from timebank.teams.models import Team

REFUSED = (403, 404)


def _html(response: Any) -> str:
    return str(response.content.decode())


def _key(html: str, action: str) -> str:
    """The hidden form key of the form posting to `action`."""
    form = html[html.index(f'action="{action}"') :]
    match = re.search(r'name="idempotency_key" value="([0-9a-f-]+)"', form)
    assert match, f"no form key for {action}"
    return match.group(1)


def _click(client: Client, start: str, *hrefs: str) -> str:
    """Open `start`, then follow each link in turn (each must be on the page before): the page reached."""
    html = _html(client.get(start))
    for href in hrefs:
        assert f'href="{href}"' in html, f"no link to {href} on the way"
        response = client.get(href)
        assert response.status_code == 200, (href, response.status_code)
        html = _html(response)
    return html


def _error_next_to(html: str, field_id: str) -> None:
    assert re.search(rf'id="{field_id}_error_1"', html), f"no error next to {field_id}"


# ---------------------------------------------------------------------------------------------------------------
# A member's insurance policies and certificates
# ---------------------------------------------------------------------------------------------------------------


def _policy(**extra: Any) -> dict[str, Any]:
    return {
        "insurer": "中国人寿保险股份有限公司",
        "policy_number": "PA2026-001",
        "starts_on": "2026-01-01",
        "ends_on": "2026-12-31",
        **extra,
    }


def test_staff_register_a_volunteers_policy_and_certificate_from_the_member_page(world: World) -> None:
    staff = web_client(world.users["staff"])
    volunteer = world.members["volunteer"]
    member_url = f"/staff/members/{volunteer.pk}/"
    url = f"/staff/members/{volunteer.pk}/safety/"
    html = _click(staff, "/staff/", "/staff/members/", member_url, url)
    for name in ("insurer", "policy_number", "starts_on", "ends_on", "kind", "issuer", "valid_from", "valid_until"):
        assert f'name="{name}"' in html
    action = f"/staff/members/{volunteer.pk}/insurance-policies/"
    key = _key(html, action)
    first = staff.post(action, _policy(idempotency_key=key))
    assert first.status_code == 302 and first["Location"] == url
    again = staff.post(action, _policy(idempotency_key=key))  # a double click: registered once, no error
    assert again.status_code == 302
    assert InsurancePolicy.objects.filter(member=volunteer, policy_number="PA2026-001").count() == 1
    assert "PA2026-001" in _html(staff.get(url))

    action = f"/staff/members/{volunteer.pk}/certificates/"
    body = {"kind": "first_aid", "issuer": "台儿庄区红十字会", "valid_from": "2025-06-01", "valid_until": ""}
    key = _key(_html(staff.get(url)), action)
    assert staff.post(action, {**body, "idempotency_key": key}).status_code == 302
    assert staff.post(action, {**body, "idempotency_key": key}).status_code == 302
    cert = Certificate.objects.get(member=volunteer)
    assert cert.kind == "first_aid" and cert.valid_until is None


def test_bad_policies_and_certificates_come_back_with_the_error_and_nothing_written(world: World) -> None:
    staff = web_client(world.users["staff"])
    volunteer = world.members["volunteer"]
    action = f"/staff/members/{volunteer.pk}/insurance-policies/"
    bad = [
        (_policy(starts_on="明天"), "id_policy_starts_on"),
        (_policy(ends_on="2025-01-01"), "id_policy_ends_on"),  # before its start
        (_policy(ends_on="2040-01-01"), "id_policy_ends_on"),  # longer than five years
        (_policy(insurer=""), "id_policy_insurer"),
        (_policy(policy_number="x" * 61), "id_policy_policy_number"),
    ]
    for body, field in bad:
        response = staff.post(action, body)
        assert response.status_code == 422, body
        _error_next_to(_html(response), field)
    assert not InsurancePolicy.objects.exists()
    action = f"/staff/members/{volunteer.pk}/certificates/"
    for body, field in [
        ({"kind": "astronaut", "issuer": "红十字会", "valid_from": "2025-01-01"}, "id_certificate_kind"),
        ({"kind": "nursing", "issuer": "红十字会", "valid_from": "-5"}, "id_certificate_valid_from"),
        (
            {"kind": "nursing", "issuer": "红十字会", "valid_from": "2025-01-01", "valid_until": "2024-01-01"},
            "id_certificate_valid_until",
        ),
    ]:
        response = staff.post(action, body)
        assert response.status_code == 422, body
        _error_next_to(_html(response), field)
    assert not Certificate.objects.exists()


def test_a_members_safety_page_is_refused_outside_the_home_subtree(world: World) -> None:
    volunteer = world.members["volunteer"]
    for persona in ("staff_next", "other_bank_staff", "operator", "volunteer", "recipient"):
        client = web_client(world.users[persona])
        assert client.get(f"/staff/members/{volunteer.pk}/safety/").status_code in REFUSED, persona
        assert client.post(f"/staff/members/{volunteer.pk}/insurance-policies/", _policy()).status_code in REFUSED
        body = {"kind": "nursing", "issuer": "红十字会", "valid_from": "2025-01-01"}
        assert client.post(f"/staff/members/{volunteer.pk}/certificates/", body).status_code in REFUSED
    assert not InsurancePolicy.objects.exists() and not Certificate.objects.exists()
    assert web_client(world.users["staff"]).get("/staff/members/999999999/safety/").status_code == 404


# ---------------------------------------------------------------------------------------------------------------
# A group policy
# ---------------------------------------------------------------------------------------------------------------


def test_staff_register_a_group_policy_ticking_and_typing_volunteers(world: World) -> None:
    staff = web_client(world.users["staff"])
    second = make_member(world.community, "张桂芳", roles=["volunteer"])
    recipient = world.members["recipient"]  # not offered (not a volunteer) but may be typed
    html = _click(staff, "/manage/", "/safety/", "/safety/insurance/group/")
    assert f'name="member_ids" value="{second.pk}"' in html
    key = _key(html, "/safety/insurance/group/")
    body = _policy(policy_number="TD-9", member_ids=[str(second.pk), f"{recipient.pk}, {second.pk}"])
    response = staff.post("/safety/insurance/group/", {**body, "idempotency_key": key})
    assert response.status_code == 302, _html(response)
    again = staff.post("/safety/insurance/group/", {**body, "idempotency_key": key})
    assert again.status_code == 302
    insured = set(InsurancePolicy.objects.filter(policy_number="TD-9").values_list("member_id", flat=True))
    assert insured == {second.pk, recipient.pk}


def test_a_group_policy_with_bad_or_foreign_members_writes_nothing(world: World) -> None:
    staff = web_client(world.users["staff"])
    volunteer = world.members["volunteer"]
    for members, words in [
        ([], "请选择"),
        (["abc"], "只能是数字"),
        (["-3"], "只能是数字"),
        (["9" * 30], "只能是数字"),
        ([f"{volunteer.pk} 999999999"], "找不到"),
        ([f"{volunteer.pk} {world.members['neighbour'].pk}"], "只有会员所在社区"),  # the next community's
        ([f"{world.members['stranger'].pk}"], "只有会员所在社区"),  # another bank's
    ]:
        response = staff.post("/safety/insurance/group/", _policy(member_ids=members))
        assert response.status_code == 422, members
        html = _html(response)
        _error_next_to(html, "id_group_member_ids")
        assert words in html, (members, words)
    response = staff.post("/safety/insurance/group/", _policy(ends_on="x", member_ids=[str(volunteer.pk)]))
    assert response.status_code == 422
    assert not InsurancePolicy.objects.exists()
    for persona in ("volunteer", "recipient", "operator"):
        client = web_client(world.users[persona])
        assert client.get("/safety/insurance/group/").status_code in REFUSED, persona
        response = client.post("/safety/insurance/group/", _policy(member_ids=[str(volunteer.pk)]))
        assert response.status_code in REFUSED, persona
    assert not InsurancePolicy.objects.exists()


# ---------------------------------------------------------------------------------------------------------------
# Editing a team and removing a member
# ---------------------------------------------------------------------------------------------------------------


def _team(world: World, name: str = "顺河志愿队") -> Team:
    from timebank.teams.actions import do_add_team_member, do_create_team

    team = do_create_team(world.users["staff"], org=world.community, name=name, kind="residents", description="")
    do_add_team_member(world.users["staff"], team, world.members["volunteer"])
    return team


def test_staff_edit_a_team_from_the_team_page(world: World) -> None:
    team = _team(world)
    _team(world, "运河银龄队")
    staff = web_client(world.users["staff"])
    url = f"/teams/{team.pk}/edit/"
    html = _click(staff, "/staff/", "/activities/", "/teams/", f"/teams/{team.pk}/", url)
    for name in ("name", "kind", "description", "active"):
        assert f'name="{name}"' in html
    body = {
        "name": "顺河红马甲队",
        "kind": "party_branch",
        "description": "每周三助老",
        "idempotency_key": _key(html, url),
    }
    response = staff.post(url, body)  # `active` unticked: the team is retired
    assert response.status_code == 302 and response["Location"] == f"/teams/{team.pk}/"
    assert staff.post(url, body).status_code == 302  # a double submit: saved once
    team.refresh_from_db()
    assert (team.name, team.kind, team.description, team.active) == (
        "顺河红马甲队",
        "party_branch",
        "每周三助老",
        False,
    )
    assert AuditEntry.objects.filter(action="team.update", object_id=str(team.pk)).count() == 1
    for bad, field in [
        ({"name": "", "kind": "party_branch"}, "id_name"),
        ({"name": "x" * 101, "kind": "party_branch"}, "id_name"),
        ({"name": "新名字", "kind": "club"}, "id_kind"),
        ({"name": "运河银龄队", "kind": "party_branch"}, "id_name"),  # another team of the community has it
    ]:
        response = staff.post(url, bad)
        assert response.status_code == 422, bad
        _error_next_to(_html(response), field)
    team.refresh_from_db()
    assert team.name == "顺河红马甲队"


def test_a_team_is_edited_only_by_staff_of_its_subtree(world: World) -> None:
    from timebank.teams.models import TeamRole

    team = _team(world)
    leader = make_member(world.community, "队长老周", login="leader", roles=["volunteer"])
    from timebank.teams.actions import do_add_team_member

    do_add_team_member(world.users["staff"], team, leader, role=TeamRole.LEADER, may_appoint_leader=True)
    assert leader.user is not None
    for user in (world.users["staff_next"], world.users["other_bank_staff"], world.users["volunteer"], leader.user):
        client = web_client(user)
        assert client.get(f"/teams/{team.pk}/edit/").status_code in REFUSED, user
        assert client.post(f"/teams/{team.pk}/edit/", {"name": "改名", "kind": "party_branch"}).status_code in REFUSED
    team.refresh_from_db()
    assert team.name == "顺河志愿队"
    assert f'href="/teams/{team.pk}/edit/"' not in _html(web_client(leader.user).get(f"/teams/{team.pk}/"))


def test_staff_remove_a_team_member_once(world: World) -> None:
    from timebank.teams.models import TeamMembership

    team = _team(world)
    volunteer = world.members["volunteer"]
    staff = web_client(world.users["staff"])
    action = f"/teams/{team.pk}/members/{volunteer.pk}/remove/"
    html = _html(staff.get(f"/teams/{team.pk}/"))
    key = _key(html, action)
    assert staff.post(action, {"idempotency_key": key}).status_code == 302
    again = staff.post(action, {"idempotency_key": key}, follow=True)  # a double click: the first's answer
    assert "不在这支队伍里" not in _html(again)
    assert not TeamMembership.objects.filter(team=team, member=volunteer, active=True).exists()
    assert AuditEntry.objects.filter(action="team.remove_member", object_id=str(team.pk)).count() == 1
    # A new form for someone no longer in the team: refused with the reason, nothing written.
    response = staff.post(action, {}, follow=True)
    assert "不在这支队伍里" in _html(response)
    assert AuditEntry.objects.filter(action="team.remove_member", object_id=str(team.pk)).count() == 1


def test_removing_a_team_member_is_refused_outside_the_subtree_and_for_unknown_ids(world: World) -> None:
    from timebank.teams.models import TeamMembership

    team = _team(world)
    volunteer = world.members["volunteer"]
    for persona in ("staff_next", "other_bank_staff", "recipient", "operator"):
        response = web_client(world.users[persona]).post(f"/teams/{team.pk}/members/{volunteer.pk}/remove/", {})
        assert response.status_code in REFUSED, persona
    staff = web_client(world.users["staff"])
    stranger = world.members["stranger"]  # another bank's member
    assert staff.post(f"/teams/{team.pk}/members/{stranger.pk}/remove/", {}).status_code == 404
    assert staff.post(f"/teams/{team.pk}/members/999999999/remove/", {}).status_code == 404
    assert TeamMembership.objects.filter(team=team, member=volunteer, active=True).exists()


# ---------------------------------------------------------------------------------------------------------------
# Award kinds
# ---------------------------------------------------------------------------------------------------------------


def _kind_form(**extra: Any) -> dict[str, Any]:
    return {
        "name": "最美志愿者",
        "code": "best_volunteer",
        "subject": "volunteer",
        "basis": "credited_hours",
        "winners": "5",
        "bonus_minutes": "120",
        "min_star_level": "2",
        "active": "on",
        "position": "1",
        **extra,
    }


def test_head_office_admins_define_and_edit_award_kinds(world: World) -> None:
    admin = web_client(world.users["head_office_admin"])
    bank = world.bank.pk
    url = f"/evaluation/awards/{bank}/kinds/"
    html = _click(admin, "/manage/", "/evaluation/", f"/evaluation/awards/{bank}/", url)
    for name in ("code", "name", "subject", "basis", "winners", "bonus_minutes", "min_star_level", "active"):
        assert f'name="{name}"' in html
    body = _kind_form(idempotency_key=_key(html, url))
    assert admin.post(url, body).status_code == 302
    assert admin.post(url, body).status_code == 302  # a double submit: one kind
    kind = AwardKind.objects.get(bank=world.bank, code="best_volunteer")
    assert (kind.name, kind.basis, kind.winners, kind.bonus_minutes, kind.min_star_level, kind.active) == (
        "最美志愿者",
        "credited_hours",
        5,
        120,
        2,
        True,
    )
    edit = f"/evaluation/award-kinds/{kind.pk}/"
    html = _click(admin, url, edit)
    assert 'name="code"' not in html  # fixed once made
    body = {**_kind_form(name="十佳志愿者", winners="10", bonus_minutes="60"), "idempotency_key": _key(html, edit)}
    del body["active"]  # unticked: no longer ranked
    assert admin.post(edit, body).status_code == 302
    kind.refresh_from_db()
    assert (kind.name, kind.winners, kind.bonus_minutes, kind.active) == ("十佳志愿者", 10, 60, False)
    assert AuditEntry.objects.filter(action="evaluation.award_kind.update", object_id=str(kind.pk)).count() == 1


def test_bad_award_kinds_come_back_with_the_error_and_nothing_written(world: World) -> None:
    admin = web_client(world.users["head_office_admin"])
    url = f"/evaluation/awards/{world.bank.pk}/kinds/"
    for extra, field in [
        ({"code": "最美"}, "id_new_code"),
        ({"code": ""}, "id_new_code"),
        ({"winners": "0"}, "id_new_winners"),
        ({"winners": "ten"}, "id_new_winners"),
        ({"bonus_minutes": "-30"}, "id_new_bonus_minutes"),
        ({"bonus_minutes": "99999999999999999999"}, "id_new_bonus_minutes"),
        ({"subject": "dog"}, "id_new_subject"),
        ({"name": ""}, "id_new_name"),
    ]:
        response = admin.post(url, _kind_form(**extra))
        assert response.status_code == 422, extra
        _error_next_to(_html(response), field)
    assert not AwardKind.objects.exists()
    assert admin.post(url, _kind_form()).status_code == 302
    response = admin.post(url, _kind_form())  # the same code again, from a new form
    assert response.status_code == 422
    _error_next_to(_html(response), "id_new_code")
    kind = AwardKind.objects.get()
    response = admin.post(f"/evaluation/award-kinds/{kind.pk}/", _kind_form(winners="-1", name="改了"))
    assert response.status_code == 422
    _error_next_to(_html(response), "id_winners")
    kind.refresh_from_db()
    assert kind.name == "最美志愿者"


def test_award_kinds_are_for_the_banks_head_office_admins_only(world: World) -> None:
    from timebank.evaluation.actions import AwardKindInput, do_create_award_kind

    kind = do_create_award_kind(
        world.users["head_office_admin"], world.bank, AwardKindInput(code="k1", name="最美志愿者", subject="volunteer")
    )
    for persona in ("branch_admin", "staff", "assessor", "other_bank_admin", "volunteer"):
        client = web_client(world.users[persona])
        assert client.get(f"/evaluation/awards/{world.bank.pk}/kinds/").status_code in REFUSED, persona
        assert client.post(f"/evaluation/awards/{world.bank.pk}/kinds/", _kind_form()).status_code in REFUSED
        assert client.get(f"/evaluation/award-kinds/{kind.pk}/").status_code in REFUSED, persona
        response = client.post(f"/evaluation/award-kinds/{kind.pk}/", _kind_form(name="改了"))
        assert response.status_code in REFUSED, persona
    kind.refresh_from_db()
    assert kind.name == "最美志愿者" and AwardKind.objects.count() == 1
    # Another bank's admin cannot reach this bank's kinds through their own bank's page either.
    other = web_client(world.users["other_bank_admin"])
    assert other.get(f"/evaluation/awards/{world.other_bank.pk}/kinds/").status_code == 200
    assert other.post(f"/evaluation/award-kinds/{kind.pk}/", _kind_form(name="改了")).status_code in REFUSED


# ---------------------------------------------------------------------------------------------------------------
# A member's own separate consents
# ---------------------------------------------------------------------------------------------------------------


def test_a_member_gives_and_withdraws_their_own_consent(world: World) -> None:
    volunteer = world.members["volunteer"]
    client = web_client(world.users["volunteer"])
    html = _click(client, "/", "/me/time/", "/me/consents/")
    assert 'name="scope"' in html and 'name="granted"' in html
    key = _key(html, "/me/consents/")
    body = {"scope": "health_info", "granted": "true", "idempotency_key": key}
    assert client.post("/me/consents/", body).status_code == 302
    assert client.post("/me/consents/", body).status_code == 302  # a double submit: recorded once
    rows = Consent.objects.filter(member=volunteer, scope="health_info")
    assert [(c.granted, c.channel, c.recorded_by_id) for c in rows] == [(True, "web", world.users["volunteer"].pk)]
    html = _html(client.get("/me/consents/"))
    body = {"scope": "health_info", "granted": "false", "idempotency_key": _key(html, "/me/consents/")}
    assert client.post("/me/consents/", body).status_code == 302
    assert current_consents(volunteer)["health_info"].granted is False  # type: ignore[union-attr]
    assert AuditEntry.objects.filter(action="member.consent", object_id=str(volunteer.pk)).count() >= 2


def test_bad_consent_input_comes_back_and_others_cannot_use_the_page(world: World) -> None:
    client = web_client(world.users["volunteer"])
    before = Consent.objects.count()
    for body, field in [
        ({"scope": "sell_my_data", "granted": "true"}, "id_scope"),
        ({"scope": "health_info", "granted": "maybe"}, "id_granted"),
        ({"granted": "true"}, "id_scope"),
    ]:
        response = client.post("/me/consents/", body)
        assert response.status_code == 422, body
        _error_next_to(_html(response), field)
    for persona in ("staff", "operator", "head_office_admin"):  # staff logins have no member record
        staff = web_client(world.users[persona])
        assert staff.get("/me/consents/").status_code == 403, persona
        assert staff.post("/me/consents/", {"scope": "health_info", "granted": "true"}).status_code == 403
    anonymous = Client().post("/me/consents/", {"scope": "health_info", "granted": "true"})
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert Consent.objects.count() == before


# ---------------------------------------------------------------------------------------------------------------
# Anonymising a member who left
# ---------------------------------------------------------------------------------------------------------------


def _left(world: World, name: str = "周桂兰") -> Member:
    from timebank.members.actions import do_member_leaves

    member = make_member(world.community, name, login="zhou", roles=["recipient"], phone="13711112222")
    do_member_leaves(world.users["staff"], member)
    member.refresh_from_db()
    return member


def test_staff_anonymise_a_member_who_left_after_a_confirmation_naming_them(world: World) -> None:
    member = _left(world)
    staff = web_client(world.users["staff"])
    url = f"/staff/members/{member.pk}/anonymise/"
    html = _click(staff, "/staff/", "/staff/members/", f"/staff/members/{member.pk}/", url)
    assert f"<dd data-member-name>周桂兰 #{member.pk}</dd>" in html and "不能撤销" in html
    key = _key(html, url)
    response = staff.post(url, {"idempotency_key": key})  # not confirmed: nothing done
    assert response.status_code == 422
    _error_next_to(_html(response), "id_confirm")
    member.refresh_from_db()
    assert member.anonymised_at is None and member.name == "周桂兰"
    response = staff.post(url, {"idempotency_key": key, "confirm": "on"})
    assert response.status_code == 302 and response["Location"] == f"/staff/members/{member.pk}/"
    assert staff.post(url, {"idempotency_key": key, "confirm": "on"}).status_code == 302  # a double click
    member.refresh_from_db()
    assert member.anonymised_at is not None and member.name != "周桂兰" and member.phone == ""
    assert not User.objects.get(pk=member.user_id).is_active
    entries = AuditEntry.objects.filter(action="member.anonymise", object_id=str(member.pk))
    assert [e.actor_id for e in entries] == [world.users["staff"].pk]
    # A new confirmation for a member already anonymised: refused with the reason, nothing written again.
    assert "已经注销过了" in _html(staff.get(url))
    response = staff.post(url, {"confirm": "on"})
    assert response.status_code == 422 and "已经注销过了" in _html(response)
    assert entries.count() == 1


def test_anonymising_is_refused_outside_the_home_subtree(world: World) -> None:
    member = _left(world)
    url = f"/staff/members/{member.pk}/anonymise/"
    for persona in ("staff_next", "other_bank_staff", "other_bank_admin", "operator", "volunteer", "recipient"):
        client = web_client(world.users[persona])
        assert client.get(url).status_code in REFUSED, persona
        assert client.post(url, {"confirm": "on"}).status_code in REFUSED, persona
    member.refresh_from_db()
    assert member.anonymised_at is None and member.name == "周桂兰"
    assert not AuditEntry.objects.filter(action="member.anonymise").exists()
    staff = web_client(world.users["staff"])
    assert staff.post("/staff/members/999999999/anonymise/", {"confirm": "on"}).status_code == 404
    # The head office's admin (above the home) may.
    assert web_client(world.users["head_office_admin"]).post(url, {"confirm": "on"}).status_code == 302
