"""Who may act where. Every endpoint and page asks these functions; none grows its own checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import Forbidden, NotAuthenticated, NotFound
from timebank.orgs.models import ADMIN_ROLES, MANAGING_ROLES, ROLE_RANK, Org, OrgKind, Role, Rules, User

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser


def require_login(user: User | AnonymousUser | None) -> User:
    if user is None or not user.is_authenticated:
        raise NotAuthenticated(_("请先登录。"))
    assert isinstance(user, User)
    return user


def staff_scope(user: User) -> Org | None:
    """The org whose subtree a staff login may act in (None for member logins)."""
    return user.org if user.role and user.org_id else None


def has_role(user: User, roles: frozenset[str] | set[str], org: Org) -> bool:
    """True when the user holds one of `roles` at `org` or above it."""
    if user.is_superuser:
        return True
    scope = staff_scope(user)
    return scope is not None and user.role in roles and scope.contains(org)


def caller_bank_id(user: User) -> int | None:
    scope = staff_scope(user)
    if scope is not None:
        return scope.head_office_id
    member = getattr(user, "member", None)
    return member.bank_id if member is not None else None


def _get_org(org_id: int) -> Org:
    org = Org.objects.filter(pk=org_id).first()
    if org is None:
        raise NotFound(_("找不到该机构。"), code="org_not_found")
    return org


def visible_orgs(user: User) -> QuerySet[Org]:
    if user.is_superuser:
        return Org.objects.all()
    scope = staff_scope(user)
    if scope is not None:
        return Org.objects.filter(path__startswith=scope.path)
    bank_id = caller_bank_id(user)
    # A member may see the public structure of their own bank (to choose where to be served).
    return Org.objects.filter(head_office_id=bank_id) if bank_id else Org.objects.none()


def access_org(user: User, org_id: int) -> Org:
    org = _get_org(org_id)
    if visible_orgs(user).filter(pk=org.pk).exists():
        return org
    raise Forbidden(_("这个机构不在您的管辖范围内。"), code="outside_subtree")


def access_org_as_admin(user: User, org_id: int) -> Org:
    """Create children and staff logins under `org`: admins whose subtree holds it."""
    org = _get_org(org_id)
    if has_role(user, ADMIN_ROLES, org):
        return org
    raise Forbidden(_("只有上级机构的管理员可以在这里新建机构或账号。"), code="not_admin")


def can_grant_role(user: User, role: str) -> bool:
    if user.is_superuser:
        return True
    return ROLE_RANK.get(Role(user.role), 0) >= ROLE_RANK.get(Role(role), 99) if user.role else False


def access_rules(user: User, org_id: int, *, write: bool) -> Rules:
    org = _get_org(org_id)
    if org.kind != OrgKind.HEAD_OFFICE:
        raise NotFound(_("规则只属于总行。"), code="not_head_office")
    if write:
        allowed = has_role(user, {Role.HEAD_OFFICE_ADMIN}, org)
    else:
        # "Its staff too": staff and admins anywhere in the bank; operators and assessors are not named.
        allowed = user.is_superuser or (
            staff_scope(user) is not None and user.role in MANAGING_ROLES and caller_bank_id(user) == org.pk
        )
    if not allowed:
        raise Forbidden(_("只有该总行的管理员可以修改规则。"), code="not_allowed")
    return Rules.objects.get(head_office=org)


def access_bank_admin(user: User, bank_id: int) -> Org:
    """Head-office admins of this bank (and the superuser)."""
    org = _get_org(bank_id)
    if org.kind == OrgKind.HEAD_OFFICE and has_role(user, {Role.HEAD_OFFICE_ADMIN}, org):
        return org
    raise Forbidden(_("只有总行管理员可以这样做。"), code="not_head_office_admin")


def subtree_q(prefix: str, org: Org) -> Q:
    """A filter for rows whose `<prefix>path` lies in `org`'s subtree."""
    return Q(**{f"{prefix}path__startswith": org.path})
