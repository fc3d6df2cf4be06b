"""Teams and group activities in the API: teams with members and figures, activities with sign-ups,
the rotating check-in code, attendance and closing."""

from __future__ import annotations

from typing import Annotated, Any

import segno
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Status
from pydantic import StringConstraints

from timebank.api.types import Cursor, Page, PathId, paginate
from timebank.catalogue.models import ServiceItem
from timebank.lib.errors import Forbidden, Invalid, NotFound
from timebank.members.access import member_of
from timebank.members.models import Member
from timebank.orgs.access import access_org, has_role
from timebank.orgs.api import caller
from timebank.orgs.models import MANAGING_ROLES, Org, User
from timebank.teams import actions, qr
from timebank.teams.access import (
    access_activity,
    access_member_for_team,
    access_team,
    access_team_as_staff,
    can_manage_activity,
    can_manage_team,
    check_may_create_team,
    check_may_publish,
    my_team_ids,
    visible_activities,
    visible_teams,
)
from timebank.teams.models import (
    Activity,
    ActivitySignup,
    ActivityState,
    SignupStatus,
    Team,
    TeamMembership,
)
from timebank.teams.schemas import (
    ActivityIn,
    ActivityOut,
    ActivityPatch,
    CloseOut,
    QrOut,
    ScanIn,
    ScanOut,
    SignupIn,
    SignupOut,
    TeamIn,
    TeamKindCode,
    TeamMemberIn,
    TeamMemberOut,
    TeamOut,
    TeamPatch,
    TeamsAttendanceIn,
    TeamsCloseIn,
    TeamsReasonIn,
    TeamStatsOut,
)
from timebank.teams.stats import team_stats

router = Router(tags=["teams"])


Term = Annotated[str, StringConstraints(strict=True, max_length=20, pattern=r"^\d{4}-\d{4}-[12]$")]


# --- teams ---


