"""Writes of the notifications app: queueing messages, delivering them, reading them, and staff duty.

Messages are queued inside the order's own transaction (the service loop's `OrderTransitioned` event), so they
exist exactly when the transition committed, and are handed to the task queue after that commit. Delivery
runs outside any order transaction: a failed send marks the notification failed and schedules a retry; it
never touches the order.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import Note, record
from timebank.lib import clock
from timebank.lib.errors import Invalid
from timebank.members.models import Member, MemberStatus, RelativeLink
from timebank.notify.access import DUTY_ROLES, access_duty, visible_notifications
from timebank.notify.adapters import adapter_for
from timebank.notify.messages import Message, order_payload, render
from timebank.notify.models import (
    Notification,
    NotificationStatus,
    NotifyChannel,
    OrderReminder,
    StaffDuty,
    WeChatBinding,
)
from timebank.orders.models import Order, OrderState
from timebank.orgs.access import caller_bank_id
from timebank.orgs.models import User

logger = logging.getLogger(__name__)

# A sender holds a notification this long; if it dies mid-send, the notification becomes due again.
LEASE = dt.timedelta(minutes=5)
RETRY_BASE = dt.timedelta(minutes=1)
RETRY_CAP = dt.timedelta(hours=6)
URGENT_PRIORITY = 10


def channels() -> list[str]:
    return [c for c in getattr(settings, "NOTIFY_CHANNELS", ["outbox"]) if c in NotifyChannel.values]


def max_attempts() -> int:
    return max(1, int(getattr(settings, "NOTIFY_MAX_ATTEMPTS", 5)))


def backoff(attempts: int) -> dt.timedelta:
    """1, 2, 4, 8 ... minutes after the n-th failed attempt, at most 6 hours."""
    return min(RETRY_CAP, RETRY_BASE * 2 ** max(0, attempts - 1))


@dataclass(frozen=True)
class Reader:
    """Someone to notify: a login, a member, or a member with their login."""

    user: User | None
    member: Member | None

    @property
    def key(self) -> tuple[str, int]:
        # One message per person: a login that is also a member is one reader, not two.
        if self.user is not None:
            return ("user", self.user.pk)
        assert self.member is not None
        return ("member", self.member.pk)


def member_reader(member: Member) -> Reader:
    return Reader(member.user if member.user_id else None, member)


def family_links(member: Member) -> list[RelativeLink]:
    """The member's links to relatives who have not left, each with the relative and their login, in the
    relatives' id order. Kept on the member object: one transition asks twice (the family's message, then the
    accept SMS's contact), and the object lives as long as the action. Sorted here, not by an ORDER BY: on a
    select this wide the ORDER BY costs Django more CPU than sorting a family's few rows."""
    cached: list[RelativeLink] | None = getattr(member, "_family_links", None)
    if cached is None:
        links = (
            RelativeLink.objects.filter(member=member)
            .exclude(relative__status=MemberStatus.LEFT)
            .select_related("relative__user")
        )
        cached = sorted(links, key=lambda link: link.relative_id)
        member._family_links = cached  # type: ignore[attr-defined]
    return cached


def relatives_of(member: Member) -> list[Member]:
    return [link.relative for link in family_links(member)]


def on_duty_staff(order: Order) -> list[User]:
    """Staff, admins and operators on duty whose subtree holds the order's org: the org or one above it."""
    ancestors = [int(part) for part in order.org.path.strip("/").split("/") if part]
    return list(
        User.objects.filter(is_active=True, org_id__in=ancestors, role__in=DUTY_ROLES, duty__on_duty=True).order_by(
            "pk"
        )
    )


def _reachable(channel: str, reader: Reader, bound: set[int]) -> bool:
    if channel == NotifyChannel.OUTBOX:
        return True
    if channel == NotifyChannel.EMAIL:
        return bool(reader.user and reader.user.email)
    if channel == NotifyChannel.SMS:
        return bool(reader.member and reader.member.phone)
    return bool(reader.user and reader.user.pk in bound)


