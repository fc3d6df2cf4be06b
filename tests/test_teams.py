"""Volunteer teams: kinds, leaders and members, access by the org tree, figures, and the school's term export."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from tests.conftest import World, error_code, make_member, web_client
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.ledger.actions import do_reversal
from timebank.ledger.models import AccountKind, Leg, TransactionKind
from timebank.lib.errors import Conflict, Forbidden
from timebank.members.models import Member
from timebank.orders.records import do_service_record
from timebank.teams import actions
from timebank.teams.models import Team, TeamKind
from timebank.teams.stats import current_term, parse_term

SHANGHAI = ZoneInfo("Asia/Shanghai")


@contextmanager
def at(moment: dt.datetime) -> Iterator[None]:
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def _team(w: World, kind: str = TeamKind.FIVE_ELDERS, name: str = "银耀绸都老干部志愿服务队") -> Team:
    return actions.do_create_team(w.users["staff"], org=w.community, name=name, kind=kind)


def test_team_kinds_and_memberships(world: World) -> None:
    team = _team(world)
    other = _team(world, TeamKind.PARTY_BRANCH, "顺河社区党支部")
    v = world.members["volunteer"]
    actions.do_add_team_member(world.users["staff"], team, v, role="leader")
    actions.do_add_team_member(world.users["staff"], other, v)  # a volunteer may be in several teams
    assert set(v.team_memberships.values_list("team__kind", "role")) == {
        ("five_elders", "leader"),
        ("party_branch", "member"),
    }
    with pytest.raises(Conflict) as exc:
        actions.do_create_team(world.users["staff"], org=world.community, name=team.name, kind="school")
    assert exc.value.code == "duplicate_team"
    # A recipient is not a volunteer; another bank's member is refused.
    with pytest.raises(Conflict):
        actions.do_add_team_member(world.users["staff"], team, world.members["recipient"])
    # A leader may add members but not appoint leaders.
    n = world.members["neighbour"]
    with pytest.raises(Forbidden):
        actions.do_add_team_member(v.user, team, n, role="leader", may_appoint_leader=False)
    actions.do_add_team_member(v.user, team, n, may_appoint_leader=False)
    actions.do_remove_team_member(v.user, team, n)
    assert not team.memberships.get(member=n).active
    assert AuditEntry.objects.filter(action__startswith="team.").count() >= 5


def test_team_api_access_by_org_tree(world: World) -> None:
    staff = world.api("staff")
    r = staff.post("/api/v1/teams", {"org_id": world.community.pk, "name": "顺河医疗队", "kind": "medical"})
    assert r.status_code == 201, r.json()
    team_id = r.json()["id"]
    # Staff of another community may not create teams here nor manage this one; another bank sees a 404.
    assert (
        world.api("staff_next")
        .post("/api/v1/teams", {"org_id": world.community.pk, "name": "x", "kind": "medical"})
        .status_code
        == 403
    )
    assert world.api("staff_next").patch(f"/api/v1/teams/{team_id}", {"name": "改名"}).status_code == 403
    assert world.api("other_bank_staff").get(f"/api/v1/teams/{team_id}").status_code == 404
    assert world.api("branch_admin").get(f"/api/v1/teams/{team_id}").status_code == 200
    assert staff.post("/api/v1/teams", {"org_id": world.community.pk, "name": "x", "kind": "army"}).status_code == 422
    # Members of the bank see it; its member list only for its members and managers.
    v = world.api("volunteer")
    assert v.get(f"/api/v1/teams/{team_id}").status_code == 200
    assert v.get(f"/api/v1/teams/{team_id}/members").status_code == 403
    r = staff.post(f"/api/v1/teams/{team_id}/members", {"member_id": world.members["volunteer"].pk, "role": "leader"})
    assert r.status_code == 200 and r.json()["role"] == "leader"
    assert v.get("/api/v1/teams", {"mine": "true"}).json()["items"][0]["may_manage"] is True
    # The leader adds a volunteer the team knows (signed up for its activity); one it does not know is refused
    # like an unknown id, so adding ids does not reveal names; the other bank's member is unknown here.
    assert v.post(f"/api/v1/teams/{team_id}/members", {"member_id": world.members["neighbour"].pk}).status_code == 404
    item = do_create_service_item(None, head_office=world.bank, name="义诊", category="health_care", tier="ordinary")
    start = dt.datetime.now(SHANGHAI) + dt.timedelta(days=3)
    activity = actions.do_publish_activity(
        world.users["staff"],
        org=world.community,
        team=Team.objects.get(pk=team_id),
        data=actions.ActivityInput(
            title="义诊",
            service_item=item,
            place="活动室",
            starts_at=start,
            ends_at=start + dt.timedelta(hours=1),
            places=5,
        ),
    )
    actions.do_sign_up(world.users["neighbour"], activity, world.members["neighbour"])
    r = v.post(f"/api/v1/teams/{team_id}/members", {"member_id": world.members["neighbour"].pk})
    assert r.status_code == 200, r.json()
    assert v.post(f"/api/v1/teams/{team_id}/members", {"member_id": world.members["stranger"].pk}).status_code == 404
    assert (
        error_code(
            v.post(f"/api/v1/teams/{team_id}/members", {"member_id": world.members["neighbour"].pk, "role": "leader"})
        )
        == "not_allowed"
    )
    names = {m["name"] for m in v.get(f"/api/v1/teams/{team_id}/members").json()["items"]}
    assert names == {"王秀英", "赵阿姨"}
    r = v.post(f"/api/v1/teams/{team_id}/members/{world.members['neighbour'].pk}/remove")
    assert r.status_code == 200 and r.json()["active"] is False
    stats = staff.get(f"/api/v1/teams/{team_id}/stats", {"year": 2025}).json()
    assert stats["members"] == 1 and stats["leaders"] == 1 and stats["year"] == 2025


def _credited_in(member: Member, start: dt.datetime, end: dt.datetime) -> int:
    legs = Leg.objects.filter(
        account__member=member,
        account__kind=AccountKind.EARNED,
        transaction__created_at__gte=start,
        transaction__created_at__lt=end,
        transaction__kind__in=[TransactionKind.SERVICE_RECORD, TransactionKind.DEPOSIT, TransactionKind.REVERSAL],
    )
    return sum(legs.values_list("minutes", flat=True))


def test_school_export_matches_ledger_for_the_term(world: World) -> None:
    school = _team(world, TeamKind.SCHOOL, "枣庄八中志愿服务队")
    students = [make_member(world.community, f"学生{i}", born=dt.date(2008, 1, 1 + i)) for i in range(3)]
    for i, s in enumerate(students):
        actions.do_add_team_member(world.users["staff"], school, s, external_id=f"2024{i:03d}")
    outsider = make_member(world.community, "别校学生", born=dt.date(2008, 5, 5))
    item = do_create_service_item(
        None, head_office=world.bank, name="社区环保", category="environment", tier="technical"
    )
    term = parse_term("2024-2025-1")
    inside = dt.datetime(2024, 10, 12, 10, 0, tzinfo=SHANGHAI)
    before = dt.datetime(2024, 8, 20, 10, 0, tzinfo=SHANGHAI)
    staff = world.users["staff"]
    # In the term: two records for student 0 (one later reversed), one for student 1; nothing for student 2.
    with at(inside):
        do_service_record(
            staff, volunteer=students[0], service_item=item, minutes=90, served_at=inside, idempotency_key="a"
        )
        rec, _r = do_service_record(
            staff, volunteer=students[0], service_item=item, minutes=30, served_at=inside, idempotency_key="b"
        )
        do_service_record(
            staff, volunteer=students[1], service_item=item, minutes=45, served_at=inside, idempotency_key="c"
        )
        do_service_record(
            staff, volunteer=outsider, service_item=item, minutes=60, served_at=inside, idempotency_key="d"
        )
        assert rec.transaction is not None
        do_reversal(world.users["head_office_admin"], original=rec.transaction, reason="重复登记", idempotency_key="r")
    with at(before):
        do_service_record(
            staff, volunteer=students[1], service_item=item, minutes=600, served_at=before, idempotency_key="e"
        )
    name, data = actions.do_export_school_hours(staff, school, term.code)
    assert name.endswith(".xlsx")
    ws = load_workbook(io.BytesIO(data)).active
    rows = list(ws.iter_rows(values_only=True))
    header, body = rows[1], rows[2:]
    assert header[1] == "学号" and len(body) == 3  # one row per student, no one else
    start = dt.datetime(2024, 9, 1, tzinfo=SHANGHAI)
    end = dt.datetime(2025, 2, 1, tzinfo=SHANGHAI)
    by_id = {r[1]: r for r in body}
    for i, s in enumerate(students):
        minutes = _credited_in(s, start, end)
        assert by_id[f"2024{i:03d}"][6] == minutes
        assert by_id[f"2024{i:03d}"][5] == round(minutes / 60, 2)
    assert by_id["2024000"][6] == 180  # 90 × 2; the reversed 30 × 2 is gone
    assert by_id["2024001"][6] == 90  # the summer's 600 is outside the term
    assert by_id["2024002"][6] == 0
    assert AuditEntry.objects.filter(action="team.export_school_hours").count() == 1
    with pytest.raises(Conflict):
        actions.do_export_school_hours(staff, _team(world), term.code)


def test_school_export_api_and_page(world: World) -> None:
    school = _team(world, TeamKind.SCHOOL, "枣庄八中志愿服务队")
    actions.do_add_team_member(world.users["staff"], school, world.members["volunteer"], external_id="2024001")
    staff = world.api("staff")
    r = staff.get(f"/api/v1/teams/{school.pk}/school-hours.xlsx", {"term": "2024-2025-2"})
    assert r.status_code == 200 and r["Content-Type"].startswith("application/vnd.openxmlformats")
    assert staff.get(f"/api/v1/teams/{school.pk}/school-hours.xlsx", {"term": "2024"}).status_code == 422
    assert (
        world.api("neighbour").get(f"/api/v1/teams/{school.pk}/school-hours.xlsx", {"term": "2024-2025-2"}).status_code
        == 403
    )
    client = web_client(world.users["staff"])
    page = client.get(f"/teams/{school.pk}/")
    assert page.status_code == 200 and "德育考核" in page.content.decode()
    r = client.get(f"/teams/{school.pk}/export/", {"term": current_term().code})
    assert r.status_code == 200 and r["Content-Disposition"].startswith("attachment")
    assert client.get(f"/teams/{school.pk}/export/", {"term": "bad"}).status_code == 422


def test_term_parsing() -> None:
    assert parse_term("2024-2025-1").start == dt.date(2024, 9, 1)
    assert parse_term("2024-2025-2").end == dt.date(2025, 9, 1)
    assert current_term(dt.date(2025, 1, 10)).code == "2024-2025-1"
    assert current_term(dt.date(2025, 3, 10)).code == "2024-2025-2"
    for bad in ("2024-2026-1", "2024-2025-3", "", "abc"):
        with pytest.raises(Exception):  # noqa: B017 - Invalid
            parse_term(bad)


def test_team_pages(world: World) -> None:
    staff = web_client(world.users["staff"])
    r = staff.post(
        "/teams/new/", {"name": "顺河居民志愿队", "org": world.community.pk, "kind": "residents", "description": ""}
    )
    assert r.status_code == 302, r.content.decode()
    team = Team.objects.get(name="顺河居民志愿队")
    r = staff.post(f"/teams/{team.pk}/members/", {"member_id": world.members["volunteer"].pk, "role": "leader"})
    assert r.status_code == 302
    r = staff.post(f"/teams/{team.pk}/members/", {"member_id": world.members["recipient"].pk, "role": "member"})
    assert r.status_code == 422 and "志愿者" in r.content.decode()
    vol = web_client(world.users["volunteer"])
    page = vol.get("/teams/")
    assert page.status_code == 200 and "顺河居民志愿队" in page.content.decode()
    assert vol.get(f"/teams/{team.pk}/").status_code == 200
    # The leader may publish for the team from the activity form.
    form = vol.get("/activities/new/")
    assert form.status_code == 200 and f"team:{team.pk}" in form.content.decode()
    assert web_client(world.users["neighbour"]).get("/activities/new/").status_code == 403
    assert web_client(world.users["stranger"]).get(f"/teams/{team.pk}/").status_code == 404


def test_demo_seeds_teams_and_activities(db: None) -> None:
    from timebank.demo.generator import MIN_MEMBERS, generate
    from timebank.ledger.verify import verify
    from timebank.teams.models import Activity, ActivitySignup

    generate(members=max(MIN_MEMBERS, 30))
    elders = Team.objects.get(kind=TeamKind.FIVE_ELDERS)
    assert elders.memberships.filter(role="leader", member__user__username="volunteer").exists()
    talk = Activity.objects.get(team=elders)
    assert talk.state == "published" and talk.created_by is not None and talk.created_by.username == "volunteer"
    assert ActivitySignup.objects.filter(activity=talk, status="waiting").exists()
    closed = Activity.objects.get(team__kind=TeamKind.SCHOOL)
    assert closed.state == "closed"
    assert ActivitySignup.objects.filter(activity=closed, service_record__isnull=False).count() >= 3
    assert verify().ok
