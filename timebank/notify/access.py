"""Who may see a notification (its owner only) and who may go on duty (staff and operators)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import Forbidden, NotFound
from timebank.members.access import READ_ROLES, access_member, member_of
from timebank.members.models import Member
from timebank.notify.models import Notification
from timebank.orgs.access import has_role
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


def access_member_messages(user: User, member_id: int) -> Member:
    """What was sent to a member (their codes included): staff and operators of the member's home subtree, who
    read it out to an elder without a smartphone. Not the member or their relatives (their own inbox is
    `GET /notifications`), nor a volunteer."""
    member = access_member(user, member_id)  # 404 member_not_found, 403 outside_subtree as the members API
    if not has_role(user, READ_ROLES, member.home_org):
        raise Forbidden(_("只有会员所在社区及上级的工作人员和热线坐席可以查看发给会员的消息。"), code="outside_subtree")
    return member
