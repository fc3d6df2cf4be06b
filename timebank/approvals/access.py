"""Who sees and decides approvals: staff and admins whose subtree holds the credited member's home."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.approvals.models import Approval
from timebank.audit.models import AuditEntry
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


# Audit actions through which one login takes control of another: it knows the password it set (create,
# reset) or it let the login act again or act elsewhere (staff.update that leaves it active).
CONTROL_ACTIONS = ("staff.create", "login.password_reset", "staff.update")


def _is_control(action: str, data: dict[str, Any]) -> bool:
    if action != "staff.update":
        return True
    before, after = data.get("before") or {}, data.get("after") or {}
    # Disabling alone gives no use of the login; re-enabling, moving or a new role does.
    return bool(after.get("is_active")) and before != after


def _controllers(login_ids: set[int], actions: tuple[str, ...]) -> set[int]:
    """Logins that did one of `actions` to one of `login_ids` (read from the audit trail of every bank)."""
    rows = AuditEntry.objects.filter(
        object_type="user", object_id__in=[str(i) for i in login_ids], action__in=actions, actor__isnull=False
    ).values_list("actor_id", "action", "data")
    return {actor_id for actor_id, action, data in rows if _is_control(action, data)}


def controllers_of(login_id: int) -> set[int]:
    """Every login that controls this one: directly, or by controlling a login that did (a chain of logins
    prepared in advance)."""
    found: set[int] = set()
    frontier = {login_id}
    while frontier:
        frontier = _controllers(frontier, CONTROL_ACTIONS) - found - {login_id}
        found |= frontier
    return found


def check_decider(actor: User, approval: Approval) -> None:
    """The second pair of eyes: a different person from the maker, who reaches the member where they live now.

    Login ids alone do not tell people apart: a maker who created the deciding login, reset its password,
    re-enabled, moved or re-roled it (directly or through logins they control) holds it; so does a decider
    who reset, re-enabled, moved or re-roled the maker's login. A login created after the request is refused
    too, whoever made it. Called under the approval's lock by approve and reject."""
    if approval.maker_id is not None and approval.maker_id == actor.pk:
        raise Forbidden(_("不能审核自己提交的记录，请另一位工作人员审核。"), code="own_request")
    member = getattr(actor, "member", None)
    if member is not None and member.pk == approval.member_id:
        raise Forbidden(_("不能审核记给自己的时间。"), code="own_credit")
    # The member may have moved home while the credit waited: the decider must reach both homes.
    home = approval.member.home_org
    if not (has_role(actor, MANAGING_ROLES, approval.org) and has_role(actor, MANAGING_ROLES, home)):
        raise Forbidden(_("这条记录不在您的管辖范围内。"), code="outside_subtree")
    not_independent = Forbidden(
        _("审核人和提交人必须不是同一个人：提交人建立、重置或启用过这个账号，或者这个账号是提交之后才建立的。"),
        code="approver_not_independent",
    )
    # The audit entry's time, not date_joined: both follow the same clock (the demo's replays the past).
    made_later = AuditEntry.objects.filter(
        object_type="user", object_id=str(actor.pk), action="staff.create", created_at__gt=approval.created_at
    )
    if made_later.exists():
        raise not_independent
    if approval.maker_id is None:
        return
    if approval.maker_id in controllers_of(actor.pk):
        raise not_independent
    # The other way round, without creation: an admin may approve what the staff they took on ask for.
    if actor.pk in _controllers({approval.maker_id}, ("login.password_reset", "staff.update")):
        raise not_independent
