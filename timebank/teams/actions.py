"""Writes of teams and group activities. Each action is atomic, audited, and notifies after commit.

Sign-ups lock the activity row, so concurrent sign-ups never hand out more places than there are; the
waiting list is served in the order people joined it. Closing credits every attendee through the
ledger (a service record each, one idempotency key per attendee) and runs once: the activity row is
locked and its state checked, so a second close credits nothing more.

Credits are bounded by what really happened: an activity is not published with a start in the past nor
closed before its end (staff of its org may, with a reason, audited: paper sign-in sheets, a rained-off
afternoon); an attendance is credited at most the activity's length and, with a QR check-in and check-out,
the time between them; a walk-in meets the sign-up's requirements; and a credit to someone who ran the
activity (a leader of its team, whoever published it, marked them or closes it) waits for a second person.
The times of an activity that has started (or an end moved into the past) change only as backdating does.
A member's credited attendances never overlap in time, with each other or with orders they checked in and
out of: the overlapping part is refused when marked and again at close, under the member's row lock.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from timebank.approvals.actions import lock_members
from timebank.approvals.models import Approval, ApprovalKind, ApprovalState
from timebank.audit.actions import record
from timebank.catalogue.models import CertificateKind, ServiceItem
from timebank.lib.errors import Conflict, Forbidden, Invalid
from timebank.lib.races import unique_or_conflict
from timebank.members.models import Certificate, Member, MemberStatus
from timebank.orders.actions import age_on, do_service_record
from timebank.orgs.access import has_role
from timebank.orgs.actions import check_name
from timebank.orgs.models import MANAGING_ROLES, Org, User
from timebank.teams import qr
from timebank.teams.models import (
    Activity,
    ActivitySignup,
    ActivityState,
    Attendance,
    SignupStatus,
    Team,
    TeamKind,
    TeamMembership,
    TeamRole,
)

logger = logging.getLogger(__name__)

MAX_PLACES = 10_000
MAX_DURATION = dt.timedelta(hours=24)
MAX_AHEAD = dt.timedelta(days=366)
# Scanning is open from an hour before the start to an hour after the end.
SCAN_MARGIN = dt.timedelta(hours=1)
# A second scan this soon after checking in is the same person scanning twice, not a check-out.
DOUBLE_SCAN = dt.timedelta(minutes=2)
# A start this little in the past is the form's clock, not backdating ("starts now").
BACKDATE_SLACK = dt.timedelta(minutes=5)


def _bank(org: Org) -> int:
    assert org.head_office_id is not None
    return org.head_office_id


def _actor(actor: User | None) -> User | None:
    return actor if actor is not None and actor.pk else None


def is_staff_of(actor: User | None, activity_org: Org) -> bool:
    """Staff or an admin of the activity's org or above: the only ones who may backdate or close early."""
    return actor is not None and bool(actor.pk) and has_role(actor, MANAGING_ROLES, activity_org)


def _text(value: str, field_name: str, max_length: int, *, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise Invalid(_("这一项必须填写。"), fields={field_name: "required"})
    if len(text) > max_length:
        raise Invalid(_("内容太长。"), fields={field_name: "too_long"})
    if "\x00" in text:
        raise Invalid(_("内容含有无效字符。"), fields={field_name: "invalid"})
    return text


# --- teams ---


@transaction.atomic
def do_create_team(actor: User | None, *, org: Org, name: str, kind: str, description: str = "") -> Team:
    name = check_name(name)
    if kind not in TeamKind.values:
        raise Invalid(_("队伍类型不对。"), fields={"kind": "invalid"})
    description = _text(description, "description", 500)
    if Team.objects.filter(org=org, name=name).exists():
        raise Conflict(_("这个社区已经有同名的队伍。"), code="duplicate_team", fields={"name": "taken"})
    # The same name created twice at once: the second INSERT waits for the first, then is this 409 too.
    with unique_or_conflict(_("这个社区已经有同名的队伍。"), code="duplicate_team", fields={"name": "taken"}):
        team = Team.objects.create(bank_id=_bank(org), org=org, name=name, kind=kind, description=description)
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
        changes["description"] = _text(description, "description", 500)
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
    external_id = _text(external_id, "external_id", 40)
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


# --- activities: publish, change, cancel ---


@dataclass
class ActivityInput:
    title: str
    service_item: ServiceItem
    place: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    places: int
    signup_deadline: dt.datetime | None = None
    description: str = ""
    requires_certificate: str | None = None  # None: the service item's own requirement
    min_age: int | None = None
    max_age: int | None = None
    team_only: bool = False
    # Staff entering an activity that already started (from a paper sheet) say why; audited.
    backdate_reason: str = ""


def _check_times(starts_at: dt.datetime, ends_at: dt.datetime, deadline: dt.datetime) -> None:
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at), ("signup_deadline", deadline)):
        if timezone.is_naive(value):
            raise Invalid(_("时间要带时区。"), fields={name: "naive"})
    if ends_at <= starts_at:
        raise Invalid(_("结束时间要晚于开始时间。"), fields={"ends_at": "before_start"})
    if ends_at - starts_at > MAX_DURATION:
        raise Invalid(_("一次活动最长 24 小时。"), fields={"ends_at": "too_long"})
    if starts_at > timezone.now() + MAX_AHEAD:
        raise Invalid(_("活动时间太远了（最多提前一年发布）。"), fields={"starts_at": "too_far"})
    if deadline > starts_at:
        raise Invalid(_("报名截止时间不能晚于活动开始时间。"), fields={"signup_deadline": "after_start"})


