"""Attendance at group activities: QR check-in and check-out, marks by hand, and closing, which credits.

Closing credits every attendee through the ledger (a service record each, one idempotency key per attendee)
and runs once: the activity row is locked and its state checked, so a second close credits nothing more.
Credits are bounded by what really happened: an activity is not closed before its end (staff of its org may,
with a reason, audited: a rained-off afternoon); an attendance is credited at most the activity's length
and, with a QR check-in and check-out, the time between them; a walk-in meets the sign-up's requirements;
and a credit to someone who ran the activity (a leader of its team, whoever published it, marked them or
closes it) waits for a second person. A member's credited attendances never overlap in time, with each other
or with orders they checked in and out of: the overlapping part is refused when marked and again at close,
under the member's row lock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.approvals.actions import lock_members
from timebank.approvals.models import Approval, ApprovalKind, ApprovalState
from timebank.audit.actions import record
from timebank.lib import clock
from timebank.lib.errors import Conflict, Invalid
from timebank.members.models import Member, MemberStatus
from timebank.orders.records import do_service_record
from timebank.orders.sheets import enter_rows
from timebank.orgs.models import User
from timebank.teams import qr
from timebank.teams.activities import check_eligible, lock_activity, require_open
from timebank.teams.common import clean_text, is_staff_of, person_or_none
from timebank.teams.messages import tell_members
from timebank.teams.models import (
    Activity,
    ActivitySignup,
    ActivityState,
    Attendance,
    SignupStatus,
    TeamMembership,
    TeamRole,
)

# Scanning is open from an hour before the start to an hour after the end.
SCAN_MARGIN = dt.timedelta(hours=1)
# A second scan this soon after checking in is the same person scanning twice, not a check-out.
DOUBLE_SCAN = dt.timedelta(minutes=2)


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
    activity = lock_activity(activity)
    require_open(activity)
    now = clock.now()
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
    activity = lock_activity(activity)
    require_open(activity)
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
                activity=activity, member=member, status=SignupStatus.CONFIRMED, queued_at=clock.now()
            )
        else:
            signup.status = SignupStatus.CONFIRMED
    signup.attendance = Attendance.ATTENDED if attended else Attendance.NO_SHOW
    signup.manual_minutes = (minutes or min(credit_cap(activity, signup), free)) if attended else None
    signup.marked_by = person_or_none(actor)
    signup.save()
    record(
        actor,
        "activity.mark_attendance",
        activity,
        bank_id=activity.bank_id,
        data={"member": member.pk, "attended": attended, "minutes": signup.manual_minutes},
    )
    return signup


@dataclass(frozen=True)
class SheetMark:
    """One filled row of an activity's paper sign-in sheet: came (with the minutes, blank: the default) or not."""

    member: Member
    attended: bool
    minutes: int | None = None


@transaction.atomic
def do_enter_activity_sheet(actor: User | None, activity: Activity, marks: list[SheetMark]) -> list[ActivitySignup]:
    """Enter a filled activity sheet: each row through `do_mark_attendance`, all or nothing, as the orders' day
    sheet (orders.sheets.enter_rows): every row is tried in its own savepoint so the page shows every refusal at
    once, and any refusal rolls the whole sheet back (`SheetRefused`, by member id). The activity is
    locked first, so two sheets of it entered at once go one after the other."""
    activity = lock_activity(activity)
    return enter_rows(
        marks,
        lambda m: m.member.pk,
        lambda m, _step: do_mark_attendance(actor, activity, m.member, attended=m.attended, minutes=m.minutes),
        action="attendance",
    )


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
    reason = clean_text(reason, "reason", 500)
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
    activity = lock_activity(activity)
    if activity.state == ActivityState.CLOSED:
        return CloseResult(activity, already_closed=True)
    if activity.state == ActivityState.CANCELLED:
        raise Conflict(_("这个活动已取消。"), code="activity_cancelled")
    now = clock.now()
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
    activity.closed_by = person_or_none(actor)
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
    tell_members("activity.credited", activity, [c["member_id"] for c in result.credited])
    return result


def pending_approvals(activity: Activity) -> dict[int, Approval]:
    """The credits of this activity that wait for a second person, by sign-up id."""
    approvals = Approval.objects.filter(
        kind=ApprovalKind.ACTIVITY_CLOSE, state=ApprovalState.PENDING, payload__activity_id=activity.pk
    )
    return {int(a.payload["signup_id"]): a for a in approvals if a.payload.get("signup_id")}
