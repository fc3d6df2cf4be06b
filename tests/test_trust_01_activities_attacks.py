"""Issue 12, finding 1, attacked again after the fix (/work/attack/test_attack_activities.py):

1. A leader credited one volunteer the same ten hours three times, in three activities over the same hours.
   A member's credited attendances must not overlap in time: marking or crediting the overlapping part is
   409 `overlapping_attendance`, at marking and again at close (under the member's row lock, so two closes
   in parallel cannot both credit the same hours).
2. A leader closed early by moving `ends_at` back into the past (and could extend a started activity the
   same way). Changing the times of an activity that has started, or putting its end in the past, is for
   staff of its org with a reason, audited, like backdating.
"""

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

from tests.conftest import World, error_code, web_client
from timebank.approvals.models import Approval
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.ledger.models import AccountKind, Leg
from timebank.lib.errors import Conflict
from timebank.members.models import Member
from timebank.teams import actions, qr
from timebank.teams.models import Activity, ActivityState, Team, TeamRole


@contextmanager
def at(moment: dt.datetime) -> Iterator[None]:
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def _iso(t: dt.datetime) -> str:
    return timezone.localtime(t).isoformat()


def _earned(member: Member) -> int:
    return sum(
        Leg.objects.filter(account__member=member, account__kind=AccountKind.EARNED).values_list("minutes", flat=True)
    )


def _setup(w: World) -> tuple[Team, ServiceItem]:
    team = actions.do_create_team(w.users["staff"], org=w.community, name="队", kind="residents")
    actions.do_add_team_member(w.users["staff"], team, w.members["volunteer"], role=TeamRole.LEADER)
    item = do_create_service_item(None, head_office=w.bank, name="讲座", category="health_talks", tier="ordinary")
    return team, item


def _post_activity(w: World, team: Team, item: ServiceItem, start: dt.datetime, hours: float, title: str) -> int:
    r = w.api("volunteer").post(
        "/api/v1/activities",
        {
            "team_id": team.pk,
            "title": title,
            "service_item_id": item.pk,
            "place": "活动室",
            "starts_at": _iso(start),
            "ends_at": _iso(start + dt.timedelta(hours=hours)),
            "places": 5,
        },
    )
    assert r.status_code == 201, r.json()
    return int(r.json()["id"])


# --- attack 1: the same hours credited several times ---


def test_attack_1_leader_cannot_credit_the_same_ten_hours_in_three_overlapping_activities(world: World) -> None:
    w = world
    team, item = _setup(w)
    lead = w.api("volunteer")
    friend = w.members["neighbour"]
    start = timezone.now() + dt.timedelta(minutes=10)
    ids = [_post_activity(w, team, item, start, 10, f"讲座{i}") for i in range(3)]
    answers = [
        lead.post(f"/api/v1/activities/{act}/attendance", {"member_id": friend.pk, "attended": True}) for act in ids
    ]
    assert answers[0].status_code == 200, answers[0].json()
    for r in answers[1:]:
        assert r.status_code == 409 and error_code(r) == "overlapping_attendance", r.json()
    # An explicit, smaller number of minutes does not slip through either: the hours are taken.
    r = lead.post(f"/api/v1/activities/{ids[1]}/attendance", {"member_id": friend.pk, "attended": True, "minutes": 30})
    assert r.status_code == 409 and error_code(r) == "overlapping_attendance"
    with at(start + dt.timedelta(hours=10, minutes=1)):
        for act in ids:
            r = lead.post(f"/api/v1/activities/{act}/close")
            assert r.status_code == 200, r.json()
    assert _earned(friend) == 600 and Approval.objects.count() == 0