def check_not_backdated(actor: User | None, org: Org, starts_at: dt.datetime, reason: str) -> str:
    """A start in the past is refused, but staff of the org may enter one with a reason. Answers the reason."""
    if starts_at >= timezone.now() - BACKDATE_SLACK:
        return ""
    reason = _text(reason, "reason", 500)
    if not is_staff_of(actor, org):
        raise Invalid(
            _("活动开始时间已经过去了。只有社区工作人员可以补录已开始的活动。"),
            code="starts_in_past",
            fields={"starts_at": "in_past"},
        )
    if not reason:
        raise Invalid(
            _("活动开始时间已经过去了。补录已开始的活动要写明原因。"),
            code="starts_in_past",
            fields={"reason": "required"},
        )
    return reason


def _check_activity_input(data: ActivityInput, bank_id: int) -> dict[str, Any]:
    item = data.service_item
    if item.head_office_id != bank_id:
        raise Invalid(_("服务项目属于另一家时间银行。"), fields={"service_item_id": "other_bank"})
    if not item.active:
        raise Invalid(_("这个服务项目已停用。"), fields={"service_item_id": "inactive"})
    if isinstance(data.places, bool) or not 1 <= data.places <= MAX_PLACES:
        raise Invalid(_("名额应在 1 到 10000 之间。"), fields={"places": "out_of_range"})
    deadline = data.signup_deadline or data.starts_at
    _check_times(data.starts_at, data.ends_at, deadline)
    certificate = item.requires_certificate if data.requires_certificate is None else data.requires_certificate
    if certificate and certificate not in CertificateKind.values:
        raise Invalid(_("证书类型不对。"), fields={"requires_certificate": "invalid"})
    if item.requires_certificate and certificate != item.requires_certificate:
        # The item's own requirement is the floor: an activity cannot let the uncertified credit it.
        raise Invalid(
            _("这个服务项目要求有效证书，活动不能取消或改换这个要求。"),
            fields={"requires_certificate": "weaker_than_item"},
        )
    for name, age in (("min_age", data.min_age), ("max_age", data.max_age)):
        if age is not None and not 0 <= age <= 120:
            raise Invalid(_("年龄应在 0 到 120 之间。"), fields={name: "out_of_range"})
    if data.min_age is not None and data.max_age is not None and data.min_age > data.max_age:
        raise Invalid(_("最小年龄不能大于最大年龄。"), fields={"max_age": "below_min"})
    return {
        "title": check_name(data.title, "title"),
        "description": _text(data.description, "description", 1000),
        "service_item": item,
        "place": _text(data.place, "place", 200, required=True),
        "starts_at": data.starts_at,
        "ends_at": data.ends_at,
        "signup_deadline": deadline,
        "places": data.places,
        "requires_certificate": certificate,
        "min_age": data.min_age,
        "max_age": data.max_age,
        "team_only": data.team_only,
    }


@transaction.atomic
def do_publish_activity(actor: User | None, *, org: Org, team: Team | None, data: ActivityInput) -> Activity:
    bank_id = _bank(org)
    if team is not None and team.org_id != org.pk:
        raise Invalid(_("活动要发布在队伍所属的社区。"), fields={"team_id": "other_org"})
    if team is not None and not team.active:
        raise Conflict(_("这支队伍已停止活动。"), code="team_inactive")
    values = _check_activity_input(data, bank_id)
    if values["team_only"] and team is None:
        raise Invalid(_("“仅限队员”的活动要指定队伍。"), fields={"team_only": "needs_team"})
    backdated = check_not_backdated(actor, org, data.starts_at, data.backdate_reason)
    activity = Activity.objects.create(
        bank_id=bank_id, org=org, team=team, qr_salt=secrets.token_hex(16), created_by=_actor(actor), **values
    )
    audit: dict[str, Any] = {"title": activity.title, "places": activity.places, "team": team.pk if team else None}
    if backdated:
        audit.update(backdated=backdated, starts_at=activity.starts_at.isoformat())
    record(actor, "activity.publish", activity, bank_id=bank_id, data=audit)
    return activity


def _lock_activity(activity: Activity) -> Activity:
    return (
        Activity.objects.select_for_update(of=("self",))
        .select_related("service_item", "team", "org")
        .get(pk=activity.pk)
    )


