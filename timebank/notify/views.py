"""The staff's page of what was sent to a member (`GET /api/v1/members/{id}/messages`): an elder without a
smartphone has their accepted order's code and their login code read out to them from here."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from timebank.notify.access import access_member_messages
from timebank.notify.schemas import MemberMessageOut
from timebank.notify.sms import member_messages
from timebank.orgs.scope import user_of
from timebank.web.views.common import page

PAGE_SIZE = 50


@never_cache
@page("workbench")
def staff_member_messages(request: HttpRequest, member_id: int) -> HttpResponse:
    """Staff and operators of the member's home subtree (403 page for others), newest first."""
    member = access_member_messages(user_of(request), member_id)
    rows = list(member_messages(member).select_related("member", "user").order_by("-pk")[:PAGE_SIZE])
    items = [
        {"n": n, "to_masked": MemberMessageOut.resolve_to_masked(n), "channel": n.get_channel_display()} for n in rows
    ]
    return render(request, "notify/staff/member_messages.html", {"m": member, "items": items})