def enqueue_send(notification_id: int, *, urgent: bool = False, run_after: dt.datetime | None = None) -> None:
    """Hand one notification to the task queue. If the queue is down, `send_notifications` picks it up."""
    from timebank.notify.tasks import send_notification

    try:
        task = send_notification
        if urgent and task.get_backend().supports_priority:
            task = task.using(priority=URGENT_PRIORITY)
        if run_after is not None:
            if not task.get_backend().supports_defer:
                return  # the cron command retries it when due
            task = task.using(run_after=run_after)
        task.enqueue(notification_id)
    except Exception:
        logger.exception("could not enqueue notification %s", notification_id)


def queue_message(
    readers: list[Reader], message: Message, *, bank_id: int | None, order: Order | None = None, urgent: bool = False
) -> list[Notification]:
    """The one way any app queues a message: one notification per reader and configured channel that reaches them.

    Call it inside the action's transaction: the rows commit or roll back with the action, and each is handed
    to the task queue only after that commit. A login that is also a member is one reader. The caller records
    its own audit entry (`notification.queue`) with the ids answered."""
    unique: dict[tuple[str, int], Reader] = {}
    for reader in readers:
        if reader.key not in unique or reader.member is not None:
            unique[reader.key] = reader
    in_use = channels()
    user_ids = [r.user.pk for r in unique.values() if r.user]
    bound: set[int] = set()
    if NotifyChannel.WECHAT in in_use and user_ids:  # bindings matter for WeChat only
        bound = set(WeChatBinding.objects.filter(user_id__in=user_ids).values_list("user_id", flat=True))
    created = [
        Notification.objects.create(
            bank_id=bank_id,
            user=reader.user,
            member=reader.member,
            order=order,
            channel=channel,
            template=message.template,
            title=message.title,
            body=message.body,
            payload=message.payload,
            urgent=urgent,
        )
        for channel in in_use
        for reader in unique.values()
        if _reachable(channel, reader, bound)
    ]
    for n in created:
        transaction.on_commit(partial(enqueue_send, n.pk, urgent=urgent))
    return created


def _load(order_id: int) -> Order:
    return Order.objects.select_related("org", "recipient__user", "volunteer__user", "service_item").get(pk=order_id)


FAMILY_ACTIONS = frozenset({"create", "accept", "take", "check-out", "buy-service"})


# The transitions someone hears about (besides an urgent order's creation): `readers_for` below.
NOTIFIED_ACTIONS = frozenset({"dispatch", "accept", "take", "check-out", "confirm", "cancel", "buy-service"})


def notifies(order: Order, action: str) -> bool:
    """Whether the transition sends anything, before any query (most creations and check-ins do not)."""
    return action in NOTIFIED_ACTIONS or (action == "create" and order.urgent)


def readers_for(order: Order, action: str) -> tuple[str, list[Reader]] | None:
    """Who hears about a transition, and with which template."""
    if action == "create" and not order.urgent:
        return None  # before reading the relatives: most orders are not urgent
    volunteer = [member_reader(order.volunteer)] if order.volunteer else []
    relatives = [member_reader(m) for m in relatives_of(order.recipient)] if action in FAMILY_ACTIONS else []
    if action == "create" and order.urgent:
        # "At once": on-duty staff of the subtree and the relatives, before anyone dispatches.
        return "order.urgent", [Reader(u, None) for u in on_duty_staff(order)] + relatives
    if action == "dispatch":
        return "order.dispatched", volunteer
    if action in ("accept", "take"):
        return "order.accepted", [member_reader(order.recipient), *relatives]
    if action == "check-out":
        return "order.completed", [member_reader(order.recipient), *relatives]
    if action == "confirm":
        return "order.confirmed", volunteer
    if action == "cancel":
        return "order.cancelled", volunteer
    if action == "buy-service":
        # No volunteer could come: the emergency fund bought the service; the recipient's minutes paid for it.
        return "order.bought", [member_reader(order.recipient), *relatives]
    return None