def _require_open(activity: Activity) -> None:
    if activity.state == ActivityState.CANCELLED:
        raise Conflict(_("这个活动已取消。"), code="activity_cancelled")
    if activity.state == ActivityState.CLOSED:
        raise Conflict(_("这个活动已经结束并记了时间。"), code="activity_closed")


def _confirmed_count(activity: Activity) -> int:
    return ActivitySignup.objects.filter(activity=activity, status=SignupStatus.CONFIRMED).count()


def _promote(activity: Activity, *, now: dt.datetime) -> list[int]:
    """Fill free places from the waiting list, first come first served. Answers the promoted member ids."""
    free = activity.places - _confirmed_count(activity)
    if free <= 0:
        return []
    waiting = list(
        ActivitySignup.objects.select_for_update()
        .filter(activity=activity, status=SignupStatus.WAITING)
        .order_by("queued_at", "pk")[:free]
    )
    for signup in waiting:
        signup.status = SignupStatus.CONFIRMED
        signup.save(update_fields=["status"])
    return [s.member_id for s in waiting]


def _check_time_change(actor: User | None, activity: Activity, values: dict[str, Any], reason: str) -> str:
    """Moving the times of an activity that has started, or its end into the past, is for staff of its org
    with a reason, like backdating: otherwise a leader closes early (the end moved back to now) or credits
    hours after the fact (the end moved on). Answers the reason, audited. Less than a minute is the form's
    rounding, not a change: the stored time is kept."""
    for key in ("starts_at", "ends_at"):
        if abs(values[key] - getattr(activity, key)) < dt.timedelta(minutes=1):
            values[key] = getattr(activity, key)
    if values["starts_at"] == activity.starts_at and values["ends_at"] == activity.ends_at:
        return ""
    now = timezone.now()
    if activity.starts_at > now and values["ends_at"] > now:
        return check_not_backdated(actor, activity.org, values["starts_at"], reason)
    reason = _text(reason, "reason", 500)
    if not is_staff_of(actor, activity.org):
        raise Conflict(
            _("活动已经开始，只有社区工作人员可以更改它的时间。"),
            code="activity_started",
            fields={"starts_at": timezone.localtime(activity.starts_at).isoformat()},
        )
    if not reason:
        raise Conflict(
            _("活动已经开始。更改已开始活动的时间要写明原因。"), code="activity_started", fields={"reason": "required"}
        )
    return reason


@transaction.atomic
def do_update_activity(actor: User | None, activity: Activity, *, data: ActivityInput) -> Activity:
    """Edit an open activity. More places promote the waiting list; a change of time or place is announced."""
    activity = _lock_activity(activity)
    _require_open(activity)
    values = _check_activity_input(data, activity.bank_id)
    if values["team_only"] and activity.team_id is None:
        raise Invalid(_("“仅限队员”的活动要指定队伍。"), fields={"team_only": "needs_team"})
    confirmed = _confirmed_count(activity)
    if values["places"] < confirmed:
        raise Conflict(
            _("已报名的人数比新的名额多。请先和多出的志愿者商量退出。"),
            code="places_below_signups",
            fields={"confirmed": confirmed},
        )
    times_reason = _check_time_change(actor, activity, values, data.backdate_reason)
    noticed = any(getattr(activity, k) != values[k] for k in ("starts_at", "ends_at", "place"))
    changed = {k: str(v) for k, v in values.items() if getattr(activity, k) != v}
    if times_reason:
        changed["times_reason"] = times_reason
    for key, value in values.items():
        setattr(activity, key, value)
    activity.save()
    promoted = _promote(activity, now=timezone.now())
    record(
        actor, "activity.update", activity, bank_id=activity.bank_id, data={"changed": changed, "promoted": promoted}
    )
    if noticed:
        members = list(
            ActivitySignup.objects.filter(
                activity=activity, status__in=(SignupStatus.CONFIRMED, SignupStatus.WAITING)
            ).values_list("member_id", flat=True)
        )
        _notify_after_commit("activity.changed", activity, [m for m in members if m not in promoted])
    _notify_after_commit("activity.promoted", activity, promoted)
    return activity


@transaction.atomic
def do_cancel_activity(actor: User | None, activity: Activity, *, reason: str) -> Activity:
    reason = _text(reason, "reason", 500, required=True)
    activity = _lock_activity(activity)
    _require_open(activity)
    activity.state = ActivityState.CANCELLED
    activity.cancel_reason = reason
    activity.save(update_fields=["state", "cancel_reason"])
    members = list(
        ActivitySignup.objects.filter(
            activity=activity, status__in=(SignupStatus.CONFIRMED, SignupStatus.WAITING)
        ).values_list("member_id", flat=True)
    )
    record(actor, "activity.cancel", activity, bank_id=activity.bank_id, data={"reason": reason, "told": members})
    _notify_after_commit("activity.cancelled", activity, members)
    return activity


