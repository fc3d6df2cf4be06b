"""`{% notices_panel %}`: the notices reaching the person on a home page, with read or unread state."""

from __future__ import annotations

from typing import Any

from django import template

from timebank.notices.access import reaching_notices
from timebank.notices.models import NoticeRead
from timebank.orgs.models import User

register = template.Library()

PANEL_SIZE = 5


@register.inclusion_tag("notices/_panel.html", takes_context=True)
def notices_panel(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if not isinstance(user, User) or not user.is_authenticated:
        return {"notices": [], "unread": 0}
    reaching = reaching_notices(user)
    read = NoticeRead.objects.filter(user=user).values("notice_id")
    notices = list(reaching.select_related("org").order_by("-pinned", "-published_at", "-pk")[:PANEL_SIZE])
    read_ids = set(NoticeRead.objects.filter(user=user, notice__in=notices).values_list("notice_id", flat=True))
    rows = [{"notice": n, "unread": n.pk not in read_ids} for n in notices]
    return {"rows": rows, "unread": reaching.exclude(pk__in=read).count()}