def test_attack_1_partly_overlapping_activity_credits_only_the_free_part(world: World) -> None:
    """Marked at 10:00–15:00, then at 14:00–17:00: the second is credited 15:00–17:00 at most."""
    w = world
    team, item = _setup(w)
    lead = w.api("volunteer")
    friend = w.members["neighbour"]
    start = timezone.now() + dt.timedelta(minutes=10)
    first = _post_activity(w, team, item, start, 5, "上午")
    second = _post_activity(w, team, item, start + dt.timedelta(hours=4), 3, "下午")
    r = lead.post(f"/api/v1/activities/{first}/attendance", {"member_id": friend.pk, "attended": True})
    assert r.status_code == 200
    r = lead.post(f"/api/v1/activities/{second}/attendance", {"member_id": friend.pk, "attended": True, "minutes": 150})
    assert r.status_code == 409 and error_code(r) == "overlapping_attendance", r.json()
    assert r.json()["error"]["fields"] == {"free_minutes": 120}
    r = lead.post(f"/api/v1/activities/{second}/attendance", {"member_id": friend.pk, "attended": True})
    assert r.status_code == 200, r.json()
    with at(start + dt.timedelta(hours=7, minutes=1)):
        assert lead.post(f"/api/v1/activities/{first}/close").json()["credited"][0]["minutes"] == 300
        assert lead.post(f"/api/v1/activities/{second}/close").json()["credited"][0]["minutes"] == 120
    assert _earned(friend) == 420


def test_attack_1_overlap_scanned_in_two_activities_is_refused_at_close(world: World) -> None:
    """Scans are not checked against each other; the close is: the second close credits only the free part."""
    w = world
    _team, item = _setup(w)
    v = w.members["neighbour"]
    start = timezone.now() + dt.timedelta(minutes=10)
    a = _activity(w, item, start, 2)
    b = _activity(w, item, start + dt.timedelta(hours=1), 2)
    _scan_through(w, v, [a, b])
    with at(b.ends_at + dt.timedelta(minutes=1)):
        first = actions.do_close_activity(w.users["staff"], a)
        second = actions.do_close_activity(w.users["staff"], b)
    assert [c["minutes"] for c in first.credited] == [117]
    # a: 10:01–11:58 credited; b scanned 11:01–12:58, free 11:58–12:58.
    assert [c["minutes"] for c in second.credited] == [60]
    entry = AuditEntry.objects.get(action="activity.close", object_id=str(b.pk))
    assert entry.data["overlap_trimmed"] == {str(v.pk): 60}
    assert _earned(v) == 177


def test_attack_1_mark_refused_over_a_credited_activity_through_the_page(world: World) -> None:
    w = world
    team, item = _setup(w)
    friend = w.members["neighbour"]
    start = timezone.now() + dt.timedelta(minutes=10)
    first = _post_activity(w, team, item, start, 3, "一")
    second = _post_activity(w, team, item, start, 3, "二")
    page = web_client(w.users["volunteer"])
    r = page.post(f"/activities/{first}/attendance/{friend.pk}/", {"attended": "yes"})
    assert r.status_code == 302
    with at(start + dt.timedelta(hours=3, minutes=1)):
        assert page.post(f"/activities/{first}/close/").status_code == 302
    r = page.post(f"/activities/{second}/attendance/{friend.pk}/", {"attended": "yes"})
    assert r.status_code == 409, r.status_code
    with at(start + dt.timedelta(hours=3, minutes=2)):
        assert page.post(f"/activities/{second}/close/").status_code == 302
    assert _earned(friend) == 180


def _activity(w: World, item: ServiceItem, start: dt.datetime, hours: float) -> Activity:
    return actions.do_publish_activity(
        w.users["staff"],
        org=w.community,
        team=None,
        data=actions.ActivityInput(
            title="活动", service_item=item, place="活动室", starts_at=start,
            ends_at=start + dt.timedelta(hours=hours), places=5,
        ),
    )  # fmt: skip


