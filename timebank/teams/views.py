"""The teams and activities pages: volunteers on their phones (open activities, sign-up, QR check-in, my
teams), and staff or team leaders at a desk (publish, the rotating QR code, attendance, close, team figures)."""

from __future__ import annotations

from typing import Any

import segno
from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.catalogue.actions import multiplier_for
from timebank.catalogue.models import ServiceItem
from timebank.lib import clock
from timebank.lib.errors import ApiError, Forbidden, NotFound
from timebank.members.models import Member
from timebank.members.person import who
from timebank.ops.idempotency import submit_once
from timebank.orgs.access import caller_bank_id, has_role, visible_orgs
from timebank.orgs.models import MANAGING_ROLES, Org, OrgKind
from timebank.orgs.scope import is_workbench_user, user_of
from timebank.teams import actions, qr
from timebank.teams.access import (
    access_activity,
    access_member_for_team,
    access_team,
    can_manage_activity,
    can_manage_team,
    check_may_create_team,
    check_may_publish,
    led_team_ids,
    my_team_ids,
    visible_activities,
    visible_teams,
)
from timebank.teams.forms import (
    ActivityForm,
    AttendanceForm,
    CancelForm,
    CloseForm,
    TeamForm,
    TeamMemberForm,
    TermForm,
)
from timebank.teams.models import Activity, ActivitySignup, ActivityState, SignupStatus, Team, TeamKind, TeamMembership
from timebank.teams.stats import current_term, team_stats
from timebank.web.forms import new_idempotency_key
from timebank.web.views.common import add_form_error, explain, page

# --- activities: the volunteer's side ---


def _decorate(activity: Activity, member: Member | None) -> Activity:
    signup = ActivitySignup.objects.filter(activity=activity, member=member).first() if member is not None else None
    activity.mine = signup if signup is not None and signup.status != SignupStatus.WITHDRAWN else None  # type: ignore[attr-defined]
    activity.confirmed = ActivitySignup.objects.filter(  # type: ignore[attr-defined]
        activity=activity, status=SignupStatus.CONFIRMED
    ).count()
    activity.waiting = ActivitySignup.objects.filter(  # type: ignore[attr-defined]
        activity=activity, status=SignupStatus.WAITING
    ).count()
    activity.multiplier = multiplier_for(activity.bank_id, activity.service_item.tier)  # type: ignore[attr-defined]
    activity.open_for_signup = (  # type: ignore[attr-defined]
        activity.state == ActivityState.PUBLISHED and clock.now() <= activity.signup_deadline
    )
    return activity


