"""`{% pending_approvals as n %}`: how many credits wait for the caller's approval (None: not theirs to see)."""

from __future__ import annotations

from typing import Any

from django import template

from timebank.approvals.models import ApprovalState
from timebank.lib.errors import Forbidden
from timebank.orgs.models import User

register = template.Library()


@register.simple_tag(takes_context=True)
def pending_approvals(context: dict[str, Any]) -> int | None:
    request = context.get("request")
    user = getattr(request, "user", None)
    if not isinstance(user, User):
        return None
    from timebank.approvals.access import visible_approvals

    try:
        return visible_approvals(user).filter(state=ApprovalState.PENDING).count()
    except Forbidden:  # who may see approvals is decided there, once
        return None