def _scan_through(w: World, v: Member, activities: list[Activity]) -> None:
    """Sign up for each, check in a minute after its start and out two minutes before its end."""
    for act in activities:
        actions.do_sign_up(v.user, act, v)
    for act in activities:
        with at(act.starts_at + dt.timedelta(minutes=1)):
            actions.do_scan(v.user, act, v, qr.current_token(act))
        with at(act.ends_at - dt.timedelta(minutes=2)):
            actions.do_scan(v.user, act, v, qr.current_token(act))


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="parallel closes race on PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_attack_1_parallel_closes_of_overlapping_activities_credit_the_hours_once(world: World) -> None:
    w = world
    _team, item = _setup(w)
    v = w.members["neighbour"]
    start = timezone.now() + dt.timedelta(minutes=10)
    pairs = [(_activity(w, item, start, 2), _activity(w, item, start, 2)) for _ in range(3)]
    # Three rounds: the same two hours twice, closed at the same moment by two people.
    for a, b in pairs[:1]:
        _scan_through(w, v, [a, b])
    a, b = pairs[0]
    answers: list[Any] = [None, None]
    barrier = threading.Barrier(2)

    def close(i: int, activity: Activity, who: str) -> None:
        try:
            barrier.wait(timeout=30)
            answers[i] = actions.do_close_activity(w.users[who], activity)
        except BaseException as exc:  # reported below
            answers[i] = exc
        finally:
            connections.close_all()

    with at(start + dt.timedelta(hours=2, minutes=1)):
        pool = [
            threading.Thread(target=close, args=(0, a, "staff")),
            threading.Thread(target=close, args=(1, b, "branch_admin")),
        ]
        for t in pool:
            t.start()
        for t in pool:
            t.join(timeout=60)
    assert not any(isinstance(x, BaseException) for x in answers), answers
    credited = sorted(sum(c["minutes"] for c in r.credited) for r in answers)
    assert credited == [0, 117], credited
    assert _earned(v) == 117
    assert Activity.objects.filter(state=ActivityState.CLOSED).count() == 2


# --- attack 2: the end moved to close early or to extend afterwards ---


def test_attack_2_leader_cannot_close_early_by_moving_ends_at_into_the_past(world: World) -> None:
    w = world
    team, item = _setup(w)
    lead = w.api("volunteer")
    start = timezone.now() + dt.timedelta(minutes=10)
    act = _post_activity(w, team, item, start, 8, "讲座")
    with at(start + dt.timedelta(hours=1)):
        assert lead.post(f"/api/v1/activities/{act}/close").status_code == 409
        p = lead.patch(f"/api/v1/activities/{act}", {"ends_at": _iso(start + dt.timedelta(minutes=59))})
        assert p.status_code == 409 and error_code(p) == "activity_started", p.json()
        # Not with a reason either: only staff of the activity's org move the times of a started activity.
        p = lead.patch(
            f"/api/v1/activities/{act}", {"ends_at": _iso(start + dt.timedelta(minutes=59)), "reason": "提前散场"}
        )
        assert p.status_code == 409 and error_code(p) == "activity_started"
        c = lead.post(f"/api/v1/activities/{act}/close")
        assert c.status_code == 409 and error_code(c) == "not_ended"
    assert Activity.objects.get(pk=act).ends_at == start + dt.timedelta(hours=8)
    assert Activity.objects.get(pk=act).state == ActivityState.PUBLISHED


def test_attack_2_leader_cannot_extend_a_started_activity_and_staff_may_with_a_reason(world: World) -> None:
    w = world
    team, item = _setup(w)
    lead = w.api("volunteer")
    start = timezone.now() + dt.timedelta(minutes=10)
    act = _post_activity(w, team, item, start, 2, "讲座")
    longer = {"ends_at": _iso(start + dt.timedelta(hours=10))}
    with at(start + dt.timedelta(hours=3)):  # after the end: a backdated extension
        p = lead.patch(f"/api/v1/activities/{act}", longer)
        assert p.status_code == 409 and error_code(p) == "activity_started"
        p = lead.patch(f"/api/v1/activities/{act}", {"starts_at": _iso(start - dt.timedelta(hours=5))})
        assert p.status_code in (409, 422)
        # Other fields of a started activity may still change.
        assert lead.patch(f"/api/v1/activities/{act}", {"place": "二楼活动室"}).status_code == 200
        staff = w.api("staff")
        p = staff.patch(f"/api/v1/activities/{act}", longer)
        assert (
            p.status_code == 409
            and error_code(p) == "activity_started"
            and p.json()["error"]["fields"] == {"reason": "required"}
        )
        p = staff.patch(f"/api/v1/activities/{act}", {**longer, "reason": "按纸质签到表更正"})
        assert p.status_code == 200, p.json()
        # Staff of another community are not staff of this activity's org.
        assert w.api("staff_next").patch(f"/api/v1/activities/{act}", longer).status_code in (403, 404)
    entry = AuditEntry.objects.filter(action="activity.update", object_id=str(act)).latest("pk")
    assert entry.data["changed"]["times_reason"] == "按纸质签到表更正"
    assert Activity.objects.get(pk=act).ends_at == start + dt.timedelta(hours=10)


