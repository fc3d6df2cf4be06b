"""Subscriptions to other apps' events, registered from NotifyConfig.ready(). Each runs inside the publishing
action's transaction, so the messages exist exactly when the action committed."""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import Note, record
from timebank.ledger.events import CreditsOverCap
from timebank.lib import clock
from timebank.lib.events import subscribe
from timebank.members.models import Member
from timebank.notify.actions import do_notify_order, member_reader, notifies, queue_message, relatives_of
from timebank.notify.messages import Message
from timebank.notify.sms import do_sms_accepted
from timebank.orders.events import OrderTransitioned
from timebank.orgs.events import PasswordReset

logger = logging.getLogger(__name__)


@subscribe(OrderTransitioned)
def on_order_transition(event: OrderTransitioned) -> list[Note]:
    """Queue the transition's notifications; answer their audit note for the order's chain lock.

    A notification problem must never fail the order's action: `do_notify_order` is atomic, so inside the
    transition it runs in a savepoint, and a failure undoes only the notifications."""
    order, action = event.order, event.action
    if not notifies(order, action):
        return []  # no savepoint for nothing
    notes: list[Note] = []
    try:
        do_notify_order(order, action, notes=notes)
    except Exception:
        logger.exception("queueing notifications for order %s (%s) failed", order.pk, action)
        notes = []
    if action in ACCEPTED_ACTIONS:
        # The elder without a smartphone hears who is coming, when, and the code, by SMS (to them or their contact).
        sms_notes: list[Note] = []
        try:
            do_sms_accepted(order, notes=sms_notes)
        except Exception:
            logger.exception("queueing the accept SMS for order %s failed", order.pk)
            sms_notes = []
        notes += sms_notes
    return notes


# Accepted by the volunteer (also taken from the open list), or by staff for them (paper mode).
ACCEPTED_ACTIONS = frozenset({"accept", "take"})


RESET_TEMPLATE = "login.password_reset"


@subscribe(PasswordReset)
def on_password_reset(event: PasswordReset) -> None:
    """The member whose login was reset, and every relative linked to them, are told (in the reset's transaction:
    the messages exist exactly when the reset committed). A reset they did not ask for is how a taken-over login
    is noticed, during the RESET_HOLD in which it may not act for the family."""
    member = Member.objects.filter(user=event.login).select_related("user").first()
    if member is None:
        return  # a staff login: its admins did the reset
    when = timezone.localtime(clock.now()).strftime("%m-%d %H:%M")
    payload = {"member": member.name, "time": when}
    with translation.override(settings.LANGUAGE_CODE):
        own = Message(
            RESET_TEMPLATE,
            str(_("登录密码已重置")),
            str(_("您的登录密码在%(time)s由社区工作人员重置了。如果不是您要求的，请马上联系社区工作人员。") % payload),
            payload,
        )
        family = Message(
            RESET_TEMPLATE,
            str(_("家属的登录密码已重置")),
            str(
                _(
                    "您的家属%(member)s的登录密码在%(time)s由社区工作人员重置了。如果不是本人要求的，请马上联系社区工作人员。"
                )
                % payload
            ),
            payload,
        )
    created = queue_message([member_reader(member)], own, bank_id=member.bank_id)
    created += queue_message([member_reader(m) for m in relatives_of(member)], family, bank_id=member.bank_id)
    record(
        None,
        "notification.queue",
        member,
        bank_id=member.bank_id,
        data={"template": RESET_TEMPLATE, "notifications": [n.pk for n in created]},
    )


OVER_CAP_TEMPLATE = "ledger.over_cap"


@subscribe(CreditsOverCap)
def on_credits_over_cap(event: CreditsOverCap) -> None:
    """The member whose credit went partly to the donation pool (the head office's storage cap) is told how much,
    in the crediting transaction (the notice exists exactly when the credit committed)."""
    member = Member.objects.select_related("user").get(pk=event.member_id)
    payload = {"minutes": event.minutes, "cap_hours": event.cap_minutes // 60, "transaction": event.transaction.pk}
    with translation.override(settings.LANGUAGE_CODE):
        message = Message(
            OVER_CAP_TEMPLATE,
            str(_("储存时间已达上限")),
            str(
                _(
                    "您的储存时间已达本行规定的上限 %(cap_hours)s 小时，这次记入时超出的 %(minutes)s 分钟"
                    "已转入时间银行的捐赠池，用于帮助其他需要的人。"
                )
                % payload
            ),
            payload,
        )
    created = queue_message([member_reader(member)], message, bank_id=member.bank_id)
    record(
        None,
        "notification.queue",
        member,
        bank_id=member.bank_id,
        data={"template": OVER_CAP_TEMPLATE, "notifications": [n.pk for n in created]},
    )
