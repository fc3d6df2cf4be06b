from __future__ import annotations

from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from timebank.api.types import PathId, paginate
from timebank.notify import actions
from timebank.notify.access import (
    access_duty,
    access_member_messages,
    access_notification,
    visible_notifications,
)
from timebank.notify.login_codes import do_send_login_code
from timebank.notify.models import Notification, NotifyChannel, StaffDuty
from timebank.notify.schemas import (
    DutyIn,
    DutyOut,
    MemberMessagePage,
    NotificationOut,
    NotificationPage,
    ReadAllOut,
    SmsCodeIn,
    SmsCodeOut,
)
from timebank.notify.sms import member_messages
from timebank.orgs.api import caller

router = Router(tags=["notify"])


@router.get("/notifications", response=NotificationPage)
def list_notifications(
    request: HttpRequest,
    limit: int = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    unread: bool = False,
    channel: NotifyChannel = NotifyChannel.OUTBOX,
) -> dict[str, Any]:
    """The caller's own notifications, newest first, with how many in-app ones are unread.
    `channel` defaults to the in-app outbox; the others are copies sent by e-mail, SMS or WeChat."""
    user = caller(request)
    mine = visible_notifications(user)
    qs = mine.filter(channel=channel)
    if unread:
        qs = qs.filter(read_at__isnull=True)
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    unread_count = mine.filter(channel=NotifyChannel.OUTBOX, read_at__isnull=True).count()
    return {"items": rows, "next_cursor": nxt, "unread_count": unread_count}  # NotificationOut reads each row


@router.post("/notifications/{notification_id}/read", response=NotificationOut)
def read_notification(request: HttpRequest, notification_id: PathId) -> Notification:
    """Mark one of the caller's notifications read (again is fine: the first time stays)."""
    user = caller(request)
    return actions.do_mark_read(user, access_notification(user, notification_id))


@router.post("/notifications/read-all", response=ReadAllOut)
def read_all_notifications(request: HttpRequest) -> dict[str, Any]:
    """Mark all of the caller's in-app notifications read."""
    return {"marked": actions.do_mark_all_read(caller(request))}


@router.get("/duty", response=DutyOut)
def get_duty(request: HttpRequest) -> dict[str, Any]:
    """Whether the calling staff member or operator is on duty (urgent orders reach those who are)."""
    user = access_duty(caller(request))
    duty = StaffDuty.objects.filter(user=user).first()
    return {"on_duty": bool(duty and duty.on_duty), "updated_at": duty.updated_at if duty else None}


@router.post("/duty", response=DutyOut)
def set_duty(request: HttpRequest, payload: DutyIn) -> dict[str, Any]:
    """Staff, admins and operators put themselves on or off duty."""
    user = access_duty(caller(request))
    duty = actions.do_set_duty(user, on_duty=payload.on_duty)
    return {"on_duty": duty.on_duty, "updated_at": duty.updated_at}


@router.get("/members/{member_id}/messages", response=MemberMessagePage, tags=["members", "notify"])
def list_member_messages(
    request: HttpRequest,
    member_id: PathId,
    limit: int = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """What was sent to a member, or to their relatives about them, on every channel, newest first: staff and
    operators of the member's home subtree, who read it out to an elder without a smartphone (an SMS kept with
    status `not_configured` when no SMS provider is configured). Others 403 `outside_subtree`."""
    member = access_member_messages(caller(request), member_id)
    qs = member_messages(member).select_related("member", "user")
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    return {"items": rows, "next_cursor": nxt}  # MemberMessageOut reads each row


@router.post("/auth/sms-code", auth=None, response={202: SmsCodeOut}, tags=["auth"])
def send_sms_code(request: HttpRequest, payload: SmsCodeIn) -> Status[dict[str, bool]]:
    """Send a 6-digit login code by SMS, valid 10 minutes, to the active member whose mobile this is; then log in
    with `POST /auth/token` `{"phone", "sms_code"}`. Always 202: nothing tells whether the phone is known. A new
    code replaces the earlier one (and lifts its lock after 5 wrong codes). Sending is limited per phone and per
    client address: 429 `rate_limited`. A malformed phone (not a mainland mobile) is 422."""
    do_send_login_code(request, payload.phone)
    return Status(202, {"accepted": True})
