"""`{% star_block %}`: the volunteer's star level, for the volunteer home page."""

from __future__ import annotations

from typing import Any

from django import template

from timebank.evaluation.stars import star_level
from timebank.members.access import member_of
from timebank.orgs.models import User

register = template.Library()


@register.inclusion_tag("evaluation/_star_block.html", takes_context=True)
def star_block(context: dict[str, Any]) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    member = member_of(user) if isinstance(user, User) else None
    if member is None or not member.is_volunteer:
        return {"star": None}
    return {"star": star_level(member)}
