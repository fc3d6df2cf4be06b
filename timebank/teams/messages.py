"""The activities' messages to members, through the notify app's outbox (like the orders' messages)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.lib import clock
from timebank.members.models import Member
from timebank.notify.actions import member_reader, queue_message
from timebank.notify.messages import Message
from timebank.teams.models import Activity, ActivitySignup, ActivityState, SignupStatus

logger = logging.getLogger(__name__)

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


def tell_members(template: str, activity: Activity, member_ids: list[int]) -> None:
    """Queue the message inside the action's transaction (after its own audit entry): it exists exactly when the
    action committed, and its delivery is handed to the task queue on commit. A message problem never fails the
    action: `notify_members` runs in a savepoint, and a failure undoes only the message (as for the orders)."""
    if not member_ids:
        return
    try:
        notify_members(template, activity.pk, list(member_ids))
    except Exception:
        logger.exception("queueing %s for activity %s failed", template, activity.pk)


@transaction.atomic
def notify_members(template: str, activity_id: int, member_ids: list[int]) -> int:
    """Queue one message per member in the notify outbox (and the other channels configured)."""
    activity = Activity.objects.get(pk=activity_id)
    title, body = TEMPLATES[template]
    payload = _payload(activity)
    with translation.override(settings.LANGUAGE_CODE):
        message = Message(template, str(title)[:100], (str(body) % payload)[:500], payload)
    members = list(Member.objects.filter(pk__in=member_ids).select_related("user").order_by("pk"))
    created = queue_message([member_reader(m) for m in members], message, bank_id=activity.bank_id, order=None)
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
    now = now or clock.now()
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
