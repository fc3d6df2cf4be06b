"""What the volunteer is told about penalties and awards, through the notify outbox (and the other channels
configured). Queued inside the action's transaction, like the orders' and activities' messages: the message
exists exactly when the penalty or award committed (its delivery is handed to the task queue on commit).

No reasons in the text: an SMS may be read by someone else. The volunteer reads the reason on “我的星级”."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.evaluation.models import Award, Penalty, PenaltyKind
from timebank.members.models import Member, MemberStatus
from timebank.notify.actions import member_reader, queue_message
from timebank.notify.messages import Message

logger = logging.getLogger(__name__)

TEMPLATES: dict[str, tuple[Promise, Promise]] = {
    "penalty.imposed": (
        _("收到一项处理"),
        _("您收到一项处理：%(kind)s，自%(start)s起。理由和期间请在应用的“我的星级”里查看，有异议请联系社区。"),
    ),
    "penalty.lifted": (
        _("处理已解除"),
        _("您的%(kind)s已于%(lifted)s解除，可以重新接单了。"),
    ),
    "award.confirmed": (
        _("恭喜您获得表彰"),
        _("您获评%(year)s年度“%(award)s”，感谢您的付出。"),
    ),
    "award.confirmed_bonus": (
        _("恭喜您获得表彰"),
        _("您获评%(year)s年度“%(award)s”，%(bonus)s 分钟奖励时间已存入您的时间账户。"),
    ),
}


def _penalty_payload(penalty: Penalty) -> dict[str, Any]:
    with translation.override(settings.LANGUAGE_CODE):
        kind = str(PenaltyKind(penalty.kind).label)
    payload: dict[str, Any] = {"penalty_id": penalty.pk, "kind": kind, "start": penalty.starts_on.strftime("%m-%d")}
    if penalty.lifted_at is not None:
        payload["lifted"] = timezone.localtime(penalty.lifted_at).strftime("%m-%d")
    return payload


def after_penalty(template: str, penalty: Penalty) -> None:
    """`penalty.imposed` or `penalty.lifted`, in the action's transaction."""
    _tell(template, penalty.member_id, penalty.bank_id, penalty, _penalty_payload(penalty))


def after_award_confirmed(award: Award) -> None:
    if award.member_id is None:
        return  # an org's award: its people learn it from the staff
    bonus = award.kind.bonus_minutes if award.bonus_transaction_id else 0
    payload = {"award_id": award.pk, "award": award.kind.name, "year": award.year, "bonus": bonus}
    template = "award.confirmed_bonus" if bonus else "award.confirmed"
    _tell(template, award.member_id, award.bank_id, award, payload)


def _tell(template: str, member_id: int, bank_id: int, about: Any, payload: dict[str, Any]) -> None:
    """A message problem never fails the penalty or the award: `notify_member` runs in a savepoint, and a
    failure undoes only the message (as for the orders' messages)."""
    try:
        notify_member(template, member_id, bank_id, about, payload)
    except Exception:
        logger.exception("queueing %s for member %s failed", template, member_id)


@transaction.atomic
def notify_member(template: str, member_id: int, bank_id: int, about: Any, payload: dict[str, Any]) -> int:
    """Queue the message for the member (a volunteer who has left is not written to). Answers how many."""
    member = Member.objects.select_related("user").filter(pk=member_id).exclude(status=MemberStatus.LEFT).first()
    if member is None:
        return 0
    title, body = TEMPLATES[template]
    with translation.override(settings.LANGUAGE_CODE):
        message = Message(template, str(title)[:100], (str(body) % payload)[:500], payload)
    created = queue_message([member_reader(member)], message, bank_id=bank_id)
    if created:
        record(
            None,
            "notification.queue",
            about,
            bank_id=bank_id,
            data={"template": template, "notifications": [n.pk for n in created]},
        )
    return len(created)