# --- sign-up, withdrawal, waiting list ---


def check_eligible(activity: Activity, member: Member, *, today: dt.date | None = None) -> None:
    """The activity's requirements, with the reason in words when someone does not meet them."""
    if member.bank_id != activity.bank_id:
        raise Invalid(_("会员属于另一家时间银行。"), fields={"member_id": "other_bank"})
    if not member.is_volunteer or member.status != MemberStatus.ACTIVE:
        raise Conflict(_("只有在册的志愿者可以报名。"), code="not_a_volunteer")
    today = today or timezone.localdate()
    if activity.requires_certificate and not (
        Certificate.objects.filter(member=member, kind=activity.requires_certificate)
        .exclude(valid_until__lt=today)
        .exclude(valid_from__gt=today)
        .exists()
    ):
        raise Conflict(
            _("这个活动需要相应的有效证书。"),
            code="certificate_required",
            fields={"requires_certificate": activity.requires_certificate},
        )
    if activity.min_age is not None or activity.max_age is not None:
        age = age_on(member.birth_date, activity.starts_at.date())
        too_young = activity.min_age is not None and (age is None or age < activity.min_age)
        too_old = activity.max_age is not None and (age is None or age > activity.max_age)
        if too_young or too_old:
            raise Conflict(
                _("这个活动有年龄要求，您不在范围内。"),
                code="age_out_of_range",
                fields={"min_age": activity.min_age, "max_age": activity.max_age},
            )
    if activity.team_only and not (
        activity.team_id is not None
        and TeamMembership.objects.filter(team_id=activity.team_id, member=member, active=True).exists()
    ):
        raise Conflict(_("这个活动只招本队队员。"), code="team_only")


@transaction.atomic
def do_sign_up(actor: User | None, activity: Activity, member: Member) -> ActivitySignup:
    """A place while there are places, else the waiting list."""
    activity = _lock_activity(activity)
    _require_open(activity)
    now = timezone.now()
    if now > activity.signup_deadline:
        raise Conflict(_("报名已经截止。"), code="signup_closed")
    check_eligible(activity, member)
    signup = ActivitySignup.objects.filter(activity=activity, member=member).first()
    if signup is not None and signup.status != SignupStatus.WITHDRAWN:
        raise Conflict(_("您已经报过名了。"), code="already_signed_up", fields={"status": signup.status})
    status = SignupStatus.CONFIRMED if _confirmed_count(activity) < activity.places else SignupStatus.WAITING
    if signup is None:
        signup = ActivitySignup.objects.create(activity=activity, member=member, status=status, queued_at=now)
    else:
        # Signing up again after withdrawing goes to the back of the queue.
        signup.status = status
        signup.queued_at = now
        signup.attendance = Attendance.PENDING
        signup.save(update_fields=["status", "queued_at", "attendance"])
    record(
        actor,
        "activity.sign_up",
        activity,
        bank_id=activity.bank_id,
        data={"member": member.pk, "status": status},
    )
    template = "activity.signed_up" if status == SignupStatus.CONFIRMED else "activity.waiting"
    _notify_after_commit(template, activity, [member.pk])
    return signup


@transaction.atomic
def do_withdraw(actor: User | None, activity: Activity, member: Member) -> ActivitySignup:
    """Withdraw before the deadline; a freed place goes to the first on the waiting list."""
    activity = _lock_activity(activity)
    _require_open(activity)
    signup = ActivitySignup.objects.select_for_update().filter(activity=activity, member=member).first()
    if signup is None or signup.status == SignupStatus.WITHDRAWN:
        raise Conflict(_("您没有报名这个活动。"), code="not_signed_up")
    if timezone.now() > activity.signup_deadline:
        raise Conflict(_("报名已截止，不能在网上退出了。去不了的话请告诉活动负责人。"), code="signup_closed")
    was = signup.status
    signup.status = SignupStatus.WITHDRAWN
    signup.save(update_fields=["status"])
    promoted = _promote(activity, now=timezone.now()) if was == SignupStatus.CONFIRMED else []
    record(
        actor,
        "activity.withdraw",
        activity,
        bank_id=activity.bank_id,
        data={"member": member.pk, "was": was, "promoted": promoted},
    )
    _notify_after_commit("activity.promoted", activity, promoted)
    return signup


# --- attendance ---


