"""Who may use the 12349 desk: hotline operators and staff, each within their subtree."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.hotline.models import CallLog, WelfareCheck
from timebank.lib.errors import Forbidden, NotFound
from timebank.members.models import Member
from timebank.orgs.access import has_role, staff_scope
from timebank.orgs.models import MANAGING_ROLES, Org, OrgKind, Role, User

DESK_ROLES = MANAGING_ROLES | {Role.OPERATOR}
# Where members live: a community (sub-branch) or its service point, as on the staff's registration page.
HOME_KINDS = (OrgKind.SUB_BRANCH, OrgKind.OUTLET)


def desk_scope(user: User) -> Org | None:
    """The subtree the caller works in at the desk (None: everywhere, for the superuser)."""
    if user.is_superuser:
        return None
    scope = staff_scope(user)
    if scope is None or user.role not in DESK_ROLES:
        raise Forbidden(_("只有热线坐席和工作人员可以使用热线功能。"), code="not_allowed")
    return scope


def visible_calls(user: User) -> QuerySet[CallLog]:
    scope = desk_scope(user)
    qs = CallLog.objects.all()
    return qs if scope is None else qs.filter(org__path__startswith=scope.path)


def visible_welfare_checks(user: User) -> QuerySet[WelfareCheck]:
    scope = desk_scope(user)
    qs = WelfareCheck.objects.all()
    return qs if scope is None else qs.filter(member__home_org__path__startswith=scope.path)


def access_member_at_desk(user: User, member_id: int) -> Member:
    member = Member.objects.select_related("home_org").filter(pk=member_id).first()
    if member is None:
        raise NotFound(_("找不到该会员。"), code="member_not_found")
    if not has_role(user, DESK_ROLES, member.home_org):
        raise Forbidden(_("这位会员不在您的管辖范围内。"), code="outside_subtree")
    return member


def home_orgs_at_desk(user: User) -> QuerySet[Org]:
    """The communities an unknown caller may be registered in from the desk: those of the desk's subtree."""
    scope = desk_scope(user)
    qs = Org.objects.filter(kind__in=HOME_KINDS)
    return (qs if scope is None else qs.filter(path__startswith=scope.path)).order_by("path")


def access_home_at_desk(user: User, org_id: int) -> tuple[Org, bool]:
    """Register an unknown caller in this community from the desk, and whether the member is active at once.
    Staff and admins of the community's subtree register an active member, as `POST /api/v1/members`. Operators
    of the subtree, who only read members there, take the registration down as `pending`, as a self-registration
    (`POST /api/v1/register`) is: the community's staff approve it (and see a duplicate ID number when they do)."""
    org = Org.objects.filter(pk=org_id, kind__in=HOME_KINDS).first()
    if org is None:
        raise NotFound(_("找不到该机构。"), code="org_not_found")
    if has_role(user, MANAGING_ROLES, org):
        return org, True
    if has_role(user, {Role.OPERATOR}, org):
        return org, False
    raise Forbidden(_("这个机构不在您的管辖范围内。"), code="outside_subtree")


def access_call(user: User, call_id: int, *, write: bool = False) -> CallLog:
    """Read: the desk of the call's subtree. Change: the operator who logged it, or staff of the subtree."""
    call = CallLog.objects.select_related("org").filter(pk=call_id).first()
    if call is None:
        raise NotFound(_("找不到该通话记录。"), code="call_not_found")
    if not has_role(user, DESK_ROLES, call.org):
        raise Forbidden(_("这条通话记录不在您的管辖范围内。"), code="outside_subtree")
    if write and not (call.operator_id == user.pk or has_role(user, MANAGING_ROLES, call.org)):
        raise Forbidden(_("只有接听的坐席或社区工作人员可以修改通话记录。"), code="not_allowed")
    return call


def call_org(user: User, member: Member | None) -> Org | None:
    """Where a call belongs: the caller's home, else the operator's own org."""
    if member is not None:
        return member.home_org
    return staff_scope(user)
