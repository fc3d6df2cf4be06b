"""Writes of teams and group activities. Each action is atomic and audited.

Teams are written here; activities (publish, change, cancel, sign-ups and the waiting list) in
`timebank.teams.activities`, attendance and closing (which credits) in `timebank.teams.attendance`, and the
messages to members in `timebank.teams.messages`. Their actions are named here too, so the API, the pages,
the demo and the tests call every write of the app through `timebank.teams.actions`.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.lib.errors import Conflict, Forbidden, Invalid
from timebank.lib.races import unique_or_conflict
from timebank.members.models import Member, MemberStatus
from timebank.orgs.actions import check_name
from timebank.orgs.models import Org, User
from timebank.teams.activities import (
    MAX_PLACES,
    ActivityInput,
    check_eligible,
    check_not_backdated,
    do_cancel_activity,
    do_publish_activity,
    do_sign_up,
    do_update_activity,
    do_withdraw,
)
from timebank.teams.attendance import (
    CloseResult,
    SheetMark,
    credit_key,
    do_close_activity,
    do_enter_activity_sheet,
    do_mark_attendance,
    do_scan,
    minutes_to_credit,
    pending_approvals,
)
from timebank.teams.common import clean_text, is_staff_of
from timebank.teams.messages import notify_members, send_activity_reminders
from timebank.teams.models import Team, TeamKind, TeamMembership, TeamRole

__all__ = [
    "MAX_PLACES",
    "ActivityInput",
    "CloseResult",
    "SheetMark",
    "check_eligible",
    "check_not_backdated",
    "credit_key",
    "do_add_team_member",
    "do_cancel_activity",
    "do_close_activity",
    "do_create_team",
    "do_enter_activity_sheet",
    "do_export_school_hours",
    "do_mark_attendance",
    "do_publish_activity",
    "do_remove_team_member",
    "do_scan",
    "do_sign_up",
    "do_update_activity",
    "do_update_team",
    "do_withdraw",
    "drop_leadership",
    "is_staff_of",
    "minutes_to_credit",
    "notify_members",
    "pending_approvals",
    "send_activity_reminders",
]


@transaction.atomic
def do_create_team(actor: User | None, *, org: Org, name: str, kind: str, description: str = "") -> Team:
    name = check_name(name)
    if kind not in TeamKind.values:
        raise Invalid(_("队伍类型不对。"), fields={"kind": "invalid"})
    description = clean_text(description, "description", 500)
    if Team.objects.filter(org=org, name=name).exists():
        raise Conflict(_("这个社区已经有同名的队伍。"), code="duplicate_team", fields={"name": "taken"})
    # The same name created twice at once: the second INSERT waits for the first, then is this 409 too.
    with unique_or_conflict(_("这个社区已经有同名的队伍。"), code="duplicate_team", fields={"name": "taken"}):
        team = Team.objects.create(bank_id=org.bank_pk, org=org, name=name, kind=kind, description=description)
    record(actor, "team.create", team, bank_id=team.bank_id, data={"name": name, "kind": kind, "org": org.pk})
    return team


@transaction.atomic
def do_update_team(
    actor: User | None,
    team: Team,
    *,
    name: str | None = None,
    kind: str | None = None,
    description: str | None = None,
    active: bool | None = None,
) -> Team:
    team = Team.objects.select_for_update().get(pk=team.pk)
    changes: dict[str, Any] = {}
    if name is not None:
        name = check_name(name)
        if Team.objects.filter(org_id=team.org_id, name=name).exclude(pk=team.pk).exists():
            raise Conflict(_("这个社区已经有同名的队伍。"), code="duplicate_team", fields={"name": "taken"})
        changes["name"] = name
    if kind is not None:
        if kind not in TeamKind.values:
            raise Invalid(_("队伍类型不对。"), fields={"kind": "invalid"})
        changes["kind"] = kind
    if description is not None:
        changes["description"] = clean_text(description, "description", 500)
    if active is not None:
        changes["active"] = active
    for key, value in changes.items():
        setattr(team, key, value)
    if changes:
        with unique_or_conflict(_("这个社区已经有同名的队伍。"), code="duplicate_team", fields={"name": "taken"}):
            team.save(update_fields=list(changes))
        record(actor, "team.update", team, bank_id=team.bank_id, data={k: str(v) for k, v in changes.items()})
    return team


@transaction.atomic
def do_add_team_member(
    actor: User | None,
    team: Team,
    member: Member,
    *,
    role: str = TeamRole.MEMBER,
    external_id: str = "",
    may_appoint_leader: bool = True,
) -> TeamMembership:
    """Join a volunteer to a team, or change their role there. Volunteers may belong to several teams."""
    if role not in TeamRole.values:
        raise Invalid(_("队内角色只能是队长或队员。"), fields={"role": "invalid"})
    if member.bank_id != team.bank_id:
        raise Invalid(_("会员属于另一家时间银行。"), fields={"member_id": "other_bank"})
    if not member.is_volunteer or member.status in (MemberStatus.LEFT, MemberStatus.SUSPENDED):
        raise Conflict(_("只有在册的志愿者可以加入队伍。"), code="not_a_volunteer")
    external_id = clean_text(external_id, "external_id", 40)
    # Adds to one team wait for each other, so the same member added twice at once is added, then updated.
    Team.objects.select_for_update().filter(pk=team.pk).values_list("pk").get()
    membership = TeamMembership.objects.select_for_update().filter(team=team, member=member).first()
    current_role = membership.role if membership is not None and membership.active else None
    if role == TeamRole.LEADER and current_role != TeamRole.LEADER and not may_appoint_leader:
        raise Forbidden(_("只有工作人员可以任命队长。"), code="not_allowed")
    if membership is None:
        membership = TeamMembership.objects.create(team=team, member=member, role=role, external_id=external_id)
    else:
        membership.role = role
        membership.active = True
        if external_id:
            membership.external_id = external_id
        membership.save(update_fields=["role", "active", "external_id"])
    record(
        actor,
        "team.add_member",
        team,
        bank_id=team.bank_id,
        data={"member": member.pk, "role": role, "was": current_role},
    )
    return membership


@transaction.atomic
def do_remove_team_member(actor: User | None, team: Team, member: Member) -> TeamMembership:
    membership = TeamMembership.objects.select_for_update().filter(team=team, member=member, active=True).first()
    if membership is None:
        raise Conflict(_("这位会员不在这支队伍里。"), code="not_a_team_member")
    membership.active = False
    membership.save(update_fields=["active"])
    record(actor, "team.remove_member", team, bank_id=team.bank_id, data={"member": member.pk})
    return membership


def drop_leadership(actor: User | None, member: Member) -> list[int]:
    """A member suspended or leaving stops leading: their leader roles become plain membership (and a member who
    leaves leaves their teams). Not given back on reactivation: staff appoint leaders again. Answers the teams.

    Runs inside the member's status change; `led_team_ids` refuses a suspended leader on its own as well."""
    left = member.status == MemberStatus.LEFT
    rows = list(
        TeamMembership.objects.select_for_update()
        .filter(member=member)
        .filter(Q(role=TeamRole.LEADER) | Q(active=True) if left else Q(role=TeamRole.LEADER))
        .select_related("team")
        .order_by("pk")
    )
    for ms in rows:
        was_leader = ms.role == TeamRole.LEADER
        ms.role = TeamRole.MEMBER
        ms.active = ms.active and not left
        ms.save(update_fields=["role", "active"])
        if was_leader:
            record(
                actor,
                "team.leader_removed",
                ms.team,
                bank_id=ms.team.bank_id,
                data={"member": member.pk, "because": member.status},
            )
    return [ms.team_id for ms in rows]


@transaction.atomic
def do_export_school_hours(actor: User | None, team: Team, term_code: str) -> tuple[str, bytes]:
    """The school's moral-education export for one term. Audited: it lists students by name."""
    from timebank.teams.export import school_workbook
    from timebank.teams.stats import parse_term

    if team.kind != TeamKind.SCHOOL:
        raise Conflict(_("只有学校队伍可以导出德育考核时长。"), code="not_a_school")
    term = parse_term(term_code)
    data = school_workbook(team, term)
    record(actor, "team.export_school_hours", team, bank_id=team.bank_id, data={"term": term.code})
    return f"team-{team.pk}-{term.code}.xlsx", data
