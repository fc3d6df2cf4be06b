"""What the pages share about the caller's place in the org tree: who may open the workbench, whose part of the
tree the caller manages and choosing an org in it (moved here from web/views/scope.py and web/views/common.py:
the page kit names no app)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import Forbidden, NotFound
from timebank.orgs.access import has_role, staff_scope
from timebank.orgs.models import MANAGING_ROLES, Org, OrgKind, Role, User

# Org pickers list at most this many; a head office with more picks a branch first and goes down from there.
MAX_ORG_CHOICES = 500
NBSP = "\u00a0"

# The orgs that keep a service menu (制单): sub-branches and service points.
MENU_KINDS = (OrgKind.SUB_BRANCH, OrgKind.OUTLET)


# The staff workbench: staff and admins manage, operators read members and dispatch orders.
WORKBENCH_ROLES = frozenset(MANAGING_ROLES | {Role.OPERATOR})


def user_of(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def is_workbench_user(user: User) -> bool:
    return user.is_superuser or (staff_scope(user) is not None and user.role in WORKBENCH_ROLES)


def can_manage(user: User) -> bool:
    return user.is_superuser or (staff_scope(user) is not None and user.role in MANAGING_ROLES)


def require_manager(user: User) -> Org | None:
    """Staff, branch and head-office admins (and the superuser). Returns their subtree's root (None: all)."""
    if not can_manage(user):
        raise Forbidden(_("这个页面只给社区工作人员和管理员使用。"), code="not_staff")
    return None if user.is_superuser else staff_scope(user)


def managed_orgs(user: User, kinds: tuple[str, ...] | None = None) -> QuerySet[Org]:
    scope = require_manager(user)
    qs = Org.objects.all() if scope is None else Org.objects.filter(path__startswith=scope.path)
    if kinds:
        qs = qs.filter(kind__in=kinds)
    return qs.order_by("path")


def org_label(org: Org) -> str:
    """Indented by depth so the tree reads in a plain <select>."""
    return f"{NBSP * 2 * max(org.depth, 0)}{org.name}"


def org_choices(user: User, kinds: tuple[str, ...] | None = None) -> list[tuple[int, str]]:
    return [(o.pk, org_label(o)) for o in managed_orgs(user, kinds)[:MAX_ORG_CHOICES]]


def get_org(org_id: int, kinds: tuple[str, ...] | None = None) -> Org:
    org = Org.objects.select_related("head_office").filter(pk=org_id).first()
    if org is None or (kinds and org.kind not in kinds):
        raise NotFound(_("找不到该机构。"), code="org_not_found")
    return org


def manage_org(user: User, org_id: int, kinds: tuple[str, ...] | None = None) -> Org:
    org = get_org(org_id, kinds)
    if not has_role(user, MANAGING_ROLES, org):
        raise Forbidden(_("这个机构不在您的管辖范围内。"), code="outside_subtree")
    return org


def home_bank_id(user: User) -> int | None:
    scope = staff_scope(user)
    return scope.head_office_id if scope is not None else None


def banks_for(user: User) -> list[Org]:
    """The head offices a page may be opened for: the caller's own, or every one for the superuser."""
    if user.is_superuser:
        return list(Org.objects.filter(kind=OrgKind.HEAD_OFFICE).order_by("name"))
    scope = staff_scope(user)
    return [scope.head_office] if scope is not None and scope.head_office is not None else []
