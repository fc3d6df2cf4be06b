"""The schemas of the teams API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from django.utils import timezone
from ninja import Schema
from pydantic import AfterValidator, Field, StringConstraints

from timebank.api.types import Id, NoNul, OrgName, Reason
from timebank.catalogue.actions import multiplier_for
from timebank.members.access import member_of
from timebank.teams import actions
from timebank.teams.access import can_manage_activity, can_manage_team, my_team_ids
from timebank.teams.models import Activity, ActivitySignup, SignupStatus, Team, TeamKind, TeamMembership, TeamRole

Text200 = Annotated[str, StringConstraints(strict=True, max_length=200), NoNul]
Text500 = Annotated[str, StringConstraints(strict=True, max_length=500), NoNul]
Text1000 = Annotated[str, StringConstraints(strict=True, max_length=1000), NoNul]
ExternalId = Annotated[str, StringConstraints(strict=True, max_length=40), NoNul]
Places = Annotated[int, Field(strict=True, ge=1, le=actions.MAX_PLACES)]
Age = Annotated[int, Field(strict=True, ge=0, le=120)]
Minutes = Annotated[int, Field(strict=True, ge=1, le=24 * 60)]
TeamKindCode = TeamKind
CertificateCode = Literal["", "nursing", "counselling", "legal", "electrician", "medical", "first_aid"]


def _aware(value: dt.datetime) -> dt.datetime:
    if timezone.is_naive(value):
        raise ValueError("times need an offset")
    return value


AwareTime = Annotated[dt.datetime, AfterValidator(_aware)]
Token = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64), NoNul]


class TeamIn(Schema):
    org_id: Id
    name: OrgName
    kind: TeamKindCode
    description: Text500 = ""


class TeamPatch(Schema):
    name: OrgName | None = None
    kind: TeamKindCode | None = None
    description: Text500 | None = None
    active: bool | None = None


class TeamOut(Schema):
    id: int
    org_id: int
    name: str
    kind: str
    description: str
    active: bool
    members: int
    is_mine: bool
    may_manage: bool

    # Read from the Team row and the caller, the request's user in the schema's context: whether they are in it
    # (teams.access.my_team_ids) and may manage it (teams.access.can_manage_team), each rule in its one place.
    @staticmethod
    def resolve_members(team: Team) -> int:
        return TeamMembership.objects.filter(team=team, active=True).count()

    @staticmethod
    def resolve_is_mine(team: Team, context: dict[str, Any]) -> bool:
        return team.pk in my_team_ids(context["request"].user)

    @staticmethod
    def resolve_may_manage(team: Team, context: dict[str, Any]) -> bool:
        return can_manage_team(context["request"].user, team)


class TeamMemberIn(Schema):
    member_id: Id
    role: TeamRole = TeamRole.MEMBER
    external_id: ExternalId = ""


class TeamMemberOut(Schema):
    member_id: int
    name: str
    role: str
    external_id: str
    active: bool
    joined_at: dt.datetime

    # Read from the TeamMembership row; `name` is its member's.
    @staticmethod
    def resolve_name(membership: TeamMembership) -> str:
        return membership.member.name


class TeamStatsOut(Schema):
    team_id: int
    year: int | None
    members: int
    leaders: int
    activities: int
    activities_closed: int
    attendances: int
    volunteers_served: int
    service_minutes: int
    credited_minutes: int


class ActivityIn(Schema):
    org_id: Id | None = None  # defaults to the team's org
    team_id: Id | None = None
    title: OrgName
    description: Text1000 = ""
    service_item_id: Id
    place: Text200
    starts_at: AwareTime
    ends_at: AwareTime
    signup_deadline: AwareTime | None = None
    places: Places
    requires_certificate: CertificateCode | None = None
    min_age: Age | None = None
    max_age: Age | None = None
    team_only: bool = False
    # Staff only: why an activity whose start is already past is entered (a paper sign-in sheet).
    reason: Reason | None = None


class ActivityPatch(Schema):
    title: OrgName | None = None
    description: Text1000 | None = None
    service_item_id: Id | None = None
    place: Text200 | None = None
    starts_at: AwareTime | None = None
    ends_at: AwareTime | None = None
    signup_deadline: AwareTime | None = None
    places: Places | None = None
    requires_certificate: CertificateCode | None = None
    min_age: Age | None = None
    max_age: Age | None = None
    team_only: bool | None = None
    # Staff only: why the start moves into the past.
    reason: Reason | None = None


class ActivityOut(Schema):
    id: int
    org_id: int
    team_id: int | None
    title: str
    description: str
    service_item_id: int
    service_item_name: str
    tier: str
    multiplier: float
    place: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    signup_deadline: dt.datetime
    places: int
    confirmed: int
    waiting: int
    requires_certificate: str
    min_age: int | None
    max_age: int | None
    team_only: bool
    state: str
    cancel_reason: str
    closed_at: dt.datetime | None
    my_status: str | None
    my_attendance: str | None
    may_manage: bool

    # Read from the Activity row with its service item, its sign-ups counted, and the caller, the request's user in the
    # schema's context: their own sign-up, and whether they may manage it (teams.access.can_manage_activity).
    @staticmethod
    def resolve_service_item_name(activity: Activity) -> str:
        return activity.service_item.name

    @staticmethod
    def resolve_tier(activity: Activity) -> str:
        return activity.service_item.tier

    @staticmethod
    def resolve_multiplier(activity: Activity) -> float:
        return float(multiplier_for(activity.bank_id, activity.service_item.tier))

    @staticmethod
    def resolve_confirmed(activity: Activity) -> int:
        return ActivitySignup.objects.filter(activity=activity, status=SignupStatus.CONFIRMED).count()

    @staticmethod
    def resolve_waiting(activity: Activity) -> int:
        return ActivitySignup.objects.filter(activity=activity, status=SignupStatus.WAITING).count()

    @staticmethod
    def resolve_my_status(activity: Activity, context: dict[str, Any]) -> str | None:
        mine = _my_signup(activity, context)
        return mine.status if mine else None

    @staticmethod
    def resolve_my_attendance(activity: Activity, context: dict[str, Any]) -> str | None:
        mine = _my_signup(activity, context)
        return mine.attendance if mine else None

    @staticmethod
    def resolve_may_manage(activity: Activity, context: dict[str, Any]) -> bool:
        return can_manage_activity(context["request"].user, activity)


def _my_signup(activity: Activity, context: dict[str, Any]) -> ActivitySignup | None:
    me = member_of(context["request"].user)
    return ActivitySignup.objects.filter(activity=activity, member=me).first() if me is not None else None


class TeamsReasonIn(Schema):
    reason: Reason


class SignupIn(Schema):
    member_id: Id | None = None  # staff or the leader signing someone up; default: the caller


class SignupOut(Schema):
    activity_id: int
    member_id: int
    name: str
    status: str
    queued_at: dt.datetime
    attendance: str
    check_in_at: dt.datetime | None
    check_out_at: dt.datetime | None
    manual_minutes: int | None
    credited_minutes: int | None
    # The credit that waits for a second person (four eyes), if any.
    pending_approval_id: int | None = None


class QrOut(Schema):
    token: str
    url: str
    expires_in_seconds: int


class ScanIn(Schema):
    token: Token


class ScanOut(SignupOut):
    outcome: Literal["check_in", "check_out", "already"]


class TeamsAttendanceIn(Schema):
    member_id: Id
    attended: bool
    minutes: Minutes | None = None


class CreditOut(Schema):
    member_id: int
    minutes: int
    credited_minutes: int


class PendingCreditOut(CreditOut):
    approval_id: int


class TeamsCloseIn(Schema):
    # Staff of the activity's org only: why it closes before its planned end.
    reason: Reason | None = None


class CloseOut(Schema):
    activity: ActivityOut
    already_closed: bool
    credited: list[CreditOut]
    # Credits that wait for a second person (the attendee ran the activity, or above the approval threshold).
    pending: list[PendingCreditOut]
    no_shows: list[int]
    skipped: list[int]
