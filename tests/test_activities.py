"""Group activities (活动招募): places and the waiting list, rotating QR attendance, and crediting at close."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from django.db import connection, connections
from django.utils import timezone

from tests.conftest import World, error_code, make_member, web_client
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.ledger.models import AccountKind, Leg, Transaction, TransactionKind
from timebank.lib.errors import Conflict, Invalid
from timebank.members.models import Member
from timebank.notify.models import Notification
from timebank.orders.models import ServiceRecord
from timebank.orgs.actions import do_create_org
from timebank.orgs.models import Org
from timebank.teams import actions, qr
from timebank.teams.models import Activity, ActivitySignup, ActivityState, Attendance, SignupStatus, TeamRole


def _item(bank: Org, tier: str = "professional", name: str = "健康讲座") -> ServiceItem:
    return do_create_service_item(None, head_office=bank, name=name, category="health_talks", tier=tier)


def _publish(
    w: World, *, places: int = 2, tier: str = "professional", start_in: dt.timedelta = dt.timedelta(hours=2), **kw: Any
) -> Activity:
    start = timezone.now() + start_in
    item = _item(w.bank, tier, name=f"健康讲座-{tier}-{places}-{Activity.objects.count()}")
    return actions.do_publish_activity(
        w.users["staff"],
        org=w.community,
        team=kw.pop("team", None),
        data=actions.ActivityInput(
            title="高血压健康讲座",
            service_item=item,
            place="顺河社区活动室",
            starts_at=start,
            ends_at=start + dt.timedelta(hours=2),
            places=places,
            **kw,
        ),
    )


def _volunteers(w: World, n: int) -> list[Member]:
    return [make_member(w.community, f"志愿者{i}", login=f"vol{i}") for i in range(n)]


@contextmanager
def at(moment: dt.datetime) -> Iterator[None]:
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def _earned(member: Member) -> int:
    legs = Leg.objects.filter(account__member=member, account__kind=AccountKind.EARNED)
    return sum(legs.values_list("minutes", flat=True))


def test_sign_up_beyond_places_goes_to_waiting_list(world: World) -> None:
    activity = _publish(world, places=2)
    people = _volunteers(world, 4)
    statuses = [actions.do_sign_up(p.user, activity, p).status for p in people]
    assert statuses == ["confirmed", "confirmed", "waiting", "waiting"]
    with pytest.raises(Conflict) as exc:
        actions.do_sign_up(people[0].user, activity, people[0])
    assert exc.value.code == "already_signed_up"


def test_withdrawal_promotes_first_waiting(world: World, django_capture_on_commit_callbacks: Any) -> None:
    activity = _publish(world, places=1)
    a, b, c = _volunteers(world, 3)
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_sign_up(a.user, activity, a)
        actions.do_sign_up(b.user, activity, b)
        actions.do_sign_up(c.user, activity, c)
        actions.do_withdraw(a.user, activity, a)
    status = dict(ActivitySignup.objects.filter(activity=activity).values_list("member_id", "status"))
    assert status == {a.pk: "withdrawn", b.pk: "confirmed", c.pk: "waiting"}
    templates = list(Notification.objects.filter(member=b).order_by("pk").values_list("template", flat=True))
    assert templates == ["activity.waiting", "activity.promoted"]
    # Signing up again goes to the back of the queue.
    assert actions.do_sign_up(a.user, activity, a).status == SignupStatus.WAITING
    actions.do_withdraw(b.user, activity, b)
    assert ActivitySignup.objects.get(activity=activity, member=c).status == SignupStatus.CONFIRMED


def test_withdrawal_after_deadline_is_refused(world: World) -> None:
    activity = _publish(world, places=1)
    (a,) = _volunteers(world, 1)
    actions.do_sign_up(a.user, activity, a)
    with at(activity.signup_deadline + dt.timedelta(minutes=1)), pytest.raises(Conflict) as exc:
        actions.do_withdraw(a.user, activity, a)
    assert exc.value.code == "signup_closed"


def test_requirements_certificate_age_team_only(world: World) -> None:
    activity = _publish(world, places=5, requires_certificate="medical", min_age=18, max_age=60)
    young = make_member(world.community, "小张", login="young", born=dt.date(2015, 1, 1))
    with pytest.raises(Conflict) as exc:
        actions.do_sign_up(young.user, activity, young)
    assert exc.value.code == "certificate_required"
    no_cert = _publish(world, places=5, min_age=18, requires_certificate="")
    with pytest.raises(Conflict) as exc:
        actions.do_sign_up(young.user, no_cert, young)
    assert exc.value.code == "age_out_of_range"
    team = actions.do_create_team(world.users["staff"], org=world.community, name="顺河医疗队", kind="medical")
    team_only = _publish(world, places=5, team=team, team_only=True)
    v = world.members["volunteer"]
    with pytest.raises(Conflict) as exc:
        actions.do_sign_up(v.user, team_only, v)
    assert exc.value.code == "team_only"
    actions.do_add_team_member(world.users["staff"], team, v)
    assert actions.do_sign_up(v.user, team_only, v).status == "confirmed"
    with pytest.raises(Invalid):
        actions.do_sign_up(world.users["stranger"], team_only, world.members["stranger"])


def test_concurrent_sign_ups_never_exceed_places(transactional_db: None) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row-lock contention is a PostgreSQL test")
    bank = do_create_org(None, name="并发银行", kind="head_office", parent=None)
    community = do_create_org(None, name="社区", kind="sub_branch", parent=bank)
    item = _item(bank)
    start = timezone.now() + dt.timedelta(days=1)
    activity = actions.do_publish_activity(
        None,
        org=community,
        team=None,
        data=actions.ActivityInput(
            title="讲座",
            service_item=item,
            place="礼堂",
            starts_at=start,
            ends_at=start + dt.timedelta(hours=1),
            places=3,
        ),
    )
    people = [make_member(community, f"人{i}") for i in range(12)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(people))

    def worker(member: Member) -> None:
        try:
            barrier.wait()
            actions.do_sign_up(None, activity, member)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    counts = {s: ActivitySignup.objects.filter(activity=activity, status=s).count() for s in ("confirmed", "waiting")}
    assert counts == {"confirmed": 3, "waiting": 9}


def test_qr_check_in_and_out_then_close_credits_with_multiplier(world: World) -> None:
    activity = _publish(world, places=3, tier="professional")  # multiplier 3
    a, b, c = _volunteers(world, 3)
    for p in (a, b, c):
        actions.do_sign_up(p.user, activity, p)
    start, end = activity.starts_at, activity.ends_at
    # a scans in at the start and out 90 minutes later; b is marked by hand for 60 minutes; c never comes.
    with at(start - dt.timedelta(minutes=5)):
        _s, what = actions.do_scan(a.user, activity, a, qr.current_token(activity))
        assert what == "check_in"
        assert actions.do_scan(a.user, activity, a, qr.current_token(activity))[1] == "already"
    with at(start + dt.timedelta(minutes=90)):
        assert actions.do_scan(a.user, activity, a, qr.current_token(activity))[1] == "check_out"
    actions.do_mark_attendance(world.users["staff"], activity, b, attended=True, minutes=60)
    # A walk-in added by hand gets the whole activity.
    walk_in = world.members["volunteer"]
    actions.do_mark_attendance(world.users["staff"], activity, walk_in, attended=True)
    before = Transaction.objects.count()
    with at(end + dt.timedelta(minutes=10)):
        result = actions.do_close_activity(world.users["staff"], activity)
    assert not result.already_closed
    credited = {c["member_id"]: (c["minutes"], c["credited_minutes"]) for c in result.credited}
    assert credited == {a.pk: (90, 270), b.pk: (60, 180), walk_in.pk: (120, 360)}
    assert result.no_shows == [c.pk]
    assert Transaction.objects.count() == before + 3
    assert _earned(a) == 270 and _earned(b) == 180 and _earned(c) == 0
    assert ActivitySignup.objects.get(activity=activity, member=c).attendance == Attendance.NO_SHOW
    assert set(
        ServiceRecord.objects.filter(activity_signup__activity=activity).values_list("volunteer_id", flat=True)
    ) == {
        a.pk,
        b.pk,
        walk_in.pk,
    }
    # Closing twice credits nothing more, whoever does it.
    with at(end + dt.timedelta(minutes=20)):
        again = actions.do_close_activity(world.users["branch_admin"], activity)
    assert again.already_closed and again.credited == []
    assert Transaction.objects.count() == before + 3
    assert Activity.objects.get(pk=activity.pk).state == ActivityState.CLOSED
    assert Transaction.objects.filter(kind=TransactionKind.SERVICE_RECORD, memo__contains="高血压").count() == 3


def test_stale_or_foreign_qr_code_is_refused(world: World) -> None:
    activity = _publish(world, places=3, start_in=dt.timedelta(minutes=10))
    other = _publish(world, places=3, start_in=dt.timedelta(minutes=10))
    v = world.members["volunteer"]
    actions.do_sign_up(v.user, activity, v)
    stale = qr.token_for(activity, int(timezone.now().timestamp() // qr.WINDOW_SECONDS) - 2)
    for token in (stale, qr.current_token(other), "0" * qr.TOKEN_LENGTH, "garbage"):
        with pytest.raises(Invalid) as exc:
            actions.do_scan(v.user, activity, v, token)
        assert exc.value.code == "qr_invalid"
    # The previous window still works (a scan at the turn of the minute).
    previous = qr.token_for(activity, int(timezone.now().timestamp() // qr.WINDOW_SECONDS) - 1)
    assert actions.do_scan(v.user, activity, v, previous)[1] == "check_in"
    assert not ActivitySignup.objects.filter(activity=other, member=v).exists()


def test_scan_without_place_is_refused(world: World) -> None:
    activity = _publish(world, places=1, start_in=dt.timedelta(minutes=10))
    a, b = _volunteers(world, 2)
    actions.do_sign_up(a.user, activity, a)
    actions.do_sign_up(b.user, activity, b)
    with pytest.raises(Conflict) as exc:
        actions.do_scan(b.user, activity, b, qr.current_token(activity))
    assert exc.value.code == "on_waiting_list"
    n = world.members["neighbour"]
    with pytest.raises(Conflict) as exc:
        actions.do_scan(n.user, activity, n, qr.current_token(activity))
    assert exc.value.code == "not_signed_up"


def test_cancel_and_change_notify_signed_up(world: World, django_capture_on_commit_callbacks: Any) -> None:
    activity = _publish(world, places=1)
    a, b = _volunteers(world, 2)
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_sign_up(a.user, activity, a)
        actions.do_sign_up(b.user, activity, b)
        data = actions.ActivityInput(
            title=activity.title,
            service_item=activity.service_item,
            place="社区礼堂",
            starts_at=activity.starts_at,
            ends_at=activity.ends_at,
            places=2,
        )
        actions.do_update_activity(world.users["staff"], activity, data=data)
        actions.do_cancel_activity(world.users["staff"], activity, reason="天气原因")
    assert list(Notification.objects.filter(member=a).order_by("pk").values_list("template", flat=True)) == [
        "activity.signed_up",
        "activity.changed",
        "activity.cancelled",
    ]
    assert list(Notification.objects.filter(member=b).order_by("pk").values_list("template", flat=True)) == [
        "activity.waiting",
        "activity.promoted",
        "activity.cancelled",
    ]
    with pytest.raises(Conflict):
        actions.do_close_activity(world.users["staff"], activity)


def test_reminder_once(world: World, django_capture_on_commit_callbacks: Any) -> None:
    activity = _publish(world, places=2, start_in=dt.timedelta(hours=3))
    (a,) = _volunteers(world, 1)
    actions.do_sign_up(a.user, activity, a)
    assert actions.send_activity_reminders(hours=2) == 0
    assert actions.send_activity_reminders(hours=4) == 1
    assert actions.send_activity_reminders(hours=4) == 0
    assert Notification.objects.filter(member=a, template="activity.reminder").count() == 1


def test_bad_activity_input_is_refused(world: World) -> None:
    start = timezone.now() + dt.timedelta(days=1)
    item = _item(world.bank)
    base: dict[str, Any] = {
        "title": "讲座",
        "service_item": item,
        "place": "礼堂",
        "starts_at": start,
        "ends_at": start + dt.timedelta(hours=1),
        "places": 3,
    }
    bad: list[dict[str, Any]] = [
        {"places": 0},
        {"places": 10**9},
        {"ends_at": start - dt.timedelta(hours=1)},
        {"ends_at": start + dt.timedelta(hours=30)},
        {"signup_deadline": start + dt.timedelta(minutes=1)},
        {"min_age": 60, "max_age": 20},
        {"title": "  "},
        {"place": ""},
        {"service_item": _item(world.other_bank)},
    ]
    for change in bad:
        with pytest.raises(Invalid):
            actions.do_publish_activity(
                world.users["staff"], org=world.community, team=None, data=actions.ActivityInput(**{**base, **change})
            )
    assert not Activity.objects.exists()


# --- the API ---


def _iso(t: dt.datetime) -> str:
    return timezone.localtime(t).isoformat()


def test_api_leader_publishes_volunteers_sign_up_scan_and_staff_close(world: World) -> None:
    staff = world.api("staff")
    item = _item(world.bank)
    team = staff.post(
        "/api/v1/teams", {"org_id": world.community.pk, "name": "银耀绸都老干部志愿服务队", "kind": "five_elders"}
    )
    assert team.status_code == 201, team.json()
    team_id = team.json()["id"]
    leader = make_member(world.community, "老队长", login="leader")
    r = staff.post(f"/api/v1/teams/{team_id}/members", {"member_id": leader.pk, "role": "leader"})
    assert r.status_code == 200, r.json()
    assert leader.user is not None
    world.users["leader"] = leader.user
    lead = world.api("leader")
    start = timezone.now() + dt.timedelta(minutes=30)
    body = {
        "team_id": team_id,
        "title": "健康讲座：冬季养生",
        "service_item_id": item.pk,
        "place": "顺河社区活动室",
        "starts_at": _iso(start),
        "ends_at": _iso(start + dt.timedelta(hours=1)),
        "places": 2,
    }
    created = lead.post("/api/v1/activities", body)
    assert created.status_code == 201, created.json()
    act = created.json()
    assert act["org_id"] == world.community.pk and act["multiplier"] == 3 and act["confirmed"] == 0
    # A volunteer outside the team may not publish for it; the other bank does not see it at all.
    assert world.api("volunteer").post("/api/v1/activities", body).status_code == 403
    assert world.api("stranger").get(f"/api/v1/activities/{act['id']}").status_code == 404
    v = world.api("volunteer")
    r = v.post(f"/api/v1/activities/{act['id']}/signup")
    assert r.status_code == 200 and r.json()["status"] == "confirmed", r.json()
    assert error_code(v.post(f"/api/v1/activities/{act['id']}/signup")) == "already_signed_up"
    n = world.api("neighbour")
    assert n.post(f"/api/v1/activities/{act['id']}/signup").json()["status"] == "confirmed"
    assert world.api("relative").post(f"/api/v1/activities/{act['id']}/signup").status_code == 409  # not a volunteer
    # The QR code is for those who run it.
    assert v.get(f"/api/v1/activities/{act['id']}/qr").status_code == 403
    code = lead.get(f"/api/v1/activities/{act['id']}/qr").json()
    assert code["url"].endswith(f"/activities/{act['id']}/check/{code['token']}/")
    r = v.post(f"/api/v1/activities/{act['id']}/scan", {"token": code["token"]})
    assert r.status_code == 200 and r.json()["outcome"] == "check_in", r.json()
    assert error_code(v.post(f"/api/v1/activities/{act['id']}/scan", {"token": "x" * 20})) == "qr_invalid"
    with at(start + dt.timedelta(minutes=45)):
        assert v.post(f"/api/v1/activities/{act['id']}/scan", {"token": code["token"]}).json()["outcome"] == "check_out"
    r = lead.post(
        f"/api/v1/activities/{act['id']}/attendance", {"member_id": world.members["neighbour"].pk, "attended": False}
    )
    assert r.status_code == 200 and r.json()["attendance"] == "no_show"
    signups = lead.get(f"/api/v1/activities/{act['id']}/signups").json()["items"]
    assert {s["member_id"] for s in signups} == {world.members["volunteer"].pk, world.members["neighbour"].pk}
    with at(start + dt.timedelta(hours=2)):
        closed = staff.post(f"/api/v1/activities/{act['id']}/close")
        assert closed.status_code == 200, closed.json()
        assert closed.json()["credited"] == [
            {"member_id": world.members["volunteer"].pk, "minutes": 45, "credited_minutes": 135}
        ]
        again = staff.post(f"/api/v1/activities/{act['id']}/close")
        assert again.json()["already_closed"] is True and again.json()["credited"] == []
    bal = v.get(f"/api/v1/members/{world.members['volunteer'].pk}/balance").json()
    assert bal["buckets"]["earned"] == 135
    stats = staff.get(f"/api/v1/teams/{team_id}/stats").json()
    assert stats["activities_closed"] == 1 and stats["credited_minutes"] == 135 and stats["service_minutes"] == 45
    listed = v.get("/api/v1/activities").json()
    assert any(a["id"] == act["id"] and a["my_status"] == "confirmed" for a in listed["items"])


def test_api_bad_input_writes_nothing(world: World) -> None:
    staff = world.api("staff")
    item = _item(world.bank)
    start = timezone.now() + dt.timedelta(days=1)
    good = {
        "org_id": world.community.pk,
        "title": "讲座",
        "service_item_id": item.pk,
        "place": "礼堂",
        "starts_at": _iso(start),
        "ends_at": _iso(start + dt.timedelta(hours=1)),
        "places": 2,
    }
    for change in (
        {"places": -1},
        {"places": "3"},
        {"places": 2**70},
        {"service_item_id": 2**63},
        {"starts_at": "tomorrow"},
        {"title": "x" * 500},
        {"org_id": world.other_community.pk},
        {"min_age": 200},
    ):
        r = staff.post("/api/v1/activities", {**good, **change})
        assert 400 <= r.status_code < 500, (change, r.status_code)
    assert staff.post("/api/v1/activities", {**good, "org_id": world.community2.pk}).status_code == 403
    assert not Activity.objects.exists()
    assert staff.post("/api/v1/activities/999999/close").status_code == 404
    assert staff.post("/api/v1/activities/999999999999999999999/close").status_code in (404, 422)


# --- the pages ---


def test_pages_volunteer_signs_up_and_checks_in_by_qr(world: World) -> None:
    activity = _publish(world, places=2, start_in=dt.timedelta(minutes=20))
    client = web_client(world.users["volunteer"])
    r = client.get("/activities/")
    assert r.status_code == 200 and "高血压健康讲座" in r.content.decode()
    r = client.post(f"/activities/{activity.pk}/signup/")
    assert r.status_code in (200, 302)
    assert ActivitySignup.objects.get(activity=activity).status == "confirmed"
    token = qr.current_token(activity)
    r = client.get(f"/activities/{activity.pk}/check/{token}/")
    assert r.status_code == 200 and "签到" in r.content.decode()
    r = client.post(f"/activities/{activity.pk}/check/{token}/")
    assert r.status_code == 200, r.content.decode()
    assert ActivitySignup.objects.get(activity=activity).check_in_at is not None
    r = client.post(f"/activities/{activity.pk}/check/{'0' * qr.TOKEN_LENGTH}/")
    assert r.status_code == 422 and "过期" in r.content.decode()
    staff = web_client(world.users["staff"])
    page = staff.get(f"/activities/{activity.pk}/")
    assert page.status_code == 200 and world.members["volunteer"].name in page.content.decode()
    svg = staff.get(f"/activities/{activity.pk}/qr/code/")
    assert svg.status_code == 200 and "<svg" in svg.content.decode()
    assert client.get(f"/activities/{activity.pk}/qr/").status_code == 403
    with at(activity.ends_at + dt.timedelta(minutes=1)):
        r = staff.post(f"/activities/{activity.pk}/close/")
    assert r.status_code in (200, 302)
    assert Activity.objects.get(pk=activity.pk).state == "closed"
    assert _earned(world.members["volunteer"]) > 0
    assert TeamRole.LEADER  # the module is importable from the pages' point of view


def test_a_certificate_counts_for_sign_up_only_from_its_valid_from(world: World) -> None:
    from timebank.safety.actions import do_add_certificate

    activity = _publish(world, places=5, requires_certificate="medical")
    (a,) = _volunteers(world, 1)
    today = timezone.localdate()
    do_add_certificate(
        world.users["staff"],
        a,
        kind="medical",
        issuer="区卫健委",
        valid_from=today + dt.timedelta(days=1),
        valid_until=None,
    )
    with pytest.raises(Conflict) as exc:
        actions.do_sign_up(a.user, activity, a)
    assert exc.value.code == "certificate_required"
    do_add_certificate(world.users["staff"], a, kind="medical", issuer="区卫健委", valid_from=today, valid_until=None)
    assert actions.do_sign_up(a.user, activity, a).status == "confirmed"
