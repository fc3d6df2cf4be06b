"""SMS for people without a smartphone: the accepted order's code to the recipient (or their contact), and
one-time login codes.

These go by SMS whatever `NOTIFY_CHANNELS` says: an elder with a feature phone has no other way to read them.
With no SMS provider configured (the demo, the tests) the message is kept with status `not_configured` and
not handed to the sender, so staff of the member's subtree can read it out (`GET /members/{id}/messages`).
"""

from __future__ import annotations

import re
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import Note
from timebank.lib.phone import clean_phone
from timebank.members.models import Member, RelativeLink
from timebank.notify.actions import enqueue_send, family_links, member_reader
from timebank.notify.adapters import NotConfigured, sms_config
from timebank.notify.messages import Message
from timebank.notify.models import Notification, NotificationStatus, NotifyChannel
from timebank.orders.models import Order

ACCEPTED_CODE_TEMPLATE = "order.accepted_code"
MOBILE = re.compile(r"^1[3-9]\d{9}$")


def mobile_number(phone: str) -> str | None:
    """A mainland mobile number in its 11 digits, or None (a landline cannot receive an SMS)."""
    cleaned = clean_phone(phone or "")
    return cleaned if cleaned and MOBILE.fullmatch(cleaned) else None


def sms_configured() -> bool:
    try:
        sms_config()
    except NotConfigured:
        return False
    return True


def queue_sms(member: Member, message: Message, *, bank_id: int | None, order: Order | None = None) -> Notification:
    """One SMS to one member, inside the caller's transaction. Without a provider it is kept `not_configured`."""
    reader = member_reader(member)
    configured = sms_configured()
    n = Notification.objects.create(
        bank_id=bank_id,
        user=reader.user,
        member=member,
        order=order,
        channel=NotifyChannel.SMS,
        template=message.template,
        title=message.title,
        body=message.body,
        payload=message.payload,
        status=NotificationStatus.PENDING if configured else NotificationStatus.NOT_CONFIGURED,
    )
    if configured:
        transaction.on_commit(partial(enqueue_send, n.pk))
    return n


def sms_contact(member: Member, *, not_member: int | None = None) -> Member | None:
    """Who gets a member's SMS: the relative marked as their contact, when they have a mobile phone, else the
    member themselves when they have one. Never `not_member` (the order's volunteer)."""
    # At most one contact per member (the constraint relative_one_contact), among the links the family's message read.
    link = next((link for link in family_links(member) if link.is_contact), None)
    for candidate in ([link.relative] if link else []) + [member]:
        if candidate.pk != not_member and mobile_number(candidate.phone):
            return candidate
    return None


def accepted_code_message(order: Order) -> Message:
    start = timezone.localtime(order.scheduled_start)
    payload = {
        "order_id": order.pk,
        "recipient": order.recipient.name,
        "service": order.service_item.name,
        "volunteer": order.volunteer.name if order.volunteer else "",
        "start": f"{start.month}月{start.day}日 {start:%H:%M}",
        "code": order.code,
    }
    with translation.override(settings.LANGUAGE_CODE):
        title = str(_("志愿者已接单"))
        body = str(
            _(
                "志愿者%(volunteer)s将于%(start)s为%(recipient)s提供%(service)s服务。"
                "服务结束时请把确认码%(code)s告诉志愿者，服务开始前请不要告诉任何人。"
            )
            % payload
        )
    return Message(ACCEPTED_CODE_TEMPLATE, title[:100], body[:500], payload)


@transaction.atomic
def do_sms_accepted(order: Order, *, notes: list[Note]) -> Notification | None:
    """The accepted order's SMS with who is coming, when, and the confirmation code: to the recipient or their
    contact only, never to the volunteer. Called in the accept's (or take's) transaction."""
    contact = sms_contact(order.recipient, not_member=order.volunteer_id)
    if contact is None:
        return None
    n = queue_sms(contact, accepted_code_message(order), bank_id=order.bank_id, order=order)
    notes.append(Note(None, "notification.queue", order, {"template": ACCEPTED_CODE_TEMPLATE, "notifications": [n.pk]}))
    return n


def member_messages(member: Member) -> QuerySet[Notification]:
    """What was sent to a member, or to their relatives about them (their orders), on every channel."""
    relatives = RelativeLink.objects.filter(relative=member).values("member_id")
    about = Q(order__recipient=member) & Q(member_id__in=relatives)
    return Notification.objects.filter(Q(member=member) | about)
