"""A person's own messages (`GET /api/v1/notifications`, marking one or all read: `POST .../{id}/read`,
`.../read-all`), for everyone logged in; and going on or off duty (`POST /api/v1/duty`) for staff and operators,
whom urgent orders reach while they are on duty. Each asks its endpoint's access function and calls its action."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from timebank.notify import actions
from timebank.notify.access import access_duty, access_notification, visible_notifications
from timebank.notify.forms import DutyForm
from timebank.notify.models import NotifyChannel, StaffDuty
from timebank.orgs.models import User
from timebank.orgs.scope import user_of
from timebank.web.views.common import is_htmx, page

PAGE_SIZE = 30


@never_cache
@page("login")
def inbox(request: HttpRequest) -> HttpResponse:
    """The caller's own in-app messages, newest first, the unread ones marked."""
    user = user_of(request)
    mine = visible_notifications(user).filter(channel=NotifyChannel.OUTBOX)
    rows = Paginator(mine.order_by("-created_at", "-pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    unread = mine.filter(read_at__isnull=True).count()
    return render(request, "notify/inbox.html", {"rows": rows, "unread": unread})


@require_POST
@page("login")
def read(request: HttpRequest, notification_id: int) -> HttpResponse:
    """Mark one message read (someone else's is not found). Again is fine: the first time stays."""
    user = user_of(request)
    n = actions.do_mark_read(user, access_notification(user, notification_id))
    if is_htmx(request):
        return render(request, "notify/_message.html", {"n": n})
    return redirect("web:inbox")


@require_POST
@page("login")
def read_all(request: HttpRequest) -> HttpResponse:
    """Mark all of the caller's in-app messages read."""
    # The audit row names the login itself, not the request's lazy wrapper of it.
    marked = actions.do_mark_all_read(User.objects.get(pk=user_of(request).pk))
    messages.success(request, _("已全部标为已读（%(n)s 条）。") % {"n": marked})
    return redirect("web:inbox")


@never_cache
@page("login")
def duty(request: HttpRequest) -> HttpResponse:
    """On duty or not: staff, admins and operators (access_duty: others 403). A repeat of the same button is
    harmless (the state is set, not toggled)."""
    user = access_duty(user_of(request))
    form = DutyForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            on = form.cleaned_data["on_duty"]
            actions.do_set_duty(user, on_duty=on)
            messages.success(
                request, _("您现在在值班，紧急订单会通知您。") if on else _("您已下班，紧急订单不再通知您。")
            )
            return redirect("web:duty")
        status = 422
    current = StaffDuty.objects.filter(user=user).first()
    return render(
        request,
        "notify/duty.html",
        {"form": form, "on_duty": bool(current and current.on_duty), "since": current.updated_at if current else None},
        status=status,
    )
