"""Who may see and act on the recipient and needs registers, and on census imports.

Staff of the recipient's home subtree manage needs; hotline operators of the subtree read them and open new
ones. Members (and assessors) do not see the registers: notes on a need are the staff's own observations.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import Forbidden, Invalid, NotFound
from timebank.members.models import Member
from timebank.needs.models import CensusImport, Need
from timebank.orgs.access import has_role, staff_scope
from timebank.orgs.models import MANAGING_ROLES, Org, Role, User

READ_ROLES = MANAGING_ROLES | {Role.OPERATOR}


def register_scope(user: User) -> Org | None:
    """The subtree whose registers the caller reads (None: everything, for the superuser)."""
    if user.is_superuser:
        return None
    scope = staff_scope(user)
    if scope is None or user.role not in READ_ROLES:
        raise Forbidden(_("只有工作人员和热线坐席可以查看服务对象和需求清单。"), code="not_allowed")
    return scope


def visible_recipients(user: User) -> QuerySet[Member]:
    scope = register_scope(user)
    qs = Member.objects.filter(is_recipient=True)
    return qs if scope is None else qs.filter(home_org__path__startswith=scope.path)


def visible_needs(user: User) -> QuerySet[Need]:
    scope = register_scope(user)
    qs = Need.objects.all()
    return qs if scope is None else qs.filter(recipient__home_org__path__startswith=scope.path)


def access_need(user: User, need_id: int, *, manage: bool = False) -> Need:
    need = Need.objects.select_related("recipient", "recipient__home_org").filter(pk=need_id).first()
    if need is None:
        raise NotFound(_("找不到该需求。"), code="need_not_found")
    home = need.recipient.home_org
    if has_role(user, MANAGING_ROLES, home):
        return need
    if has_role(user, {Role.OPERATOR}, home):
        if not manage:
            return need
        raise Forbidden(_("热线坐席只能查看和登记需求，跟进和关闭由社区工作人员办理。"), code="not_allowed")
    raise Forbidden(_("这项需求不在您的管辖范围内。"), code="outside_subtree")


def access_recipient_for_need(user: User, member_id: int) -> Member:
    """Open a need for a member: staff and operators of the member's home subtree."""
    member = Member.objects.select_related("home_org").filter(pk=member_id).first()
    if member is None:
        raise NotFound(_("找不到该会员。"), code="member_not_found")
    if not has_role(user, READ_ROLES, member.home_org):
        raise Forbidden(_("这位会员不在您的管辖范围内。"), code="outside_subtree")
    return member


def census_scope(user: User, org_id: int | None) -> Org:
    """The org a census file is imported into: staff of that org's subtree (by default their own org)."""
    scope = staff_scope(user)
    if not user.is_superuser and (scope is None or user.role not in MANAGING_ROLES):
        raise Forbidden(_("只有本机构及上级的工作人员可以导入人口普查数据。"), code="not_allowed")
    if org_id is None:
        if scope is None:
            raise Invalid(_("请指定导入到哪个机构。"), fields={"org_id": "required"})
        org_id = scope.pk
    org = Org.objects.filter(pk=org_id).first()
    if org is None:
        raise NotFound(_("找不到该机构。"), code="org_not_found")
    if not has_role(user, MANAGING_ROLES, org):
        raise Forbidden(_("只有本机构及上级的工作人员可以导入人口普查数据。"), code="not_allowed")
    return org


def census_list_scope(user: User) -> Org | None:
    """Census imports carry personal data of people not yet registered: staff only (None: the superuser)."""
    if user.is_superuser:
        return None
    scope = staff_scope(user)
    if scope is None or user.role not in MANAGING_ROLES:
        raise Forbidden(_("只有工作人员可以查看人口普查导入。"), code="not_allowed")
    return scope


def access_census_import(user: User, import_id: int) -> CensusImport:
    imp = CensusImport.objects.select_related("org").filter(pk=import_id).first()
    if imp is None:
        raise NotFound(_("找不到该导入记录。"), code="import_not_found")
    if not has_role(user, MANAGING_ROLES, imp.org):
        raise Forbidden(_("这次导入不在您的管辖范围内。"), code="outside_subtree")
    return imp
