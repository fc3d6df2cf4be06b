"""Who may see a notification (its owner only) and who may go on duty (staff and operators)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import Forbidden, NotFound
from timebank.members.access import member_of
from timebank.notify.models import Notification
from timebank.orgs.models import MANAGING_ROLES, Role, User

DUTY_ROLES = MANAGING_ROLES | {Role.OPERATOR}


def visible_notifications(user: User) -> QuerySet[Notification]:
    """A person's own notifications: addressed to their login or to their member record. Nobody else's,
    not even for the superuser: they may hold a family's private news."""
    member = member_of(user)
    mine = Q(user=user)
    if member is not None:
        mine |= Q(member=member)
    return Notification.objects.filter(mine)


def access_notification(user: User, notification_id: int) -> Notification:
    # Someone else's notification is "not found": its existence is nobody else's business.
    n = visible_notifications(user).filter(pk=notification_id).first()
    if n is None:
        raise NotFound(_("找不到这条通知。"), code="notification_not_found")
    return n


def can_be_on_duty(user: User) -> bool:
    return bool(user.is_active and user.org_id and user.role in DUTY_ROLES)


def access_duty(user: User) -> User:
    if not can_be_on_duty(user):
        raise Forbidden(_("只有工作人员和热线坐席可以设置值班。"), code="not_staff")
    return user