@transaction.atomic
def do_scan(actor: User | None, activity: Activity, member: Member, token: str) -> tuple[ActivitySignup, str]:
    """A scan of the venue's QR code: the first checks in, a later one checks out.

    Answers the sign-up and what happened: `check_in`, `check_out` or `already` (a repeated scan)."""
    if not qr.token_is_valid(activity, token):
        raise Invalid(
            _("二维码已过期或不是这个活动的。请扫现场屏幕上最新的二维码。"),
            code="qr_invalid",
            fields={"token": "invalid"},
        )
    activity = _lock_activity(activity)
    _require_open(activity)
    now = timezone.now()
    if now < activity.starts_at - SCAN_MARGIN:
        raise Conflict(_("活动还没开始，开始前一小时内才能签到。"), code="too_early")
    if now > activity.ends_at + SCAN_MARGIN:
        raise Conflict(_("活动已经结束，不能再扫码了。请找工作人员补记。"), code="too_late")
    signup = ActivitySignup.objects.select_for_update().filter(activity=activity, member=member).first()
    if signup is None or signup.status == SignupStatus.WITHDRAWN:
        raise Conflict(_("您没有报名这个活动。请找现场工作人员。"), code="not_signed_up")
    if signup.status == SignupStatus.WAITING:
        raise Conflict(_("您还在候补名单上，没有名额。请找现场工作人员。"), code="on_waiting_list")
    if signup.check_in_at is None:
        signup.check_in_at = now
        if signup.attendance in (Attendance.PENDING, Attendance.NO_SHOW):
            signup.attendance = Attendance.PRESENT
        signup.save(update_fields=["check_in_at", "attendance"])
        outcome = "check_in"
    elif signup.check_out_at is None and now - signup.check_in_at >= DOUBLE_SCAN:
        signup.check_out_at = now
        if signup.attendance in (Attendance.PENDING, Attendance.PRESENT, Attendance.NO_SHOW):
            signup.attendance = Attendance.ATTENDED
        signup.save(update_fields=["check_out_at", "attendance"])
        outcome = "check_out"
    else:
        return signup, "already"
    record(actor, f"activity.{outcome}", activity, bank_id=activity.bank_id, data={"member": member.pk})
    return signup, outcome