@page("login")
def activity_list(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    member = who(request).member
    qs = visible_activities(user).select_related("service_item", "org", "team")
    now = clock.now()
    upcoming = list(qs.filter(state=ActivityState.PUBLISHED, ends_at__gte=now).order_by("starts_at", "pk")[:50])
    past = list(qs.exclude(pk__in=[a.pk for a in upcoming]).order_by("-starts_at", "-pk")[:20])
    for a in upcoming + past:
        _decorate(a, member)
    may_publish = is_workbench_user(user) or bool(led_team_ids(user))
    return render(
        request,
        "teams/activity_list.html",
        {"upcoming": upcoming, "past": past, "may_publish": may_publish, "member": member},
    )


def _signups(activity: Activity) -> list[ActivitySignup]:
    return list(
        ActivitySignup.objects.filter(activity=activity)
        .exclude(status=SignupStatus.WITHDRAWN)
        .select_related("member", "service_record")
        .order_by("status", "queued_at", "pk")
    )


@page("login")
def activity_detail(request: HttpRequest, activity_id: int, status: int = 200, **extra: Any) -> HttpResponse:
    user = user_of(request)
    activity = _decorate(access_activity(user, activity_id), who(request).member)
    manage = can_manage_activity(user, activity)
    context: dict[str, Any] = {"activity": activity, "manage": manage, **extra}
    if manage:
        signups = _signups(activity)
        pending = actions.pending_approvals(activity)
        for s in signups:
            s.pending_approval = pending.get(s.pk)  # type: ignore[attr-defined]
        context["signups"] = signups
        context["pending_count"] = len(pending)
        context.setdefault("cancel_form", CancelForm())
        context.setdefault("close_form", CloseForm())
        context["attendance_form"] = AttendanceForm()
    return render(request, "teams/activity_detail.html", context, status=status)


def _act(request: HttpRequest, activity_id: int, fn: Any, done: Any) -> HttpResponse:
    try:
        fn()
    except ApiError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        return activity_detail(request, activity_id, status=exc.status, error=explain(exc))
    messages.success(request, done)
    return redirect("teams:activity", activity_id)


@require_POST
@page("volunteer")
def activity_signup(request: HttpRequest, activity_id: int) -> HttpResponse:
    user = user_of(request)
    activity = access_activity(user, activity_id)
    member = who(request).member
    assert member is not None
    result: dict[str, Any] = {}

    def go() -> None:
        result["signup"] = actions.do_sign_up(user, activity, member)

    response = _act(request, activity_id, go, _("报名成功。"))
    if result.get("signup") is not None and result["signup"].status == SignupStatus.WAITING:
        messages.info(request, _("名额已满，您在候补名单上。有人退出时会按顺序递补并通知您。"))
    return response


@require_POST
@page("volunteer")
def activity_withdraw(request: HttpRequest, activity_id: int) -> HttpResponse:
    user = user_of(request)
    activity = access_activity(user, activity_id)
    member = who(request).member
    assert member is not None
    return _act(request, activity_id, lambda: actions.do_withdraw(user, activity, member), _("已退出这个活动。"))


@page("member")
def activity_check(request: HttpRequest, activity_id: int, token: str) -> HttpResponse:
    """The page the venue's QR code opens: confirm, then check in (first scan) or out (a later one)."""
    user = user_of(request)
    activity = access_activity(user, activity_id)
    member = who(request).member
    assert member is not None
    signup = ActivitySignup.objects.filter(activity=activity, member=member).first()
    context: dict[str, Any] = {"activity": activity, "token": token, "signup": signup}
    if request.method == "POST":
        try:
            signup, outcome = actions.do_scan(user, activity, member, token)
        except ApiError as exc:
            if isinstance(exc, (Forbidden, NotFound)):
                raise
            context["error"] = explain(exc)
            return render(request, "teams/check.html", context, status=exc.status)
        context.update(signup=signup, outcome=outcome)
        return render(request, "teams/check.html", context)
    if not qr.token_is_valid(activity, token):
        context["error"] = _("二维码已过期或不是这个活动的。请扫现场屏幕上最新的二维码。")
        return render(request, "teams/check.html", context, status=422)
    return render(request, "teams/check.html", context)


# --- activities: staff and team leaders ---


def _owners(request: HttpRequest) -> list[tuple[str, str]]:
    """Where the caller may publish: the orgs of their subtree, and the teams they lead or manage."""
    user = user_of(request)
    owners: list[tuple[str, str]] = []
    if is_workbench_user(user):
        orgs = visible_orgs(user).exclude(kind=OrgKind.OUTLET).order_by("path")
        owners += [(f"org:{o.pk}", o.name) for o in orgs if has_role(user, MANAGING_ROLES, o)]
    led = led_team_ids(user)
    teams = visible_teams(user).filter(active=True).select_related("org").order_by("pk")[:200]
    owners += [
        (f"team:{t.pk}", str(_("%(name)s（%(kind)s）") % {"name": t.name, "kind": t.get_kind_display()}))
        for t in teams
        if t.pk in led or has_role(user, MANAGING_ROLES, t.org)
    ]
    return owners


def _items(request: HttpRequest) -> list[tuple[int, str]]:
    bank_id = caller_bank_id(user_of(request))
    qs = ServiceItem.objects.filter(head_office_id=bank_id, active=True).order_by("category", "name")
    return [(i.pk, str(_("%(name)s（%(tier)s）") % {"name": i.name, "tier": i.get_tier_display()})) for i in qs]


def _owner(request: HttpRequest, value: str) -> tuple[Org, Team | None]:
    kind, _sep, raw = value.partition(":")
    user = user_of(request)
    if kind == "team":
        team = access_team(user, int(raw))
        return team.org, team
    org = Org.objects.filter(pk=int(raw)).first()
    if org is None:
        raise NotFound(_("找不到该机构。"), code="org_not_found")
    return org, None


def _input(form: ActivityForm) -> actions.ActivityInput:
    d = form.cleaned_data
    item = ServiceItem.objects.get(pk=d["service_item"])
    return actions.ActivityInput(
        title=d["title"],
        service_item=item,
        place=d["place"],
        starts_at=d["starts_at"],
        ends_at=d["ends_at"],
        signup_deadline=d["signup_deadline"],
        places=d["places"],
        requires_certificate=d["requires_certificate"] or "",
        min_age=d["min_age"],
        max_age=d["max_age"],
        team_only=d["team_only"],
        description=d["description"],
        backdate_reason=d.get("reason") or "",
    )


ALIASES = {"service_item_id": "service_item", "team_id": "owner"}


@page("login")
def activity_new(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    owners = _owners(request)
    if not owners:
        raise Forbidden(_("只有工作人员或队长可以发布活动。"), code="not_allowed")
    form = ActivityForm(request.POST or None, owners=owners, items=_items(request))
    if request.method != "POST":
        return render(request, "teams/activity_form.html", {"form": form, "activity": None})

    def publish(data: dict[str, Any]) -> Activity:
        org, team = _owner(request, data["owner"])
        check_may_publish(user, org, team)
        return actions.do_publish_activity(user, org=org, team=team, data=_input(form))

    def refused(form: ActivityForm, exc: ApiError) -> int:
        if isinstance(exc, NotFound):
            raise exc
        add_form_error(form, exc, ALIASES)
        return 422

    return submit_once(
        request,
        form,
        "teams.publish_activity",
        publish,
        success=_("活动已发布，志愿者现在可以报名了。"),
        done=lambda kept: redirect("teams:activity", int(kept)),
        again=lambda status: render(
            request, "teams/activity_form.html", {"form": form, "activity": None}, status=status
        ),
        refused=refused,
    )


@page("login")
def activity_edit(request: HttpRequest, activity_id: int) -> HttpResponse:
    user = user_of(request)
    activity = access_activity(user, activity_id, manage=True)
    owner = f"team:{activity.team_id}" if activity.team_id else f"org:{activity.org_id}"
    owner_label = activity.team.name if activity.team else activity.org.name
    local = timezone.localtime
    initial = {
        "title": activity.title,
        "owner": owner,
        "service_item": activity.service_item_id,
        "place": activity.place,
        "starts_at": local(activity.starts_at),
        "ends_at": local(activity.ends_at),
        "signup_deadline": local(activity.signup_deadline),
        "places": activity.places,
        "requires_certificate": activity.requires_certificate,
        "min_age": activity.min_age,
        "max_age": activity.max_age,
        "team_only": activity.team_only,
        "description": activity.description,
    }
    form = ActivityForm(request.POST or None, initial=initial, owners=[(owner, owner_label)], items=_items(request))
    if request.method != "POST":
        return render(request, "teams/activity_form.html", {"form": form, "activity": activity})
    return submit_once(
        request,
        form,
        "teams.update_activity",
        lambda _data: actions.do_update_activity(user, activity, data=_input(form)),
        success=_("已保存。时间或地点有变动时，已报名的志愿者会收到通知。"),
        done=lambda _kept: redirect("teams:activity", activity.pk),
        again=lambda status: render(
            request, "teams/activity_form.html", {"form": form, "activity": activity}, status=status
        ),
        aliases=ALIASES,
    )


def _qr_context(request: HttpRequest, activity: Activity) -> dict[str, Any]:
    token = qr.current_token(activity)
    url = request.build_absolute_uri(reverse("teams:check", args=[activity.pk, token]))
    # Safe: segno draws the SVG from our own URL.
    svg = mark_safe(segno.make(url, error="m").svg_inline(scale=8, title=str(_("签到二维码"))))  # noqa: S308
    return {"activity": activity, "svg": svg, "url": url, "seconds": qr.seconds_left()}


@page("login")
def activity_qr(request: HttpRequest, activity_id: int) -> HttpResponse:
    activity = access_activity(user_of(request), activity_id, manage=True)
    return render(request, "teams/qr.html", _qr_context(request, activity))


@page("login")
def activity_qr_code(request: HttpRequest, activity_id: int) -> HttpResponse:
    """The code alone, for htmx to swap in every 20 seconds."""
    activity = access_activity(user_of(request), activity_id, manage=True)
    return render(request, "teams/_qr_code.html", _qr_context(request, activity))


@require_POST
@page("login")
def activity_attendance(request: HttpRequest, activity_id: int, member_id: int) -> HttpResponse:
    user = user_of(request)
    activity = access_activity(user, activity_id, manage=True)
    member = Member.objects.filter(pk=member_id, bank_id=activity.bank_id).first()
    if member is None:
        raise NotFound(_("找不到该会员。"), code="member_not_found")
    attended = request.POST.get("attended") == "yes"
    form = AttendanceForm(request.POST)
    minutes = form.cleaned_data.get("minutes") if form.is_valid() else None
    if not form.is_valid():
        return activity_detail(request, activity_id, status=422, error=_("分钟数应在 1 到 1440 之间。"))
    return _act(
        request,
        activity_id,
        lambda: actions.do_mark_attendance(user, activity, member, attended=attended, minutes=minutes),
        _("已记下出勤。") if attended else _("已记为缺席。"),
    )


@require_POST
@page("login")
def activity_close(request: HttpRequest, activity_id: int) -> HttpResponse:
    user = user_of(request)
    activity = access_activity(user, activity_id, manage=True)
    form = CloseForm(request.POST)
    if not form.is_valid():
        return activity_detail(request, activity_id, status=422, close_form=form)
    result: dict[str, Any] = {}

    def go() -> None:
        result["r"] = actions.do_close_activity(user, activity, reason=form.cleaned_data["reason"])

    response = _act(request, activity_id, go, _("活动已结束，出勤志愿者的时间已存入。"))
    closed = result.get("r")
    if closed is not None and closed.already_closed:
        messages.info(request, _("这个活动之前已经结束过，没有重复记时间。"))
    elif closed is not None and closed.pending:
        messages.info(
            request,
            _("%(n)s 位志愿者的时间等待另一位工作人员审批，批准后才存入。") % {"n": len(closed.pending)},
        )
    return response


@require_POST
@page("login")
def activity_cancel(request: HttpRequest, activity_id: int) -> HttpResponse:
    user = user_of(request)
    activity = access_activity(user, activity_id, manage=True)
    form = CancelForm(request.POST)
    if not form.is_valid():
        return activity_detail(request, activity_id, status=422, cancel_form=form)
    return _act(
        request,
        activity_id,
        lambda: actions.do_cancel_activity(user, activity, reason=form.cleaned_data["reason"]),
        _("活动已取消，已报名的志愿者会收到通知。"),
    )


# --- teams ---


@page("login")
def team_list(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    mine = my_team_ids(user)
    qs = visible_teams(user).select_related("org").annotate(n=Count("memberships", filter=Q(memberships__active=True)))
    teams = list(qs.order_by("org__path", "name")[:200])
    return render(
        request,
        "teams/team_list.html",
        {
            "my_teams": [t for t in teams if t.pk in mine],
            "teams": [t for t in teams if t.pk not in mine],
            "may_create": (is_workbench_user(user) and user.role in MANAGING_ROLES) or user.is_superuser,
        },
    )


@page("workbench")
def team_new(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    orgs = [(o.pk, o.name) for o in visible_orgs(user).order_by("path") if has_role(user, MANAGING_ROLES, o)]
    form = TeamForm(request.POST or None, orgs=orgs)
    if request.method != "POST":
        return render(request, "teams/team_form.html", {"form": form})

    def create(d: dict[str, Any]) -> Team:
        org = Org.objects.get(pk=d["org"])
        check_may_create_team(user, org)
        return actions.do_create_team(user, org=org, name=d["name"], kind=d["kind"], description=d["description"])

    return submit_once(
        request,
        form,
        "teams.create",
        create,
        success=_("队伍已建立。"),
        done=lambda kept: redirect("teams:team", int(kept)),
        again=lambda status: render(request, "teams/team_form.html", {"form": form}, status=status),
        aliases={"org_id": "org"},
    )


@page("login")
def team_detail(request: HttpRequest, team_id: int, status: int = 200, **extra: Any) -> HttpResponse:
    user = user_of(request)
    team = access_team(user, team_id)
    manage = can_manage_team(user, team)
    year = clock.localdate().year
    members = []
    if manage or team.pk in my_team_ids(user):
        members = list(
            TeamMembership.objects.filter(team=team, active=True).select_related("member").order_by("role", "pk")
        )
    context = {
        "team": team,
        "manage": manage,
        "members": members,
        "stats": team_stats(team),
        "year_stats": team_stats(team, year),
        "year": year,
        # Only the activities the caller may open: a member outside a school team sees its open ones, not its past.
        "activities": list(
            visible_activities(user).filter(team=team).select_related("service_item").order_by("-starts_at")[:20]
        ),
        "member_form": extra.pop("member_form", None) or TeamMemberForm(),
        "term_form": TermForm(initial={"term": current_term().code}),
        "is_school": team.kind == TeamKind.SCHOOL,
        # Editing the team is for staff of its org's subtree (access_team_as_staff), not its leader.
        "may_edit": has_role(user, MANAGING_ROLES, team.org),
        "remove_key": new_idempotency_key(),
        **extra,
    }
    return render(request, "teams/team_detail.html", context, status=status)


@require_POST
@page("login")
def team_add_member(request: HttpRequest, team_id: int) -> HttpResponse:
    user = user_of(request)
    team = access_team(user, team_id, manage=True)
    form = TeamMemberForm(request.POST)

    def add(d: dict[str, Any]) -> object:
        member = access_member_for_team(user, team, d["member_id"])
        return actions.do_add_team_member(
            user,
            team,
            member,
            role=d["role"],
            external_id=d["external_id"],
            may_appoint_leader=has_role(user, MANAGING_ROLES, team.org),
        )

    def refused(form: TeamMemberForm, exc: ApiError) -> int:
        form.add_error("member_id", explain(exc))  # every refusal is about whom to add
        return 422

    return submit_once(
        request,
        form,
        "teams.add_member",
        add,
        success=_("已加入队伍。"),
        done=lambda _kept: redirect("teams:team", team.pk),
        again=lambda status: team_detail(request, team_id, status=status, member_form=form),
        refused=refused,
    )


@page("login")
def team_export(request: HttpRequest, team_id: int) -> HttpResponse:
    user = user_of(request)
    team = access_team(user, team_id, manage=True)
    form = TermForm(request.GET)
    if not form.is_valid():
        return team_detail(
            request, team_id, status=422, export_error=_("学期格式应为 2024-2025-1（秋季）或 2024-2025-2（春季）。")
        )
    try:
        name, data = actions.do_export_school_hours(user, team, form.cleaned_data["term"])
    except ApiError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        return team_detail(request, team_id, status=exc.status, export_error=explain(exc))
    response = HttpResponse(data, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