def test_attack_2_before_the_start_the_leader_still_moves_the_times(world: World) -> None:
    w = world
    team, item = _setup(w)
    lead = w.api("volunteer")
    start = timezone.now() + dt.timedelta(hours=2)
    act = _post_activity(w, team, item, start, 2, "讲座")
    later = {"starts_at": _iso(start + dt.timedelta(hours=1)), "ends_at": _iso(start + dt.timedelta(hours=4))}
    assert lead.patch(f"/api/v1/activities/{act}", later).status_code == 200


def test_attack_2_leader_cannot_move_the_end_into_the_past_through_the_page(world: World) -> None:
    w = world
    team, item = _setup(w)
    # On the minute, as the form's fields are: only the end moves.
    start = (timezone.localtime() + dt.timedelta(minutes=10)).replace(second=0, microsecond=0)
    act = _post_activity(w, team, item, start, 8, "讲座")
    page = web_client(w.users["volunteer"])
    fmt = "%Y-%m-%dT%H:%M"
    form = {
        "title": "讲座",
        "owner": f"team:{team.pk}",
        "service_item": item.pk,
        "place": "活动室",
        "starts_at": start.strftime(fmt),
        "ends_at": (start + dt.timedelta(minutes=59)).strftime(fmt),
        "places": 5,
        "reason": "提前散场",
    }
    with at(start + dt.timedelta(hours=1)):
        r = page.post(f"/activities/{act}/edit/", form)
        assert r.status_code == 422 and "只有社区工作人员可以更改" in r.content.decode(), r.status_code
        # The same form with the planned end saves (another place): only the times are refused.
        unchanged = {**form, "ends_at": (start + dt.timedelta(hours=8)).strftime(fmt), "place": "二楼"}
        assert page.post(f"/activities/{act}/edit/", unchanged).status_code == 302
        assert page.post(f"/activities/{act}/close/").status_code == 409
    assert Activity.objects.get(pk=act).ends_at == start + dt.timedelta(hours=8)
    with at(start + dt.timedelta(hours=1)), pytest.raises(Conflict):
        actions.do_close_activity(w.users["volunteer"], Activity.objects.get(pk=act))


def test_attack_1_activity_hours_spent_on_an_order_are_not_credited_again(world: World) -> None:
    """The volunteer checked in and out of an order 10:30–11:30 during a 10:00–12:00 activity: 60 minutes free."""
    w = world
    _team, item = _setup(w)
    v = w.members["volunteer"]
    start = timezone.now() + dt.timedelta(minutes=10)
    act = _activity(w, item, start, 2)
    body = {
        "recipient_id": w.members["recipient"].pk,
        "service_item_id": item.pk,
        "scheduled_start": _iso(start + dt.timedelta(minutes=30)),
        "planned_minutes": 60,
        "payer": "subsidy",
        "channel": "staff",
        "notes": "",
    }
    oid = w.api("staff").post("/api/v1/orders", body).json()["id"]
    assert w.api("staff").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": v.pk}).status_code == 200
    assert w.api("volunteer").post(f"/api/v1/orders/{oid}/accept").status_code == 200
    with at(start + dt.timedelta(minutes=30)):
        assert w.api("volunteer").post(f"/api/v1/orders/{oid}/check-in").status_code == 200
    with at(start + dt.timedelta(minutes=90)):
        assert w.api("volunteer").post(f"/api/v1/orders/{oid}/check-out").status_code == 200
    staff = w.api("staff")
    mark = f"/api/v1/activities/{act.pk}/attendance"
    r = staff.post(mark, {"member_id": v.pk, "attended": True, "minutes": 90})
    assert r.status_code == 409 and error_code(r) == "overlapping_attendance", r.json()
    assert staff.post(mark, {"member_id": v.pk, "attended": True}).status_code == 200
    with at(act.ends_at + dt.timedelta(minutes=1)):
        r = staff.post(f"/api/v1/activities/{act.pk}/close")
    assert r.json()["credited"] == [{"member_id": v.pk, "minutes": 60, "credited_minutes": 60}], r.json()
