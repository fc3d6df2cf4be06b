"""The texts of notifications: short, plain, Chinese first, and nothing the reader may not see.

No phone numbers, addresses or confirmation codes: an SMS or a WeChat message may be read by someone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from timebank.orders.models import Order

TEMPLATES: dict[str, tuple[Promise, Promise]] = {
    "order.dispatched": (
        _("新的派单"),
        _("%(recipient)s的%(service)s服务（%(start)s）派给了您，请尽快在应用里接单。"),
    ),
    "order.accepted": (
        _("志愿者已接单"),
        _("%(recipient)s预约的%(service)s服务（%(start)s）已由志愿者%(volunteer)s接单。"),
    ),
    "order.reminder": (
        _("服务提醒"),
        _("%(recipient)s的%(service)s服务将在%(start)s开始，志愿者是%(volunteer)s。"),
    ),
    "order.completed": (
        _("服务已完成，请确认"),
        _("%(recipient)s的%(service)s服务已签退，请核对时长后在应用里确认。"),
    ),
    "order.confirmed": (
        _("服务已确认"),
        _("%(recipient)s的%(service)s服务已确认，%(credited)s 分钟已存入您的时间账户。"),
    ),
    "order.cancelled": (
        _("订单已取消"),
        _("%(recipient)s的%(service)s服务（%(start)s）已取消。"),
    ),
    "order.bought": (
        _("已为您安排专业服务"),
        _(
            "%(recipient)s的%(service)s服务（%(start)s）暂时没有志愿者能接，社区已用专项基金请专业机构上门，"
            "从时间账户支付 %(credited)s 分钟。"
        ),
    ),
    "order.urgent": (
        _("紧急订单"),
        _("%(recipient)s需要紧急服务：%(service)s（%(start)s），请马上处理。"),
    ),
}


@dataclass(frozen=True)
class Message:
    template: str
    title: str
    body: str
    payload: dict[str, Any]


def order_payload(order: Order) -> dict[str, Any]:
    """Template parameters: the same for every reader of this order's messages."""
    start = timezone.localtime(order.scheduled_start)
    return {
        "order_id": order.pk,
        "service": order.service_item.name,
        "start": start.strftime("%m-%d %H:%M"),
        "recipient": order.recipient.name,
        "volunteer": order.volunteer.name if order.volunteer else "",
        "credited": order.credited_minutes or 0,
    }


def render(template: str, payload: dict[str, Any]) -> Message:
    title, body = TEMPLATES[template]
    # Stored in the site's language, whatever language the triggering request used.
    with translation.override(settings.LANGUAGE_CODE):
        return Message(template, str(title)[:100], (str(body) % payload)[:500], payload)
