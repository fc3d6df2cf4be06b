"""Who a notice reaches, and who may publish or withdraw it. Pages and the API ask only these functions.

A notice reaches the publishing org's subtree:
- staff logins (every role) whose org lies in it see every audience;
- members whose home lies in it see `everyone` notices, and volunteers also `volunteers` notices.
Staff, branch and head-office admins also see (to manage) every notice published in their own subtree.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.lib import clock
from timebank.lib.errors import Forbidden, Invalid, NotFound
from timebank.members.access import member_of
from timebank.notices.models import Audience, Notice
from timebank.orgs.access import caller_bank_id, has_role, staff_scope
from timebank.orgs.models import MANAGING_ROLES, Org, OrgKind, User

PUBLISHING_KINDS = frozenset({OrgKind.HEAD_OFFICE, OrgKind.BRANCH, OrgKind.SUB_BRANCH})


def ancestor_paths(path: str) -> list[str]:
    """The orgs whose subtree holds this path: "/1/4/9/" → ["/1/", "/1/4/", "/1/4/9/"]."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def live_q() -> Q:
    today = clock.localdate()
    return Q(withdrawn_at__isnull=True) & (Q(expires_on__isnull=True) | Q(expires_on__gte=today))


def reach_q(user: User) -> Q:
    """The notices (live or not) addressed to this login by org and audience."""
    if user.is_superuser:
        return Q()
    q = Q(pk__in=[])
    scope = staff_scope(user)
    if scope is not None:
        q |= Q(org__path__in=ancestor_paths(scope.path))
    member = member_of(user)
    if member is not None:
        audiences = [Audience.EVERYONE] + ([Audience.VOLUNTEERS] if member.is_volunteer else [])
        q |= Q(org__path__in=ancestor_paths(member.home_org.path), audience__in=audiences)
    return q


def manage_q(user: User) -> Q:
    """Notices published in the caller's subtree, which staff and admins there may manage."""
    if user.is_superuser:
        return Q()
    scope = staff_scope(user)
    if scope is not None and user.role in MANAGING_ROLES:
        return Q(org__path__startswith=scope.path)
    return Q(pk__in=[])


def reaching_notices(user: User) -> QuerySet[Notice]:
    """What the caller's home page and feed show: live notices that reach them."""
    return Notice.objects.filter(reach_q(user) & live_q())


def managed_notices(user: User) -> QuerySet[Notice]:
    return Notice.objects.filter(manage_q(user))


def visible_notices(user: User) -> QuerySet[Notice]:
    """Every notice the caller may open: the live ones reaching them, and all those they manage."""
    return Notice.objects.filter((reach_q(user) & live_q()) | manage_q(user))


def can_manage_notice(user: User, notice: Notice) -> bool:
    return has_role(user, MANAGING_ROLES, notice.org)


def access_notice(user: User, notice_id: int) -> Notice:
    notice = Notice.objects.select_related("org", "bank").filter(pk=notice_id).first()
    if notice is None or (not user.is_superuser and notice.bank_id != caller_bank_id(user)):
        raise NotFound(_("找不到这条通知。"), code="notice_not_found")
    if visible_notices(user).filter(pk=notice.pk).exists():
        return notice
    raise Forbidden(_("这条通知不是发给您的。"), code="outside_subtree")


def access_notice_to_manage(user: User, notice_id: int) -> Notice:
    notice = access_notice(user, notice_id)
    if can_manage_notice(user, notice):
        return notice
    raise Forbidden(_("只有发布机构及上级的工作人员可以撤回这条通知。"), code="not_allowed")


def publishing_orgs(user: User) -> QuerySet[Org]:
    """Where the caller may publish: head offices, branches and sub-branches in their subtree."""
    if user.is_superuser:
        return Org.objects.filter(kind__in=PUBLISHING_KINDS)
    scope = staff_scope(user)
    if scope is None or user.role not in MANAGING_ROLES:
        return Org.objects.none()
    return Org.objects.filter(path__startswith=scope.path, kind__in=PUBLISHING_KINDS)


def access_publishing_org(user: User, org_id: int) -> Org:
    org = Org.objects.filter(pk=org_id).first()
    if org is None or (not user.is_superuser and org.head_office_id != caller_bank_id(user)):
        raise NotFound(_("找不到该机构。"), code="org_not_found")
    if not has_role(user, MANAGING_ROLES, org):
        raise Forbidden(_("只能向本机构及下级发布通知。"), code="outside_subtree")
    if org.kind not in PUBLISHING_KINDS:
        raise Invalid(_("通知由总行、分行或支行发布，网点不能单独发布。"), fields={"org_id": "wrong_kind"})
    return org