def duration_minutes(activity: Activity) -> int:
    return int((activity.ends_at - activity.starts_at).total_seconds() // 60)


def _both_scans(signup: ActivitySignup) -> bool:
    return signup.check_in_at is not None and signup.check_out_at is not None


def credit_cap(activity: Activity, signup: ActivitySignup) -> int:
    """The most one attendance may be credited: the activity's length, and with both scans the time between."""
    cap = duration_minutes(activity)
    if _both_scans(signup):
        cap = min(cap, scanned_minutes(activity, signup))
    return cap


Window = tuple[dt.datetime, dt.datetime]


def attendance_window(activity: Activity, signup: ActivitySignup | None) -> Window:
    """When an attendance took the member's time: between the scans when they checked in (to the end without a
    check-out), else the whole activity. A hand mark without both scans claims the whole activity, since it
    does not say which part of it the minutes were."""
    start, end = activity.starts_at, activity.ends_at
    if (
        signup is not None
        and signup.check_in_at is not None
        and (signup.manual_minutes is None or signup.check_out_at is not None)
    ):
        start = max(start, signup.check_in_at)
        end = min(end, signup.check_out_at or end)
    return start, max(start, end)


def _busy_windows(member_id: int, activity: Activity, window: Window, *, credited_only: bool) -> list[Window]:
    """The member's other time already taken within `window`: attendances credited (or waiting for approval)
    in closed activities, orders they checked in and out of, and, unless `credited_only`, attendances marked
    or scanned in activities still open. Read under the member's row lock, so parallel marks and closes that
    credit the same member decide in turn."""
    start, end = window
    approvals = Approval.objects.filter(
        member_id=member_id, kind=ApprovalKind.ACTIVITY_CLOSE, state=ApprovalState.PENDING
    ).values_list("payload", flat=True)
    waiting = [int(p["signup_id"]) for p in approvals if isinstance(p, dict) and p.get("signup_id")]
    taken = Q(activity__state=ActivityState.CLOSED) & (Q(service_record__isnull=False) | Q(pk__in=waiting))
    if not credited_only:
        taken |= Q(activity__state=ActivityState.PUBLISHED, attendance__in=(Attendance.PRESENT, Attendance.ATTENDED))
    signups = (
        ActivitySignup.objects.filter(taken, member_id=member_id, status=SignupStatus.CONFIRMED)
        .exclude(activity_id=activity.pk)
        .filter(activity__starts_at__lt=end, activity__ends_at__gt=start)
        .select_related("activity")
    )
    busy = [attendance_window(s.activity, s) for s in signups]
    from timebank.orders.models import Order, OrderState

    orders = (
        Order.objects.filter(volunteer_id=member_id, check_in_at__lt=end, check_out_at__gt=start)
        .exclude(state=OrderState.CANCELLED)
        .values_list("check_in_at", "check_out_at")
    )
    busy.extend((a, b) for a, b in orders if a is not None and b is not None)
    return busy


def free_minutes(window: Window, busy: list[Window]) -> int:
    """Minutes of `window` outside every busy window."""
    start, end = window
    free = dt.timedelta(0)
    cursor = start
    for b_start, b_end in sorted(busy):
        if b_end <= cursor:
            continue
        if b_start >= end:
            break
        if b_start > cursor:
            free += b_start - cursor
        cursor = max(cursor, b_end)
        if cursor >= end:
            break
    if cursor < end:
        free += end - cursor
    return int(free.total_seconds() // 60)


def overlap_refused(free: int) -> Conflict:
    return Conflict(
        _("这位志愿者这段时间已经在别的活动或订单里记了时间，同一段时间不能重复记。"),
        code="overlapping_attendance",
        fields={"free_minutes": free},
    )


@transaction.atomic
def do_mark_attendance(
    actor: User | None, activity: Activity, member: Member, *, attended: bool, minutes: int | None = None
) -> ActivitySignup:
    """Staff mark attendance by hand: present with the minutes to credit (default and most: the whole activity,
    or the time between check-in and check-out when both were scanned), or a no-show. Someone who came without
    a place is added as a walk-in if they meet the activity's requirements, as for signing up."""
    if minutes is not None and (isinstance(minutes, bool) or not 1 <= minutes <= 24 * 60):
        raise Invalid(_("服务时长应在 1 到 1440 分钟之间。"), fields={"minutes": "out_of_range"})
    activity = _lock_activity(activity)
    _require_open(activity)
    if member.bank_id != activity.bank_id:
        raise Invalid(_("会员属于另一家时间银行。"), fields={"member_id": "other_bank"})
    signup = ActivitySignup.objects.select_for_update().filter(activity=activity, member=member).first()
    if attended:
        if minutes is not None and minutes > duration_minutes(activity):
            raise Invalid(
                _("记的分钟数超过了活动时长。"), code="minutes_above_cap", fields={"minutes": "above_activity_length"}
            )
        if signup is not None and minutes is not None and minutes > credit_cap(activity, signup):
            raise Invalid(
                _("这位志愿者扫码签到、签退，记的分钟数不能超过两次扫码之间的时间。"),
                code="minutes_above_cap",
                fields={"minutes": "above_scanned_time"},
            )
        # Whoever is credited meets what signing up asks, on the day of the activity (as the member is now).
        check_eligible(activity, Member.objects.get(pk=member.pk), today=timezone.localdate(activity.starts_at))
        # The same hours are not marked twice (three activities over one afternoon): decided in turn per member.
        lock_members([member.pk])
        marked_window = attendance_window(activity, signup if signup is not None and _both_scans(signup) else None)
        free = free_minutes(marked_window, _busy_windows(member.pk, activity, marked_window, credited_only=False))
        if free <= 0 or (minutes is not None and minutes > free):
            raise overlap_refused(free)
    if signup is None or signup.status != SignupStatus.CONFIRMED:
        if not attended:
            raise Conflict(_("这位会员没有名额，不用记缺席。"), code="not_signed_up")
        if signup is None:
            signup = ActivitySignup.objects.create(
                activity=activity, member=member, status=SignupStatus.CONFIRMED, queued_at=timezone.now()
            )
        else:
            signup.status = SignupStatus.CONFIRMED
    signup.attendance = Attendance.ATTENDED if attended else Attendance.NO_SHOW
    signup.manual_minutes = (minutes or min(credit_cap(activity, signup), free)) if attended else None
    signup.marked_by = _actor(actor)
    signup.save()
    record(
        actor,
        "activity.mark_attendance",
        activity,
        bank_id=activity.bank_id,
        data={"member": member.pk, "attended": attended, "minutes": signup.manual_minutes},
    )
    return signup


def scanned_minutes(activity: Activity, signup: ActivitySignup) -> int:
    """Time on site within the activity's hours: check-in to check-out (or to the end, without a check-out)."""
    if signup.check_in_at is None:
        return 0
    start = max(signup.check_in_at, activity.starts_at)
    end = min(signup.check_out_at or activity.ends_at, activity.ends_at)
    return max(0, int((end - start).total_seconds() // 60))


def minutes_to_credit(activity: Activity, signup: ActivitySignup) -> int:
    if signup.status != SignupStatus.CONFIRMED or signup.attendance == Attendance.NO_SHOW:
        return 0
    if signup.manual_minutes is not None:
        # Capped again: the activity may have been shortened (or closed early) since the mark.
        return min(signup.manual_minutes, credit_cap(activity, signup))
    return scanned_minutes(activity, signup)


def ran_by(activity: Activity, signup: ActivitySignup, actor: User | None) -> bool:
    """Whether the attendee had a hand in running the activity: a leader of its team, or the login that
    published it, marked their attendance or closes it. Their own credit then waits for a second person."""
    user_id = signup.member.user_id
    if user_id is not None and user_id in (activity.created_by_id, signup.marked_by_id, actor.pk if actor else None):
        return True
    return (
        activity.team_id is not None
        and TeamMembership.objects.filter(
            team_id=activity.team_id, member_id=signup.member_id, role=TeamRole.LEADER
        ).exists()
    )


@dataclass
class CloseResult:
    activity: Activity
    already_closed: bool
    credited: list[dict[str, Any]] = field(default_factory=list)
    # Credits that wait for a second person (four eyes): each with its approval_id.
    pending: list[dict[str, Any]] = field(default_factory=list)
    no_shows: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


def credit_key(activity: Activity, member_id: int) -> str:
    return f"activity:{activity.pk}:member:{member_id}"


def _check_may_close_now(actor: User | None, activity: Activity, reason: str, now: dt.datetime) -> str:
    """Closing before the end is for staff of the activity's org, with a reason. Answers that reason."""
    if now <= activity.starts_at:
        raise Conflict(_("活动还没开始，不能结束。"), code="not_started")
    if now >= activity.ends_at:
        return ""
    reason = _text(reason, "reason", 500)
    if not is_staff_of(actor, activity.org):
        raise Conflict(
            _("活动还没结束，结束后才能记时间。"),
            code="not_ended",
            fields={"ends_at": timezone.localtime(activity.ends_at).isoformat()},
        )
    if not reason:
        raise Conflict(_("活动还没结束。提前结束要写明原因。"), code="not_ended", fields={"reason": "required"})
    return reason


@transaction.atomic
def do_close_activity(actor: User | None, activity: Activity, *, reason: str = "") -> CloseResult:
    """Every attendee's time becomes a service record (minutes × multiplier into `earned`), in one step.

    A credit to someone who ran the activity, or above the head office's approval threshold, opens an
    approval instead (four eyes); approving it posts the record and links it to the sign-up."""
    activity = _lock_activity(activity)
    if activity.state == ActivityState.CLOSED:
        return CloseResult(activity, already_closed=True)
    if activity.state == ActivityState.CANCELLED:
        raise Conflict(_("这个活动已取消。"), code="activity_cancelled")
    now = timezone.now()
    early = _check_may_close_now(actor, activity, reason, now)
    planned_end = activity.ends_at
    if early:
        # It ended now: scans without a check-out and hand marks are credited up to here, not to the plan.
        activity.ends_at = now
    result = CloseResult(activity, already_closed=False)
    signups = list(
        ActivitySignup.objects.select_for_update(of=("self",))  # the signups, not their members
        .filter(activity=activity, status=SignupStatus.CONFIRMED)
        .select_related("member")
        .order_by("pk")
    )
    # Four eyes counts each attendee's credits of the day under their row lock: take all of them now, in key
    # order, before the first credit locks ledger accounts (a parallel service record then cannot deadlock).
    lock_members(s.member_id for s in signups)
    memo = f"活动：{activity.title}"[:500]
    refused: dict[int, str] = {}
    trimmed: dict[int, int] = {}
    for signup in signups:
        minutes = minutes_to_credit(activity, signup)
        if minutes <= 0:
            signup.attendance = Attendance.NO_SHOW
            signup.save(update_fields=["attendance"])
            result.no_shows.append(signup.member_id)
            continue
        if signup.member.status != MemberStatus.ACTIVE:
            result.skipped.append(signup.member_id)
            continue
        minutes = min(minutes, 24 * 60)
        # Only the part of the attendance not credited elsewhere (another activity, an order); under the member
        # locks taken above, so a parallel close of an overlapping activity sees this one's credit or waits.
        window = attendance_window(activity, signup)
        free = free_minutes(window, _busy_windows(signup.member_id, activity, window, credited_only=True))
        if free <= 0:
            refused[signup.member_id] = "overlapping_attendance"
            result.skipped.append(signup.member_id)
            continue
        if free < minutes:
            minutes = trimmed[signup.member_id] = free
        try:
            with transaction.atomic():  # one attendee who may not be credited does not undo the others
                rec, _replayed = do_service_record(
                    actor,
                    volunteer=signup.member,
                    service_item=activity.service_item,
                    minutes=minutes,
                    served_at=activity.starts_at,
                    memo=memo,
                    idempotency_key=credit_key(activity, signup.member_id),
                    require_approval=ran_by(activity, signup, actor),
                    approval_kind=ApprovalKind.ACTIVITY_CLOSE,
                    approval_context={"signup_id": signup.pk, "activity_id": activity.pk},
                )
        except Conflict as exc:
            refused[signup.member_id] = exc.code
            result.skipped.append(signup.member_id)
            continue
        signup.attendance = Attendance.ATTENDED
        if isinstance(rec, Approval):
            signup.save(update_fields=["attendance"])
            result.pending.append(
                {
                    "member_id": signup.member_id,
                    "minutes": minutes,
                    "credited_minutes": rec.minutes,
                    "approval_id": rec.pk,
                }
            )
            continue
        signup.service_record = rec
        signup.save(update_fields=["attendance", "service_record"])
        result.credited.append(
            {"member_id": signup.member_id, "minutes": rec.minutes, "credited_minutes": rec.credited_minutes}
        )
    activity.state = ActivityState.CLOSED
    activity.closed_at = now
    activity.closed_by = _actor(actor)
    activity.save(update_fields=["state", "closed_at", "closed_by", "ends_at"])
    audit: dict[str, Any] = {
        "credited": result.credited,
        "pending": result.pending,
        "no_shows": result.no_shows,
        "skipped": result.skipped,
    }
    if refused:
        audit["refused"] = {str(k): v for k, v in refused.items()}
    if trimmed:
        audit["overlap_trimmed"] = {str(k): v for k, v in trimmed.items()}
    if early:
        audit.update(early=early, planned_end=planned_end.isoformat())
    record(actor, "activity.close", activity, bank_id=activity.bank_id, data=audit)
    _notify_after_commit("activity.credited", activity, [c["member_id"] for c in result.credited])
    return result


def pending_approvals(activity: Activity) -> dict[int, Approval]:
    """The credits of this activity that wait for a second person, by sign-up id."""
    approvals = Approval.objects.filter(
        kind=ApprovalKind.ACTIVITY_CLOSE, state=ApprovalState.PENDING, payload__activity_id=activity.pk
    )
    return {int(a.payload["signup_id"]): a for a in approvals if a.payload.get("signup_id")}


# --- notices (the notify app's outbox, like the orders' messages) ---

TEMPLATES: dict[str, tuple[Promise, Promise]] = {
    "activity.signed_up": (
        _("活动报名成功"),
        _("您已报名“%(title)s”（%(start)s，%(place)s）。到场后请扫现场二维码签到。"),
    ),
    "activity.waiting": (
        _("已进入候补名单"),
        _("“%(title)s”（%(start)s）名额已满，您在候补名单上。有人退出时会按顺序递补并通知您。"),
    ),
    "activity.promoted": (_("候补成功"), _("有人退出，您已递补上“%(title)s”（%(start)s，%(place)s）的名额。")),
    "activity.reminder": (_("活动提醒"), _("您报名的“%(title)s”将在%(start)s开始，地点：%(place)s。")),
    "activity.changed": (_("活动有变动"), _("“%(title)s”的时间或地点有变动：%(start)s，%(place)s。")),
    "activity.cancelled": (_("活动已取消"), _("您报名的“%(title)s”（%(start)s）已取消。")),
    "activity.credited": (_("活动时间已存入"), _("“%(title)s”已结束，您的服务时间已存入时间账户。谢谢您！")),
}


def _payload(activity: Activity) -> dict[str, Any]:
    return {
        "activity_id": activity.pk,
        "title": activity.title,
        "start": timezone.localtime(activity.starts_at).strftime("%m-%d %H:%M"),
        "place": activity.place,
    }


def _notify_after_commit(template: str, activity: Activity, member_ids: list[int]) -> None:
    if member_ids:
        transaction.on_commit(partial(notify_members, template, activity.pk, list(member_ids)))


@transaction.atomic
def notify_members(template: str, activity_id: int, member_ids: list[int]) -> int:
    """Queue one message per member in the notify outbox (and the other channels configured)."""
    from timebank.notify.actions import _queue, member_reader
    from timebank.notify.messages import Message

    activity = Activity.objects.get(pk=activity_id)
    title, body = TEMPLATES[template]
    payload = _payload(activity)
    with translation.override(settings.LANGUAGE_CODE):
        message = Message(template, str(title)[:100], (str(body) % payload)[:500], payload)
    members = list(Member.objects.filter(pk__in=member_ids).select_related("user").order_by("pk"))
    created = _queue([member_reader(m) for m in members], message, bank_id=activity.bank_id, order=None)
    if created:
        record(
            None,
            "notification.queue",
            activity,
            bank_id=activity.bank_id,
            data={"template": template, "notifications": [n.pk for n in created]},
        )
    return len(created)


def send_activity_reminders(hours: float = 24, now: dt.datetime | None = None) -> int:
    """Remind everyone with a place in an activity that starts within `hours`, once. Answers how many."""
    now = now or timezone.now()
    due = ActivitySignup.objects.filter(
        status=SignupStatus.CONFIRMED,
        reminded_at__isnull=True,
        activity__state=ActivityState.PUBLISHED,
        activity__starts_at__gt=now,
        activity__starts_at__lte=now + dt.timedelta(hours=hours),
    ).values_list("pk", flat=True)
    count = 0
    for signup_id in list(due):
        if _remind(signup_id, now):
            count += 1
    return count


@transaction.atomic
def _remind(signup_id: int, now: dt.datetime) -> bool:
    signup = ActivitySignup.objects.select_for_update().filter(pk=signup_id, reminded_at__isnull=True).first()
    if signup is None or signup.status != SignupStatus.CONFIRMED:
        return False
    signup.reminded_at = now
    signup.save(update_fields=["reminded_at"])
    notify_members("activity.reminder", signup.activity_id, [signup.member_id])
    return True


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
