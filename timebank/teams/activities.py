"""Group activities: publish, change and cancel them; sign up, withdraw and the waiting list.

Sign-ups lock the activity row, so concurrent sign-ups never hand out more places than there are; the
waiting list is served in the order people joined it. An activity is not published with a start in the past
(staff of its org may, with a reason, audited: paper sign-in sheets); the times of an activity that has
started (or an end moved into the past) change only as backdating does.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.catalogue.models import CertificateKind, ServiceItem
from timebank.lib import clock
from timebank.lib.errors import Conflict, Invalid
from timebank.members.models import Certificate, Member, MemberStatus
from timebank.orders.actions import age_on
from timebank.orgs.actions import check_name
from timebank.orgs.models import Org, User
from timebank.teams.common import clean_text, is_staff_of, person_or_none
from timebank.teams.messages import tell_members
from timebank.teams.models import (
    Activity,
    ActivitySignup,
    ActivityState,
    Attendance,
    SignupStatus,
    Team,
    TeamMembership,
)

MAX_PLACES = 10_000
MAX_DURATION = dt.timedelta(hours=24)
MAX_AHEAD = dt.timedelta(days=366)
# A start this little in the past is the form's clock, not backdating ("starts now").
BACKDATE_SLACK = dt.timedelta(minutes=5)


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
    if starts_at > clock.now() + MAX_AHEAD:
        raise Invalid(_("活动时间太远了（最多提前一年发布）。"), fields={"starts_at": "too_far"})
    if deadline > starts_at:
        raise Invalid(_("报名截止时间不能晚于活动开始时间。"), fields={"signup_deadline": "after_start"})


def check_not_backdated(actor: User | None, org: Org, starts_at: dt.datetime, reason: str) -> str:
    """A start in the past is refused, but staff of the org may enter one with a reason. Answers the reason."""
    if starts_at >= clock.now() - BACKDATE_SLACK:
        return ""
    reason = clean_text(reason, "reason", 500)
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
        "description": clean_text(data.description, "description", 1000),
        "service_item": item,
        "place": clean_text(data.place, "place", 200, required=True),
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
    bank_id = org.bank_pk
    if team is not None and team.org_id != org.pk:
        raise Invalid(_("活动要发布在队伍所属的社区。"), fields={"team_id": "other_org"})
    if team is not None and not team.active:
        raise Conflict(_("这支队伍已停止活动。"), code="team_inactive")
    values = _check_activity_input(data, bank_id)
    if values["team_only"] and team is None:
        raise Invalid(_("“仅限队员”的活动要指定队伍。"), fields={"team_only": "needs_team"})
    backdated = check_not_backdated(actor, org, data.starts_at, data.backdate_reason)
    activity = Activity.objects.create(
        bank_id=bank_id, org=org, team=team, qr_salt=secrets.token_hex(16), created_by=person_or_none(actor), **values
    )
    audit: dict[str, Any] = {"title": activity.title, "places": activity.places, "team": team.pk if team else None}
    if backdated:
        audit.update(backdated=backdated, starts_at=activity.starts_at.isoformat())
    record(actor, "activity.publish", activity, bank_id=bank_id, data=audit)
    return activity


def lock_activity(activity: Activity) -> Activity:
    return (
        Activity.objects.select_for_update(of=("self",))
        .select_related("service_item", "team", "org")
        .get(pk=activity.pk)
    )


def require_open(activity: Activity) -> None:
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
    now = clock.now()
    if activity.starts_at > now and values["ends_at"] > now:
        return check_not_backdated(actor, activity.org, values["starts_at"], reason)
    reason = clean_text(reason, "reason", 500)
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
    activity = lock_activity(activity)
    require_open(activity)
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
    promoted = _promote(activity, now=clock.now())
    record(
        actor, "activity.update", activity, bank_id=activity.bank_id, data={"changed": changed, "promoted": promoted}
    )
    if noticed:
        members = list(
            ActivitySignup.objects.filter(
                activity=activity, status__in=(SignupStatus.CONFIRMED, SignupStatus.WAITING)
            ).values_list("member_id", flat=True)
        )
        tell_members("activity.changed", activity, [m for m in members if m not in promoted])
    tell_members("activity.promoted", activity, promoted)
    return activity


@transaction.atomic
def do_cancel_activity(actor: User | None, activity: Activity, *, reason: str) -> Activity:
    reason = clean_text(reason, "reason", 500, required=True)
    activity = lock_activity(activity)
    require_open(activity)
    activity.state = ActivityState.CANCELLED
    activity.cancel_reason = reason
    activity.save(update_fields=["state", "cancel_reason"])
    members = list(
        ActivitySignup.objects.filter(
            activity=activity, status__in=(SignupStatus.CONFIRMED, SignupStatus.WAITING)
        ).values_list("member_id", flat=True)
    )
    record(actor, "activity.cancel", activity, bank_id=activity.bank_id, data={"reason": reason, "told": members})
    tell_members("activity.cancelled", activity, members)
    return activity


# --- sign-up, withdrawal, waiting list ---


def check_eligible(activity: Activity, member: Member, *, today: dt.date | None = None) -> None:
    """The activity's requirements, with the reason in words when someone does not meet them."""
    if member.bank_id != activity.bank_id:
        raise Invalid(_("会员属于另一家时间银行。"), fields={"member_id": "other_bank"})
    if not member.is_volunteer or member.status != MemberStatus.ACTIVE:
        raise Conflict(_("只有在册的志愿者可以报名。"), code="not_a_volunteer")
    today = today or clock.localdate()
    if (
        activity.requires_certificate
        and not Certificate.objects.filter(member=member, kind=activity.requires_certificate).valid_on(today).exists()
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
    activity = lock_activity(activity)
    require_open(activity)
    now = clock.now()
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
    tell_members(template, activity, [member.pk])
    return signup


@transaction.atomic
def do_withdraw(actor: User | None, activity: Activity, member: Member) -> ActivitySignup:
    """Withdraw before the deadline; a freed place goes to the first on the waiting list."""
    activity = lock_activity(activity)
    require_open(activity)
    signup = ActivitySignup.objects.select_for_update().filter(activity=activity, member=member).first()
    if signup is None or signup.status == SignupStatus.WITHDRAWN:
        raise Conflict(_("您没有报名这个活动。"), code="not_signed_up")
    if clock.now() > activity.signup_deadline:
        raise Conflict(_("报名已截止，不能在网上退出了。去不了的话请告诉活动负责人。"), code="signup_closed")
    was = signup.status
    signup.status = SignupStatus.WITHDRAWN
    signup.save(update_fields=["status"])
    promoted = _promote(activity, now=clock.now()) if was == SignupStatus.CONFIRMED else []
    record(
        actor,
        "activity.withdraw",
        activity,
        bank_id=activity.bank_id,
        data={"member": member.pk, "was": was, "promoted": promoted},
    )
    tell_members("activity.promoted", activity, promoted)
    return signup
