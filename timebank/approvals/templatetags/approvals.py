"""`{% pending_approvals as n %}`: how many credits wait for the caller's approval (None: not theirs to see)."""

from __future__ import annotations

from typing import Any

from django import template

from timebank.approvals.models import ApprovalState
from timebank.orgs.access import staff_scope
from timebank.orgs.models import MANAGING_ROLES, User

register = template.Library()


@register.simple_tag(takes_context=True)
def pending_approvals(context: dict[str, Any]) -> int | None:
    request = context.get("request")
    user = getattr(request, "user", None)
    if not isinstance(user, User) or not (
        user.is_superuser or (staff_scope(user) is not None and user.role in MANAGING_ROLES)
    ):
        return None
    from timebank.approvals.access import visible_approvals

    return visible_approvals(user).filter(state=ApprovalState.PENDING).count()
