"""Demo teams and activities, seeded at the end of the demo's timeline (the clock is then about now):

- a "five elders" team (银耀绸都老干部志愿服务队) led by the demo volunteer, who publishes a health talk in two
  days with more sign-ups than places, so the waiting list shows;
- a school team whose students served at a clean-up earlier today, closed by staff with their hours credited,
  so the team page and the school export have figures.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from timebank.catalogue.models import ServiceItem
from timebank.lib import clock
from timebank.members.models import Member, MemberStatus
from timebank.orgs.models import Org, User
from timebank.teams import actions
from timebank.teams.models import Activity, Team, TeamKind, TeamRole


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))


def seed_teams(orgs: dict[str, Org], users: dict[str, User]) -> list[Team]:
    """`orgs` and `users` by the demo's names; skipped when the plan lacks them."""
    community = orgs.get("顺河社区")
    staff = users.get("staff")
    leader = Member.objects.filter(user__username="volunteer").first()
    if community is None or staff is None or leader is None or leader.user is None:
        return []
    bank_id = community.head_office_id
    talk = ServiceItem.objects.filter(head_office_id=bank_id, name="健康讲座").first()
    clean_up = ServiceItem.objects.filter(head_office_id=bank_id, name="社区环保清洁").first()
    if talk is None or clean_up is None:
        return []
    volunteers = Member.objects.filter(bank_id=bank_id, is_volunteer=True, status=MemberStatus.ACTIVE).exclude(
        pk=leader.pk
    )
    now = clock.now()
    today = timezone.localdate(now)

    elders = actions.do_create_team(
        staff,
        org=community,
        name="银耀绸都老干部志愿服务队",
        kind=TeamKind.FIVE_ELDERS,
        description="退休老干部、老教师、老党员组成，开展健康讲座、政策宣讲和邻里调解。",
    )
    actions.do_add_team_member(staff, elders, leader, role=TeamRole.LEADER)
    seniors = list(volunteers.filter(home_org=community, birth_date__isnull=False).order_by("birth_date")[:8])
    for m in seniors:
        actions.do_add_team_member(staff, elders, m)

    school = actions.do_create_team(
        staff,
        org=community,
        name="枣庄市第八中学志愿服务队",
        kind=TeamKind.SCHOOL,
        description="高中学生志愿者，周末到社区开展环保和敬老服务；服务时长计入德育考核。",
    )
    students = list(volunteers.filter(birth_date__isnull=False).order_by("-birth_date")[:6])
    for n, m in enumerate(students, start=1):
        actions.do_add_team_member(staff, school, m, external_id=f"2024{n:04d}")

    # The leader publishes a health talk in two days; two more people sign up than there are places.
    others = list(volunteers.exclude(pk__in=[m.pk for m in seniors]).order_by("pk")[:4])
    signing = [leader, *seniors, *others][:10]
    start = _at(today + dt.timedelta(days=2), 9, 30)
    health_talk = actions.do_publish_activity(
        leader.user,
        org=community,
        team=elders,
        data=actions.ActivityInput(
            title="健康讲座：冬季心脑血管病预防",
            service_item=talk,
            place="顺河社区党群服务中心二楼",
            starts_at=start,
            ends_at=start + dt.timedelta(hours=2),
            signup_deadline=start - dt.timedelta(hours=12),
            places=max(1, len(signing) - 2),
            description="请社区医院的医生讲解冬季心脑血管病的预防和用药，志愿者负责签到、引导和测血压。",
        ),
    )
    for m in signing:
        actions.do_sign_up(m.user if m.user_id else staff, health_talk, m)

    # Today's clean-up by the students: attendance kept on the paper sheet, entered by staff, closed.
    clean_start = now - dt.timedelta(hours=3)
    clean_day: Activity = actions.do_publish_activity(
        staff,
        org=community,
        team=school,
        data=actions.ActivityInput(
            title="运河岸边环保清洁日",
            service_item=clean_up,
            place="顺河社区运河岸边",
            starts_at=clean_start,
            ends_at=clean_start + dt.timedelta(hours=2),
            signup_deadline=clean_start,
            places=10,
            team_only=True,
            # It already happened: staff enter it from the paper sheet, which only staff may, with a reason.
            backdate_reason="按纸质签到表补录",
        ),
    )
    for n, m in enumerate(students):
        if n == len(students) - 1:
            continue  # one student did not come
        actions.do_mark_attendance(staff, clean_day, m, attended=True, minutes=120 if n % 2 == 0 else 90)
    actions.do_close_activity(staff, clean_day)
    return [elders, school]