@transaction.atomic
def do_notify_order(order: Order, action: str, *, notes: list[Note] | None = None) -> list[Notification]:
    """Queue the messages for one order transition, inside the transition's transaction.

    `order` is the order as the transition left it (its parties are read from it, loaded if they were not).
    The audit entry goes to `notes` when given (the caller appends it with its own, under one chain lock),
    else it is recorded here."""
    plan = readers_for(order, action)
    if plan is None or not plan[1]:
        return []
    template, readers = plan
    urgent = template == "order.urgent"
    created = queue_message(
        readers, render(template, order_payload(order)), bank_id=order.bank_id, order=order, urgent=urgent
    )
    if not created:
        return []
    note = Note(
        None,
        "notification.queue",
        order,
        {"action": action, "template": template, "notifications": [n.pk for n in created]},
    )
    if notes is not None:
        notes.append(note)
    else:
        record(note.actor, note.action, note.obj, bank_id=order.bank_id, data=note.data)
    return created


# --- reminders before the start ---


def due_reminders(now: dt.datetime, hours: float) -> QuerySet[Order]:
    """Accepted orders starting within `hours` whose current volunteer has not been reminded."""
    reminded = OrderReminder.objects.filter(order=OuterRef("pk"), volunteer=OuterRef("volunteer"))
    return Order.objects.filter(
        state=OrderState.ACCEPTED,
        volunteer__isnull=False,
        scheduled_start__gt=now,
        scheduled_start__lte=now + dt.timedelta(hours=hours),
    ).filter(~Exists(reminded))


@transaction.atomic
def do_remind(order: Order) -> list[Notification]:
    """One reminder per order and volunteer, to the volunteer and the recipient. Safe to run twice."""
    Order.objects.select_for_update().filter(pk=order.pk).values_list("pk").first()
    order = _load(order.pk)
    if order.state != OrderState.ACCEPTED or order.volunteer is None:
        return []
    _reminder, fresh = OrderReminder.objects.get_or_create(order=order, volunteer=order.volunteer)
    if not fresh:
        return []
    readers = [member_reader(order.volunteer), member_reader(order.recipient)]
    created = queue_message(readers, render("order.reminder", order_payload(order)), bank_id=order.bank_id, order=order)
    record(
        None,
        "notification.remind",
        order,
        bank_id=order.bank_id,
        data={"volunteer": order.volunteer_id, "notifications": [n.pk for n in created]},
    )
    return created


def send_reminders(hours: float | None = None, now: dt.datetime | None = None) -> int:
    """Remind every order that starts soon; answers how many orders were reminded."""
    now = now or clock.now()
    window = float(hours if hours is not None else getattr(settings, "NOTIFY_REMINDER_HOURS", 2))
    count = 0
    for order in due_reminders(now, window).order_by("scheduled_start", "pk"):
        if do_remind(order):
            count += 1
    return count


# --- delivery ---


def _claim(notification_id: int, now: dt.datetime, force: bool) -> Notification | None:
    with transaction.atomic():
        n = Notification.objects.select_for_update().filter(pk=notification_id).first()
        if n is None or n.status == NotificationStatus.SENT:
            return None
        if n.status == NotificationStatus.FAILED and force:
            pass  # an operator asked to try failed ones again (after configuring a channel, say)
        elif n.status == NotificationStatus.FAILED and n.next_attempt_at is None:
            return None  # given up
        elif n.next_attempt_at is not None and n.next_attempt_at > now:
            return None  # backing off, or another sender holds it
        n.attempts += 1
        n.next_attempt_at = now + LEASE
        n.save(update_fields=["attempts", "next_attempt_at"])
        return n


def do_send_notification(
    notification_id: int, *, now: dt.datetime | None = None, force: bool = False
) -> Notification | None:
    """Deliver one notification through its channel's adapter and record the outcome on it.

    Answers the notification as it now stands, or None when it was not due (sent, leased or given up).
    """
    now = now or clock.now()
    n = _claim(notification_id, now, force)
    if n is None:
        return None
    try:
        adapter_for(n.channel).send(n)
    except Exception as exc:
        return _failed(n.pk, exc, now)
    with transaction.atomic():
        n = Notification.objects.select_for_update().get(pk=n.pk)
        n.status = NotificationStatus.SENT
        n.sent_at = clock.now()
        n.next_attempt_at = None
        n.last_error = ""
        n.save(update_fields=["status", "sent_at", "next_attempt_at", "last_error"])
    return n


