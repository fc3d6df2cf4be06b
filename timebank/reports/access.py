"""Who may read an org's figures (stats, risk, dashboards) and change the risk thresholds."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import Forbidden, NotFound
from timebank.orgs.access import caller_bank_id, has_role
from timebank.orgs.models import FIGURE_READERS, Org, OrgKind, Role, User


def access_stats_org(user: User, org_id: int | None) -> Org:
    """The org whose figures are asked for (default: the caller's own); staff, admins and supervisors of its
    subtree (supervisors read: the figures name nobody, and the pages mask the few names they show)."""
    if org_id is None:
        org_id = user.org_id if user.org_id else caller_bank_id(user)
    org = Org.objects.select_related("head_office").filter(pk=org_id).first() if org_id else None
    if org is None:
        raise NotFound(_("找不到该机构。"), code="org_not_found")
    if not has_role(user, FIGURE_READERS, org):
        raise Forbidden(_("只有本机构及上级的工作人员可以查看统计。"), code="outside_subtree")
    return org


def may_edit_risk_rules(user: User, org: Org) -> bool:
    return org.kind == OrgKind.HEAD_OFFICE and has_role(user, {Role.HEAD_OFFICE_ADMIN}, org)


def access_risk_rules(user: User, org: Org) -> Org:
    """Change the thresholds: head-office admins of that bank (and the superuser)."""
    if not may_edit_risk_rules(user, org):
        raise Forbidden(_("只有总行管理员可以修改风险阈值。"), code="not_head_office_admin")
    return org


def require_figure_reader(user: User) -> Org | None:
    """The dashboards' pages: staff, admins and supervisors (and the superuser). Returns their subtree's root."""
    if user.is_superuser:
        return None
    if user.role in FIGURE_READERS and user.org_id is not None:
        return user.org
    raise Forbidden(_("这个页面只给社区工作人员、管理员和监督单位使用。"), code="not_staff")