@router.get("/teams", response=Page[TeamOut], summary="Teams the caller may see")
def list_teams(
    request: HttpRequest,
    org_id: PathId | None = None,
    kind: TeamKindCode | None = None,
    mine: bool = False,
    limit: int = 50,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> dict[str, Any]:
    user = caller(request)
    qs = visible_teams(user).select_related("org")
    if org_id:
        qs = qs.filter(org_id=org_id)
    if kind:
        qs = qs.filter(kind=kind)
    if mine:
        qs = qs.filter(pk__in=my_team_ids(user))
    rows, nxt = paginate(qs, limit, cursor)
    return {"items": rows, "next_cursor": nxt}  # TeamOut reads each row and the caller


@router.post("/teams", response={201: TeamOut}, summary="Create a team (staff of the org's subtree)")
def create_team(request: HttpRequest, payload: TeamIn) -> Status[Team]:
    user = caller(request)
    org = access_org(user, payload.org_id)
    check_may_create_team(user, org)
    team = actions.do_create_team(user, org=org, name=payload.name, kind=payload.kind, description=payload.description)
    return Status(201, team)


@router.get("/teams/{team_id}", response=TeamOut)
def get_team(request: HttpRequest, team_id: PathId) -> Team:
    return access_team(caller(request), team_id)


@router.patch("/teams/{team_id}", response=TeamOut)
def patch_team(request: HttpRequest, team_id: PathId, payload: TeamPatch) -> Team:
    user = caller(request)
    team = access_team_as_staff(user, team_id)
    return actions.do_update_team(user, team, **payload.dict(exclude_unset=True))


def _member(member_id: int, bank_id: int) -> Member:
    member = Member.objects.filter(pk=member_id, bank_id=bank_id).select_related("user").first()
    if member is None:
        raise NotFound(_("找不到该会员。"), code="member_not_found")
    return member


@router.get(
    "/teams/{team_id}/members", response=Page[TeamMemberOut], summary="A team's members (its managers and members)"
)
def list_team_members(
    request: HttpRequest,
    team_id: PathId,
    limit: int = 50,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> dict[str, Any]:
    user = caller(request)
    team = access_team(user, team_id)
    if not can_manage_team(user, team) and team.pk not in my_team_ids(user):
        raise Forbidden(_("只有队员、队长和工作人员可以看队员名单。"), code="not_allowed")
    qs = TeamMembership.objects.filter(team=team, active=True).select_related("member")
    rows, nxt = paginate(qs, limit, cursor)
    return {"items": rows, "next_cursor": nxt}  # TeamMemberOut reads each membership


@router.post(
    "/teams/{team_id}/members", response=TeamMemberOut, summary="Add a volunteer to a team or change their role"
)
def add_team_member(request: HttpRequest, team_id: PathId, payload: TeamMemberIn) -> TeamMembership:
    user = caller(request)
    team = access_team(user, team_id, manage=True)
    member = access_member_for_team(user, team, payload.member_id)
    ms = actions.do_add_team_member(
        user,
        team,
        member,
        role=payload.role,
        external_id=payload.external_id,
        may_appoint_leader=has_role(user, MANAGING_ROLES, team.org),
    )
    return ms


@router.post("/teams/{team_id}/members/{member_id}/remove", response=TeamMemberOut)
def remove_team_member(request: HttpRequest, team_id: PathId, member_id: PathId) -> TeamMembership:
    user = caller(request)
    team = access_team(user, team_id, manage=True)
    return actions.do_remove_team_member(user, team, access_member_for_team(user, team, member_id))


@router.get("/teams/{team_id}/stats", response=TeamStatsOut, summary="A team's figures, for all time or one year")
def get_team_stats(
    request: HttpRequest, team_id: PathId, year: Annotated[int | None, Query(ge=2000, le=2100)] = None
) -> dict[str, Any]:
    return team_stats(access_team(caller(request), team_id), year)


@router.get(
    "/teams/{team_id}/school-hours.xlsx",
    response={200: None},
    summary="A school team's hours per student for one term (德育考核), as .xlsx",
)
def school_hours(request: HttpRequest, team_id: PathId, term: Term) -> HttpResponse:
    user = caller(request)
    team = access_team(user, team_id, manage=True)
    name, data = actions.do_export_school_hours(user, team, term)
    response = HttpResponse(data, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# --- activities ---


def _item(item_id: int, bank_id: int) -> ServiceItem:
    item = ServiceItem.objects.filter(pk=item_id).first()
    if item is None:
        raise NotFound(_("找不到这个服务项目。"), code="service_item_not_found")
    if item.head_office_id != bank_id:
        raise Invalid(_("服务项目属于另一家时间银行。"), fields={"service_item_id": "other_bank"})
    return item


@router.get("/activities", response=Page[ActivityOut], summary="Group activities the caller may see")
def list_activities(
    request: HttpRequest,
    state: ActivityState | None = None,
    team_id: PathId | None = None,
    org_id: PathId | None = None,
    mine: bool = False,
    limit: int = 50,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> dict[str, Any]:
    user = caller(request)
    qs = visible_activities(user).select_related("service_item")
    if state:
        qs = qs.filter(state=state)
    if team_id:
        qs = qs.filter(team_id=team_id)
    if org_id:
        qs = qs.filter(org_id=org_id)
    if mine:
        qs = qs.filter(signups__member=member_of(user)).exclude(signups__status=SignupStatus.WITHDRAWN)
    rows, nxt = paginate(qs, limit, cursor)
    return {"items": rows, "next_cursor": nxt}  # ActivityOut reads each row and the caller


@router.post("/activities", response={201: ActivityOut}, summary="Publish a group activity (staff or a team leader)")
def create_activity(request: HttpRequest, payload: ActivityIn) -> Status[Activity]:
    user = caller(request)
    team = access_team(user, payload.team_id) if payload.team_id else None
    if payload.org_id is None and team is None:
        raise Invalid(_("请指定机构或队伍。"), fields={"org_id": "required"})
    org: Org = access_org(user, payload.org_id) if payload.org_id else team.org  # type: ignore[union-attr]
    check_may_publish(user, org, team)
    assert org.head_office_id is not None
    data = actions.ActivityInput(
        title=payload.title,
        description=payload.description,
        service_item=_item(payload.service_item_id, org.head_office_id),
        place=payload.place,
        starts_at=payload.starts_at,
        ends_at=payload.ends_at,
        signup_deadline=payload.signup_deadline,
        places=payload.places,
        requires_certificate=payload.requires_certificate,
        min_age=payload.min_age,
        max_age=payload.max_age,
        team_only=payload.team_only,
        backdate_reason=payload.reason or "",
    )
    activity = actions.do_publish_activity(user, org=org, team=team, data=data)
    return Status(201, activity)


@router.get("/activities/{activity_id}", response=ActivityOut)
def get_activity(request: HttpRequest, activity_id: PathId) -> Activity:
    return access_activity(caller(request), activity_id)


@router.patch(
    "/activities/{activity_id}", response=ActivityOut, summary="Change an open activity (tells those signed up)"
)
def patch_activity(request: HttpRequest, activity_id: PathId, payload: ActivityPatch) -> Activity:
    user = caller(request)
    a = access_activity(user, activity_id, manage=True)
    change = payload.dict(exclude_unset=True)
    item_id = change.pop("service_item_id", None)
    reason = change.pop("reason", None) or ""
    current: dict[str, Any] = {
        "title": a.title,
        "description": a.description,
        "place": a.place,
        "starts_at": a.starts_at,
        "ends_at": a.ends_at,
        "signup_deadline": a.signup_deadline,
        "places": a.places,
        "requires_certificate": a.requires_certificate,
        "min_age": a.min_age,
        "max_age": a.max_age,
        "team_only": a.team_only,
    }
    for key, value in change.items():
        if value is not None or key in ("min_age", "max_age"):
            current[key] = value
    item = _item(item_id, a.bank_id) if item_id else a.service_item
    data = actions.ActivityInput(service_item=item, backdate_reason=reason, **current)
    return actions.do_update_activity(user, a, data=data)


@router.post("/activities/{activity_id}/cancel", response=ActivityOut)
def cancel_activity(request: HttpRequest, activity_id: PathId, payload: TeamsReasonIn) -> Activity:
    user = caller(request)
    a = access_activity(user, activity_id, manage=True)
    return actions.do_cancel_activity(user, a, reason=payload.reason)


def signup_out(s: ActivitySignup, pending: dict[int, Any] | None = None) -> dict[str, Any]:
    waiting = (pending or {}).get(s.pk)
    return {
        "activity_id": s.activity_id,
        "member_id": s.member_id,
        "name": s.member.name,
        "status": s.status,
        "queued_at": s.queued_at,
        "attendance": s.attendance,
        "check_in_at": s.check_in_at,
        "check_out_at": s.check_out_at,
        "manual_minutes": s.manual_minutes,
        "credited_minutes": s.service_record.credited_minutes if s.service_record_id and s.service_record else None,
        "pending_approval_id": waiting.pk if waiting is not None else None,
    }


def _who_signs(user: User, activity: Activity, member_id: int | None) -> Member:
    me = member_of(user)
    if member_id is None or (me is not None and me.pk == member_id):
        if me is None:
            raise Forbidden(_("请用会员账号报名，或指定要报名的会员。"), code="not_a_member")
        return me
    if not can_manage_activity(user, activity):
        raise Forbidden(_("只能为自己报名。"), code="not_allowed")
    return _member(member_id, activity.bank_id)


def _body(payload: SignupIn | None) -> int | None:
    return payload.member_id if payload is not None else None


@router.post("/activities/{activity_id}/signup", response=SignupOut, summary="Sign up (a place, or the waiting list)")
def sign_up(request: HttpRequest, activity_id: PathId, payload: SignupIn | None = None) -> dict[str, Any]:
    user = caller(request)
    a = access_activity(user, activity_id)
    member = _who_signs(user, a, _body(payload))
    return signup_out(actions.do_sign_up(user, a, member))


@router.post("/activities/{activity_id}/withdraw", response=SignupOut, summary="Withdraw before the deadline")
def withdraw(request: HttpRequest, activity_id: PathId, payload: SignupIn | None = None) -> dict[str, Any]:
    user = caller(request)
    a = access_activity(user, activity_id)
    member = _who_signs(user, a, _body(payload))
    return signup_out(actions.do_withdraw(user, a, member))


@router.get(
    "/activities/{activity_id}/signups", response=Page[SignupOut], summary="Sign-ups and attendance (who runs it)"
)
def list_signups(
    request: HttpRequest,
    activity_id: PathId,
    status: SignupStatus | None = None,
    limit: int = 200,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> dict[str, Any]:
    user = caller(request)
    a = access_activity(user, activity_id, manage=True)
    qs = ActivitySignup.objects.filter(activity=a).select_related("member", "service_record")
    if status:
        qs = qs.filter(status=status)
    rows, nxt = paginate(qs, limit, cursor)
    pending = actions.pending_approvals(a)
    return {"items": [signup_out(s, pending) for s in rows], "next_cursor": nxt}


def check_url(request: HttpRequest, activity: Activity, token: str) -> str:
    return request.build_absolute_uri(reverse("teams:check", args=[activity.pk, token]))


@router.get("/activities/{activity_id}/qr", response=QrOut, summary="The current check-in code (rotates every minute)")
def get_qr(request: HttpRequest, activity_id: PathId) -> dict[str, Any]:
    user = caller(request)
    a = access_activity(user, activity_id, manage=True)
    token = qr.current_token(a)
    return {"token": token, "url": check_url(request, a, token), "expires_in_seconds": qr.seconds_left()}


@router.get("/activities/{activity_id}/qr.svg", response={200: None}, summary="The current check-in code as SVG")
def get_qr_svg(request: HttpRequest, activity_id: PathId) -> HttpResponse:
    user = caller(request)
    a = access_activity(user, activity_id, manage=True)
    svg = segno.make(check_url(request, a, qr.current_token(a)), error="m").svg_inline(scale=6)
    return HttpResponse(svg, content_type="image/svg+xml")


@router.post("/activities/{activity_id}/scan", response=ScanOut, summary="Check in or out with the venue's code")
def scan(request: HttpRequest, activity_id: PathId, payload: ScanIn) -> dict[str, Any]:
    user = caller(request)
    a = access_activity(user, activity_id)
    me = member_of(user)
    if me is None:
        raise Forbidden(_("请用会员账号扫码签到。"), code="not_a_member")
    signup, outcome = actions.do_scan(user, a, me, payload.token)
    return {**signup_out(signup), "outcome": outcome}


@router.post("/activities/{activity_id}/attendance", response=SignupOut, summary="Mark attendance by hand")
def mark_attendance(request: HttpRequest, activity_id: PathId, payload: TeamsAttendanceIn) -> dict[str, Any]:
    user = caller(request)
    a = access_activity(user, activity_id, manage=True)
    member = _member(payload.member_id, a.bank_id)
    return signup_out(actions.do_mark_attendance(user, a, member, attended=payload.attended, minutes=payload.minutes))


@router.post(
    "/activities/{activity_id}/close",
    response=CloseOut,
    summary="Close after its end: attendees' time becomes service records (some wait for approval); "
    "closing again credits nothing",
)
def close_activity(request: HttpRequest, activity_id: PathId, payload: TeamsCloseIn | None = None) -> dict[str, Any]:
    user = caller(request)
    a = access_activity(user, activity_id, manage=True)
    reason = payload.reason if payload is not None and payload.reason else ""
    result = actions.do_close_activity(user, a, reason=reason)
    return {
        "activity": result.activity,  # ActivityOut reads it and the caller
        "already_closed": result.already_closed,
        "credited": result.credited,
        "pending": result.pending,
        "no_shows": result.no_shows,
        "skipped": result.skipped,
    }