def _failed(notification_id: int, exc: Exception, now: dt.datetime) -> Notification:
    logger.warning("notification %s failed: %s", notification_id, exc)
    with transaction.atomic():
        n = Notification.objects.select_for_update().get(pk=notification_id)
        retry = getattr(exc, "retry", True) and n.attempts < max_attempts()
        n.status = NotificationStatus.FAILED
        n.last_error = f"{type(exc).__name__}: {exc}"[:500]
        n.next_attempt_at = now + backoff(n.attempts) if retry else None
        n.save(update_fields=["status", "last_error", "next_attempt_at"])
        if n.next_attempt_at is not None:
            transaction.on_commit(partial(enqueue_send, n.pk, urgent=n.urgent, run_after=n.next_attempt_at))
    return n


def due_notifications(now: dt.datetime, *, force: bool = False) -> QuerySet[Notification]:
    """Pending ones not held by a sender, and failed ones whose retry time has come."""
    ready = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    due = Q(status=NotificationStatus.PENDING) & ready
    due |= Q(status=NotificationStatus.FAILED, next_attempt_at__lte=now)
    if force:
        # An operator configured a channel: what failed or was kept for want of a provider goes out now.
        due |= Q(status__in=[NotificationStatus.FAILED, NotificationStatus.NOT_CONFIGURED])
    return Notification.objects.filter(due)


def send_due(*, now: dt.datetime | None = None, limit: int = 500, force: bool = False) -> dict[str, int]:
    """Send what is due (the cron fallback, and retries where the task queue cannot defer)."""
    now = now or clock.now()
    counts = {"sent": 0, "failed": 0}
    ids = list(due_notifications(now, force=force).order_by("-urgent", "pk").values_list("pk", flat=True)[:limit])
    for pk in ids:
        n = do_send_notification(pk, now=now, force=force)
        if n is not None:
            counts["sent" if n.status == NotificationStatus.SENT else "failed"] += 1
    return counts


# --- the reader's side ---


@transaction.atomic
def do_mark_read(actor: User, notification: Notification) -> Notification:
    n = Notification.objects.select_for_update().get(pk=notification.pk)
    if n.read_at is None:
        n.read_at = clock.now()
        n.save(update_fields=["read_at"])
        record(actor, "notification.read", n, bank_id=n.bank_id)
    return n


@transaction.atomic
def do_mark_all_read(actor: User) -> int:
    unread = visible_notifications(actor).filter(channel=NotifyChannel.OUTBOX, read_at__isnull=True)
    count = unread.update(read_at=clock.now())
    if count:
        record(actor, "notification.read_all", actor, bank_id=caller_bank_id(actor), data={"count": count})
    return count


# --- staff duty and channel bindings ---


@transaction.atomic
def do_set_duty(actor: User, *, on_duty: bool) -> StaffDuty:
    """Staff and operators put themselves on or off duty; urgent orders reach those on duty."""
    access_duty(actor)
    duty, created = StaffDuty.objects.select_for_update().get_or_create(user=actor)
    if duty.on_duty != on_duty or created:
        duty.on_duty = on_duty
        duty.save(update_fields=["on_duty", "updated_at"])
        assert actor.org is not None
        record(actor, "staff.duty", duty, bank_id=actor.org.head_office_id, data={"on_duty": on_duty})
    return duty


OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@transaction.atomic
def do_bind_wechat(actor: User | None, user: User, *, openid: str) -> WeChatBinding:
    """Record a login's openid on the official account (called by a WeChat login flow)."""
    if not OPENID.fullmatch(openid):
        raise Invalid(_("微信 openid 格式不对。"), fields={"openid": "invalid"})
    binding, _created = WeChatBinding.objects.update_or_create(user=user, defaults={"openid": openid})
    record(actor, "notification.bind_wechat", binding, bank_id=caller_bank_id(user), data={"user": user.pk})
    return binding
