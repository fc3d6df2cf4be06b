"""Who may see and run teams and activities: staff by the org tree, team leaders for their own team.

Another bank's team or activity is 404; one of the caller's bank outside their subtree is 403.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import Forbidden, NotFound
from timebank.members.access import member_of
from timebank.members.models import Member, MemberStatus
from timebank.orgs.access import caller_bank_id, has_role, staff_scope
from timebank.orgs.models import MANAGING_ROLES, Org, User
from timebank.teams.models import Activity, ActivitySignup, ActivityState, Team, TeamMembership, TeamRole


def led_team_ids(user: User) -> set[int]:
    """Teams the caller leads (as a member login). A suspended or departed member leads nothing, whatever
    their membership rows still say: leadership is checked here, on every call."""
    me = member_of(user)
    if me is None or not user.is_active:
        return set()
    # The status is read from the database, not from a member object the request may have cached.
    return set(
        TeamMembership.objects.filter(
            member=me, member__status=MemberStatus.ACTIVE, role=TeamRole.LEADER, active=True, team__active=True
        ).values_list("team_id", flat=True)
    )


def my_team_ids(user: User) -> set[int]:
    me = member_of(user)
    if me is None:
        return set()
    return set(TeamMembership.objects.filter(member=me, active=True).values_list("team_id", flat=True))


def visible_teams(user: User) -> QuerySet[Team]:
    if user.is_superuser:
        return Team.objects.all()
    scope = staff_scope(user)
    if scope is not None:
        return Team.objects.filter(org__path__startswith=scope.path)
    bank_id = caller_bank_id(user)
    # Members see the active teams of their bank (to know whom to join) and any team they belong to.
    if bank_id is None:
        return Team.objects.none()
    return Team.objects.filter(Q(bank_id=bank_id, active=True) | Q(pk__in=my_team_ids(user)))


def can_manage_team(user: User, team: Team) -> bool:
    return has_role(user, MANAGING_ROLES, team.org) or team.pk in led_team_ids(user)


def access_team(user: User, team_id: int, *, manage: bool = False) -> Team:
    team = Team.objects.select_related("org").filter(pk=team_id).first()
    if team is None or (not user.is_superuser and caller_bank_id(user) != team.bank_id):
        raise NotFound(_("找不到这支队伍。"), code="team_not_found")
    if manage:
        if can_manage_team(user, team):
            return team
        raise Forbidden(_("只有队长和所在社区及上级的工作人员可以管理这支队伍。"), code="not_team_manager")
    if visible_teams(user).filter(pk=team.pk).exists():
        return team
    raise Forbidden(_("这支队伍不在您的范围内。"), code="outside_subtree")


def access_member_for_team(user: User, team: Team, member_id: int) -> Member:
    """The member a manager of `team` adds or removes. Only those the caller could already know by name: members
    they may read (staff and operators of the member's home subtree, themselves, their relatives), and members
    the team already knows (a membership, present or past, or a sign-up to one of its activities). Every other
    id, of this bank or not, existing or not, is the same 404: adding ids must not reveal who they are."""
    from timebank.members.access import may_read_member

    member = Member.objects.select_related("home_org", "user").filter(pk=member_id, bank_id=team.bank_id).first()
    if member is not None:
        if may_read_member(user, member):
            return member
        known = (
            TeamMembership.objects.filter(team=team, member=member).exists()
            or ActivitySignup.objects.filter(activity__team=team, member=member).exists()
        )
        if known:
            return member
    raise NotFound(_("找不到该会员。"), code="member_not_found")


def access_team_as_staff(user: User, team_id: int) -> Team:
    """Create, rename or retire a team: staff of its org's subtree only, not its leader."""
    team = access_team(user, team_id)
    if has_role(user, MANAGING_ROLES, team.org):
        return team
    raise Forbidden(_("只有队伍所在社区及上级的工作人员可以这样做。"), code="outside_subtree")


def check_may_create_team(user: User, org: Org) -> None:
    if not has_role(user, MANAGING_ROLES, org):
        raise Forbidden(_("只有该社区及上级的工作人员可以建立队伍。"), code="outside_subtree")


def visible_activities(user: User) -> QuerySet[Activity]:
    if user.is_superuser:
        return Activity.objects.all()
    scope = staff_scope(user)
    if scope is not None:
        return Activity.objects.filter(org__path__startswith=scope.path)
    bank_id = caller_bank_id(user)
    if bank_id is None:
        return Activity.objects.none()
    me = member_of(user)
    led = led_team_ids(user)
    # Members see what is open in their bank, what they signed up for, and everything of the teams they lead.
    return Activity.objects.filter(
        Q(bank_id=bank_id, state=ActivityState.PUBLISHED) | Q(signups__member=me) | Q(team_id__in=led)
    ).distinct()


def can_manage_activity(user: User, activity: Activity) -> bool:
    if has_role(user, MANAGING_ROLES, activity.org):
        return True
    return activity.team_id is not None and activity.team_id in led_team_ids(user)


def access_activity(user: User, activity_id: int, *, manage: bool = False) -> Activity:
    activity = Activity.objects.select_related("org", "team", "service_item").filter(pk=activity_id).first()
    if activity is None or (not user.is_superuser and caller_bank_id(user) != activity.bank_id):
        raise NotFound(_("找不到这个活动。"), code="activity_not_found")
    if manage:
        if can_manage_activity(user, activity):
            return activity
        raise Forbidden(
            _("只有发布活动的队长和所在社区及上级的工作人员可以管理这个活动。"), code="not_activity_manager"
        )
    if visible_activities(user).filter(pk=activity.pk).exists():
        return activity
    raise Forbidden(_("这个活动不在您的范围内。"), code="outside_subtree")


def check_may_publish(user: User, org: Org, team: Team | None) -> None:
    """Staff of the org's subtree publish anywhere there; a team leader publishes for their own team."""
    if has_role(user, MANAGING_ROLES, org):
        return
    if team is not None and team.org_id == org.pk and team.pk in led_team_ids(user):
        return
    raise Forbidden(_("只有工作人员或队长可以发布活动。"), code="not_allowed")
