"""What the management pages share: whose part of the org tree the caller manages, choosing an org in it, and
guarding forms whose action takes no idempotency key against a double submit."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import Forbidden, NotFound
from timebank.lib.masking import mask_name
from timebank.members.access import READ_ROLES
from timebank.members.models import Member
from timebank.orgs.access import has_role, staff_scope
from timebank.orgs.models import MANAGING_ROLES, Org, OrgKind, User
from timebank.web.views.common import can_manage

# Org pickers list at most this many; a head office with more picks a branch first and goes down from there.
MAX_ORG_CHOICES = 500
ONCE_SECONDS = 3600
NBSP = "\u00a0"


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


class NameShield:
    """A member's name in full for staff who may read their home subtree, otherwise masked (王**).
    Decided once per org: lists and reports read many members of few orgs."""

    def __init__(self, user: User) -> None:
        self.user = user
        self._orgs: dict[int, bool] = {}

    def allowed(self, org_id: int) -> bool:
        if org_id not in self._orgs:
            org = Org.objects.filter(pk=org_id).first()
            self._orgs[org_id] = org is not None and has_role(self.user, READ_ROLES, org)
        return self._orgs[org_id]

    def name(self, name: str, org_id: int) -> str:
        return name if self.allowed(org_id) else mask_name(name)

    def member(self, member: Member) -> str:
        return self.name(member.name, member.home_org_id)


def first_submit(request: HttpRequest, key: Any) -> bool:
    """A double submit of a form whose action takes no idempotency key (restock, new goods) is done once:
    the form's key is claimed before acting. Best effort: the claim lives in the cache."""
    if not isinstance(key, str) or not key:
        return True
    return bool(cache.add(f"web-once:{request.user.pk}:{key}", 1, ONCE_SECONDS))


def release_submit(request: HttpRequest, key: Any) -> None:
    """The action refused: the same form may be sent again once corrected."""
    if isinstance(key, str) and key:
        cache.delete(f"web-once:{request.user.pk}:{key}")
