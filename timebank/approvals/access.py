"""Who sees and decides approvals: staff and admins whose subtree holds the credited member's home."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.approvals.models import Approval
from timebank.lib.errors import Forbidden, NotFound
from timebank.orgs.access import has_role, staff_scope
from timebank.orgs.models import MANAGING_ROLES, User


def visible_approvals(user: User) -> QuerySet[Approval]:
    if user.is_superuser:
        return Approval.objects.all()
    scope = staff_scope(user)
    if scope is None or user.role not in MANAGING_ROLES:
        raise Forbidden(_("只有工作人员和管理员可以查看待审核记录。"), code="not_staff")
    return Approval.objects.filter(org__path__startswith=scope.path)


def access_approval(user: User, approval_id: int) -> Approval:
    """An approval in the caller's subtree (staff, branch or head-office admin at its org or above)."""
    approval = Approval.objects.select_related("org", "member").filter(pk=approval_id).first()
    if approval is None:
        raise NotFound(_("找不到这条待审核记录。"), code="approval_not_found")
    if has_role(user, MANAGING_ROLES, approval.org):
        return approval
    raise Forbidden(_("这条记录不在您的管辖范围内。"), code="outside_subtree")
