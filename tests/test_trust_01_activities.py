"""Issue 12, finding 1: a team leader could credit themselves (or anyone) a day of professional service at will.

The rules that close it: an activity is not backdated nor closed before its end (except by staff of its org,
with a reason, audited); a credited attendance is at most the activity's length and, with QR check-in and
check-out, the time between them; walk-ins pass the sign-up's eligibility; a leader's own attendance and any
close above the head office's approval threshold wait for a second person; suspended or departed members lose
leadership."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from django.utils import timezone

from tests.conftest import World, error_code, make_member, web_client
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.ledger.models import AccountKind, Leg, Transaction
from timebank.lib.errors import Conflict, Invalid
from timebank.members.actions import do_member_leaves, do_suspend_member
from timebank.members.models import Member
from timebank.safety.actions import do_add_certificate
from timebank.teams import actions, qr
from timebank.teams.models import Activity, ActivitySignup, ActivityState, Team, TeamMembership, TeamRole


@contextmanager
def at(moment: dt.datetime) -> Iterator[None]:
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def _iso(t: dt.datetime) -> str:
    return timezone.localtime(t).isoformat()


def _earned(member: Member) -> int:
    legs = Leg.objects.filter(account__member=member, account__kind=AccountKind.EARNED)
    return sum(legs.values_list("minutes", flat=True))


def _counselling(w: World) -> ServiceItem:
    """A professional-tier item (×3) that asks for a counselling certificate."""
    return do_create_service_item(
        None,
        head_office=w.bank,
        name="心理疏导",
        category="mutual_care",
        tier="professional",
        requires_certificate="counselling",
    )


def _talk(w: World, tier: str = "professional") -> ServiceItem:
    """A professional-tier item without a certificate."""
    return do_create_service_item(None, head_office=w.bank, name=f"健康讲座-{tier}", category="health_talks", tier=tier)


def _team_with_leader(w: World) -> tuple[Team, Member]:
    team = actions.do_create_team(w.users["staff"], org=w.community, name="顺河心理志愿队", kind="residents")
    leader = w.members["volunteer"]
    actions.do_add_team_member(w.users["staff"], team, leader, role=TeamRole.LEADER)
    w.users["leader"] = w.users["volunteer"]
    return team, leader


def _publish(
    w: World,
    *,
    item: ServiceItem,
    team: Team | None = None,
    actor: str = "staff",
    start_in: dt.timedelta = dt.timedelta(hours=1),
    hours: float = 2,
    **kw: Any,
) -> Activity:
    start = timezone.now() + start_in
    return actions.do_publish_activity(
        w.users[actor],
        org=w.community,
        team=team,
        data=actions.ActivityInput(
            title="活动",
            service_item=item,
            place="顺河社区活动室",
            starts_at=start,
            ends_at=start + dt.timedelta(hours=hours),
            places=10,
            **kw,
        ),
    )


def _certify(w: World, member: Member, kind: str = "counselling") -> None:
    today = timezone.localdate()
    do_add_certificate(
        w.users["staff"],
        member,
        kind=kind,
        issuer="区卫健委",
        valid_from=today - dt.timedelta(days=30),
        valid_until=None,
    )


# --- the finding, exactly as reported ---


def test_finding_1_leader_cannot_credit_themselves_a_backdated_day_of_professional_service(world: World) -> None:
    team, leader = _team_with_leader(world)
    item = _counselling(world)
    lead = world.api("leader")
    now = timezone.now()
    body = {
        "team_id": team.pk,
        "title": "心理疏导",
        "service_item_id": item.pk,
        "place": "顺河社区",
        "starts_at": _iso(now - dt.timedelta(hours=1)),
        "ends_at": _iso(now + dt.timedelta(hours=23)),
        "places": 5,
    }
    before = Transaction.objects.count()
    # 1. An activity that started an hour ago: refused, even with a reason (only staff may enter a past one).
    r = lead.post("/api/v1/activities", body)
    assert r.status_code == 422 and error_code(r) == "starts_in_past", r.json()
    r = lead.post("/api/v1/activities", {**body, "reason": "补录"})
    assert r.status_code == 422 and error_code(r) == "starts_in_past", r.json()
    # Nor may the item's certificate be waived by the activity.
    later = {**body, "starts_at": _iso(now + dt.timedelta(minutes=10)), "ends_at": _iso(now + dt.timedelta(days=1))}
    r = lead.post("/api/v1/activities", {**later, "requires_certificate": ""})
    assert r.status_code == 422 and r.json()["error"]["fields"] == {"requires_certificate": "weaker_than_item"}
    # 2. The same day-long activity starting in ten minutes is published, but the leader without the certificate
    # cannot mark themselves present as a walk-in.
    r = lead.post("/api/v1/activities", later)
    assert r.status_code == 201, r.json()
    act_id = r.json()["id"]
    r = lead.post(f"/api/v1/activities/{act_id}/attendance", {"member_id": leader.pk, "attended": True})
    assert r.status_code == 409 and error_code(r) == "certificate_required", r.json()
    # 3. With a certificate, 1,440 minutes are still more than the activity lasts (1,430).
    _certify(world, leader)
    r = lead.post(
        f"/api/v1/activities/{act_id}/attendance", {"member_id": leader.pk, "attended": True, "minutes": 1440}
    )
    assert r.status_code == 422 and r.json()["error"]["fields"] == {"minutes": "above_activity_length"}, r.json()
    activity = Activity.objects.get(pk=act_id)
    r = lead.patch(f"/api/v1/activities/{act_id}", {"ends_at": _iso(activity.starts_at + dt.timedelta(hours=2))})
    assert r.status_code == 200, r.json()
    r = lead.post(f"/api/v1/activities/{act_id}/attendance", {"member_id": leader.pk, "attended": True})
    assert r.status_code == 200 and r.json()["manual_minutes"] == 120, r.json()
    # 4. Closing before it ends: refused for the leader, with a reason or without.
    with at(activity.starts_at + dt.timedelta(minutes=30)):
        r = lead.post(f"/api/v1/activities/{act_id}/close")
        assert r.status_code == 409 and error_code(r) == "not_ended", r.json()
        r = lead.post(f"/api/v1/activities/{act_id}/close", {"reason": "提前结束"})
        assert r.status_code == 409 and error_code(r) == "not_ended", r.json()
    assert Activity.objects.get(pk=act_id).state == ActivityState.PUBLISHED
    # 5. After its end the leader closes it: their own attendance waits for staff, nothing is credited.
    with at(activity.starts_at + dt.timedelta(hours=2, minutes=5)):
        r = lead.post(f"/api/v1/activities/{act_id}/close")
    assert r.status_code == 200, r.json()
    assert r.json()["credited"] == []
    assert [(p["member_id"], p["minutes"], p["credited_minutes"]) for p in r.json()["pending"]] == [
        (leader.pk, 120, 360)
    ]
    assert r.json()["pending"][0]["approval_id"]
    assert _earned(leader) == 0 and Transaction.objects.count() == before
    # 6. Suspended, the leader runs nothing any more.
    do_suspend_member(world.users["staff"], leader)
    start = timezone.now() + dt.timedelta(hours=1)
    r = lead.post(
        "/api/v1/activities",
        {**body, "starts_at": _iso(start), "ends_at": _iso(start + dt.timedelta(hours=1))},
    )
    assert r.status_code in (401, 403), r.status_code
    assert _earned(leader) == 0 and Transaction.objects.count() == before


def test_finding_1_leader_cannot_credit_themselves_through_the_pages(world: World) -> None:
    team, leader = _team_with_leader(world)
    item = _counselling(world)
    page = web_client(world.users["leader"])
    now = timezone.localtime()
    fmt = "%Y-%m-%dT%H:%M"
    form = {
        "title": "心理疏导",
        "owner": f"team:{team.pk}",
        "service_item": item.pk,
        "place": "顺河社区",
        "starts_at": (now - dt.timedelta(hours=1)).strftime(fmt),
        "ends_at": (now + dt.timedelta(hours=23)).strftime(fmt),
        "places": 5,
        "requires_certificate": "counselling",
        "reason": "补录",
    }
    r = page.post("/activities/new/", form)
    assert r.status_code == 422 and not Activity.objects.exists(), r.status_code
    start = now + dt.timedelta(minutes=30)
    r = page.post(
        "/activities/new/",
        {**form, "starts_at": start.strftime(fmt), "ends_at": (start + dt.timedelta(hours=2)).strftime(fmt)},
    )
    assert r.status_code == 302, r.content.decode()
    activity = Activity.objects.get()
    r = page.post(f"/activities/{activity.pk}/attendance/{leader.pk}/", {"attended": "yes"})
    assert r.status_code == 409 and "证书" in r.content.decode()
    assert not ActivitySignup.objects.filter(activity=activity).exists()
    _certify(world, leader)
    r = page.post(f"/activities/{activity.pk}/attendance/{leader.pk}/", {"attended": "yes", "minutes": 1440})
    assert r.status_code == 422
    r = page.post(f"/activities/{activity.pk}/attendance/{leader.pk}/", {"attended": "yes"})
    assert r.status_code == 302
    with at(activity.starts_at + dt.timedelta(minutes=30)):
        r = page.post(f"/activities/{activity.pk}/close/", {"reason": "提前结束"})
    assert r.status_code == 409 and Activity.objects.get().state == ActivityState.PUBLISHED
    with at(activity.ends_at + dt.timedelta(minutes=1)):
        r = page.post(f"/activities/{activity.pk}/close/")
        assert r.status_code == 302
        shown = page.get(f"/activities/{activity.pk}/")
    assert Activity.objects.get().state == ActivityState.CLOSED
    assert "等待审批" in shown.content.decode()
    assert _earned(leader) == 0


# --- each rule ---


def test_backdating_only_by_staff_with_a_reason_audited(world: World) -> None:
    item = _talk(world)
    with pytest.raises(Invalid) as exc:
        _publish(world, item=item, start_in=-dt.timedelta(hours=1))
    assert exc.value.code == "starts_in_past" and exc.value.fields == {"reason": "required"}
    activity = _publish(world, item=item, start_in=-dt.timedelta(hours=3), backdate_reason="纸质签到表补录")
    entry = AuditEntry.objects.get(action="activity.publish", object_id=str(activity.pk))
    assert entry.data["backdated"] == "纸质签到表补录"
    # Staff of another community may not.
    with pytest.raises(Invalid):
        actions.do_publish_activity(
            world.users["staff_next"],
            org=world.community,
            team=None,
            data=actions.ActivityInput(
                title="补录",
                service_item=item,
                place="礼堂",
                starts_at=timezone.now() - dt.timedelta(hours=1),
                ends_at=timezone.now(),
                places=3,
                backdate_reason="纸质签到表补录",
            ),
        )
    # A few minutes of clock skew is not backdating.
    _publish(world, item=item, start_in=-dt.timedelta(minutes=2))
    # Editing: moving the start into the past is the same; leaving a started activity's start alone is fine.
    future = _publish(world, item=item)
    staff = world.api("staff")
    past = _iso(timezone.now() - dt.timedelta(hours=2))
    r = staff.patch(f"/api/v1/activities/{future.pk}", {"starts_at": past, "signup_deadline": past})
    assert r.status_code == 422 and error_code(r) == "starts_in_past", r.json()
    r = world.api("staff_next").patch(f"/api/v1/activities/{future.pk}", {"starts_at": past, "signup_deadline": past})
    assert r.status_code == 403
    r = staff.patch(
        f"/api/v1/activities/{future.pk}",
        {"starts_at": past, "signup_deadline": past, "reason": "按签到表更正开始时间"},
    )
    assert r.status_code == 200, r.json()
    with at(future.starts_at + dt.timedelta(minutes=30)):
        r = staff.patch(f"/api/v1/activities/{future.pk}", {"place": "社区礼堂"})
    assert r.status_code == 200, r.json()


def test_closing_early_only_by_staff_of_its_org_with_a_reason(world: World) -> None:
    item = _talk(world, "ordinary")
    activity = _publish(world, item=item, start_in=dt.timedelta(minutes=10))
    v = world.members["volunteer"]
    actions.do_sign_up(v.user, activity, v)
    with at(activity.starts_at + dt.timedelta(minutes=1)):
        actions.do_scan(v.user, activity, v, qr.current_token(activity))
    mid = activity.starts_at + dt.timedelta(minutes=40)
    with at(mid):
        with pytest.raises(Conflict) as exc:
            actions.do_close_activity(world.users["staff"], activity)
        assert exc.value.code == "not_ended" and exc.value.fields == {"reason": "required"}
        with pytest.raises(Conflict):
            actions.do_close_activity(world.users["staff_next"], activity, reason="下雨")
        r = world.api("staff").post(f"/api/v1/activities/{activity.pk}/close", {"reason": "下雨提前散场"})
    assert r.status_code == 200, r.json()
    # Credited up to the close, not to the planned end.
    assert r.json()["credited"] == [{"member_id": v.pk, "minutes": 39, "credited_minutes": 39}]
    entry = AuditEntry.objects.get(action="activity.close", object_id=str(activity.pk))
    assert entry.data["early"] == "下雨提前散场"


def test_credit_is_at_most_the_activity_length_and_the_scanned_time(world: World) -> None:
    item = _talk(world, "ordinary")
    activity = _publish(world, item=item, start_in=dt.timedelta(minutes=10), hours=1)
    a, b = (make_member(world.community, f"志愿者{i}", login=f"v{i}") for i in range(2))
    for p in (a, b):
        actions.do_sign_up(p.user, activity, p)
    staff = world.users["staff"]
    with pytest.raises(Invalid) as exc:
        actions.do_mark_attendance(staff, activity, a, attended=True, minutes=61)
    assert exc.value.fields == {"minutes": "above_activity_length"}
    # a scans in and out 30 minutes apart: no more than 30 may be credited, by hand or by default.
    with at(activity.starts_at):
        actions.do_scan(a.user, activity, a, qr.current_token(activity))
    with at(activity.starts_at + dt.timedelta(minutes=30)):
        actions.do_scan(a.user, activity, a, qr.current_token(activity))
    with pytest.raises(Invalid) as exc:
        actions.do_mark_attendance(staff, activity, a, attended=True, minutes=45)
    assert exc.value.fields == {"minutes": "above_scanned_time"}
    assert actions.do_mark_attendance(staff, activity, a, attended=True).manual_minutes == 30
    actions.do_mark_attendance(staff, activity, b, attended=True, minutes=60)
    # Shortening the activity afterwards also shortens what a hand mark may credit.
    data = actions.ActivityInput(
        title=activity.title,
        service_item=item,
        place=activity.place,
        starts_at=activity.starts_at,
        ends_at=activity.starts_at + dt.timedelta(minutes=40),
        places=activity.places,
    )
    actions.do_update_activity(staff, activity, data=data)
    with at(activity.starts_at + dt.timedelta(hours=1)):
        result = actions.do_close_activity(staff, activity)
    assert {c["member_id"]: c["minutes"] for c in result.credited} == {a.pk: 30, b.pk: 40}


def test_walk_ins_pass_the_sign_up_eligibility(world: World) -> None:
    team, leader = _team_with_leader(world)
    staff = world.users["staff"]
    cert = _publish(world, item=_counselling(world), team=team)
    n = world.members["neighbour"]
    with pytest.raises(Conflict) as exc:
        actions.do_mark_attendance(staff, cert, n, attended=True)
    assert exc.value.code == "certificate_required"
    team_only = _publish(world, item=_talk(world), team=team, team_only=True)
    with pytest.raises(Conflict) as exc:
        actions.do_mark_attendance(leader.user, team_only, n, attended=True)
    assert exc.value.code == "team_only"
    aged = _publish(world, item=_talk(world, "ordinary"), min_age=18, max_age=60)
    with pytest.raises(Conflict) as exc:
        actions.do_mark_attendance(staff, aged, n, attended=True)  # born 1955
    assert exc.value.code == "age_out_of_range"
    open_one = _publish(world, item=_talk(world, "technical"))
    with pytest.raises(Conflict) as exc:
        actions.do_mark_attendance(staff, open_one, world.members["recipient"], attended=True)
    assert exc.value.code == "not_a_volunteer"
    suspended = make_member(world.community, "停用志愿者")
    do_suspend_member(staff, suspended)
    with pytest.raises(Conflict) as exc:
        actions.do_mark_attendance(staff, open_one, suspended, attended=True)
    assert exc.value.code == "not_a_volunteer"
    with pytest.raises(Invalid):
        actions.do_mark_attendance(staff, open_one, world.members["stranger"], attended=True)
    assert not ActivitySignup.objects.exists()
    # An eligible walk-in is added with a place.
    assert actions.do_mark_attendance(staff, open_one, n, attended=True).status == "confirmed"


def test_suspended_or_departed_leader_loses_leadership(world: World) -> None:
    team, leader = _team_with_leader(world)
    item = _talk(world)
    activity = _publish(world, item=item, team=team, actor="leader")
    lead = world.api("leader")
    assert lead.get(f"/api/v1/activities/{activity.pk}/signups").status_code == 200
    # The access function stops counting a suspended leader at once, whatever the membership row says.
    Member.objects.filter(pk=leader.pk).update(status="suspended")
    from timebank.teams.access import can_manage_activity, led_team_ids

    leader_user = world.users["leader"]
    assert led_team_ids(leader_user) == set()
    assert not can_manage_activity(leader_user, activity)
    Member.objects.filter(pk=leader.pk).update(status="active")
    assert led_team_ids(leader_user) == {team.pk}
    # Suspending through the action also takes the role away (it is not given back on reactivation).
    do_suspend_member(world.users["staff"], leader)
    ms = TeamMembership.objects.get(team=team, member=leader)
    assert ms.role == TeamRole.MEMBER
    assert AuditEntry.objects.filter(action="team.leader_removed", object_id=str(team.pk)).exists()
    # A departed leader leaves the team altogether.
    other = make_member(world.community, "二队长", login="leader2")
    actions.do_add_team_member(world.users["staff"], team, other, role=TeamRole.LEADER)
    do_member_leaves(world.users["staff"], other)
    ms = TeamMembership.objects.get(team=team, member=other)
    assert ms.role == TeamRole.MEMBER and not ms.active


def test_leaders_own_attendance_waits_for_staff_even_when_scanned(world: World) -> None:
    team, leader = _team_with_leader(world)
    item = _talk(world, "ordinary")
    activity = _publish(world, item=item, team=team, actor="leader", start_in=dt.timedelta(minutes=10), hours=1)
    v = make_member(world.community, "队员", login="teammate")
    for p in (leader, v):
        actions.do_sign_up(p.user, activity, p)
        with at(activity.starts_at):
            actions.do_scan(p.user, activity, p, qr.current_token(activity))
        with at(activity.ends_at):
            actions.do_scan(p.user, activity, p, qr.current_token(activity))
    with at(activity.ends_at + dt.timedelta(minutes=5)):
        result = actions.do_close_activity(world.users["staff"], activity)
    assert [c["member_id"] for c in result.credited] == [v.pk]
    assert [(p["member_id"], p["minutes"]) for p in result.pending] == [(leader.pk, 60)]
    assert _earned(leader) == 0 and _earned(v) == 60
    # The page shows what waits.
    page = web_client(world.users["staff"]).get(f"/activities/{activity.pk}/")
    assert "等待审批" in page.content.decode()


def test_close_above_the_threshold_waits_for_a_second_person(world: World) -> None:
    item = _talk(world)  # ×3
    activity = _publish(world, item=item, start_in=dt.timedelta(minutes=10), hours=4)
    a, b = (make_member(world.community, f"志愿者{i}", login=f"v{i}") for i in range(2))
    staff = world.users["staff"]
    actions.do_mark_attendance(staff, activity, a, attended=True, minutes=240)  # 720 credited > 600
    actions.do_mark_attendance(staff, activity, b, attended=True, minutes=120)  # 360 credited
    with at(activity.ends_at + dt.timedelta(minutes=1)):
        r = world.api("staff").post(f"/api/v1/activities/{activity.pk}/close")
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["credited"] == [{"member_id": b.pk, "minutes": 120, "credited_minutes": 360}]
    assert [(p["member_id"], p["credited_minutes"]) for p in body["pending"]] == [(a.pk, 720)]
    assert _earned(a) == 0 and _earned(b) == 360
    # Closing again changes nothing.
    with at(activity.ends_at + dt.timedelta(minutes=2)):
        again = world.api("staff").post(f"/api/v1/activities/{activity.pk}/close").json()
    assert again["already_closed"] is True and again["pending"] == [] and _earned(a) == 0


def test_a_second_person_approves_the_waiting_credit_and_it_lands_on_the_sign_up(world: World) -> None:
    team, leader = _team_with_leader(world)
    activity = _publish(world, item=_talk(world), team=team, actor="leader", start_in=dt.timedelta(minutes=10))
    actions.do_mark_attendance(world.users["leader"], activity, leader, attended=True, minutes=60)
    with at(activity.ends_at + dt.timedelta(minutes=1)):
        r = world.api("leader").post(f"/api/v1/activities/{activity.pk}/close")
    (waiting,) = r.json()["pending"]
    signups = world.api("staff").get(f"/api/v1/activities/{activity.pk}/signups").json()["items"]
    assert [s["pending_approval_id"] for s in signups] == [waiting["approval_id"]]
    # The leader cannot approve their own credit; staff of the community can.
    assert world.api("leader").post(f"/api/v1/approvals/{waiting['approval_id']}/approve").status_code == 403
    r = world.api("staff").post(f"/api/v1/approvals/{waiting['approval_id']}/approve")
    assert r.status_code == 200 and r.json()["state"] == "approved", r.json()
    assert _earned(leader) == 180
    signup = ActivitySignup.objects.get(activity=activity, member=leader)
    assert signup.service_record is not None and signup.service_record.credited_minutes == 180
    page = web_client(world.users["staff"]).get(f"/activities/{activity.pk}/").content.decode()
    assert "等待审批" not in page and "已存入" in page
