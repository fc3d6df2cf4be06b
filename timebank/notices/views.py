"""通知公告 pages: the notices reaching me, one notice, and (for staff and admins) publish and withdraw."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.lib.errors import ApiError
from timebank.notices.access import (
    access_notice,
    access_notice_to_manage,
    access_publishing_org,
    can_manage_notice,
    managed_notices,
    publishing_orgs,
    reaching_notices,
)
from timebank.notices.actions import do_mark_read, do_publish_notice, do_withdraw_notice
from timebank.notices.forms import NoticeForm
from timebank.notices.models import NoticeRead
from timebank.orgs.scope import user_of
from timebank.web.views.common import add_form_error, page

MANAGED_SHOWN = 100


@page("login")
def notice_list(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    notices = list(reaching_notices(user).select_related("org").order_by("-pinned", "-published_at", "-pk")[:200])
    read = set(NoticeRead.objects.filter(user=user, notice__in=notices).values_list("notice_id", flat=True))
    orgs = publishing_orgs(user)
    managed = (
        list(managed_notices(user).select_related("org").order_by("-published_at", "-pk")[:MANAGED_SHOWN])
        if orgs.exists()
        else []
    )
    context = {"notices": notices, "read": read, "managed": managed, "can_publish": bool(managed) or orgs.exists()}
    return render(request, "notices/list.html", context)


@page("login")
def notice_detail(request: HttpRequest, notice_id: int) -> HttpResponse:
    """Opening a notice marks it read for the caller, when it is addressed to them."""
    user = user_of(request)
    notice = access_notice(user, notice_id)
    reaches = reaching_notices(user).filter(pk=notice.pk).exists()
    if reaches:
        do_mark_read(user, notice)
    context = {"notice": notice, "can_withdraw": notice.withdrawn_at is None and can_manage_notice(user, notice)}
    return render(request, "notices/detail.html", context)


@page("workbench")
def notice_new(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    orgs = publishing_orgs(user)
    if not orgs.exists():
        return render(request, "notices/refused.html", status=403)
    form = NoticeForm(request.POST if request.method == "POST" else None, orgs=orgs)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            notice = do_publish_notice(
                user,
                org=access_publishing_org(user, data["org"].pk),
                title=data["title"],
                body=data["body"],
                audience=data["audience"],
                pinned=data["pinned"],
                expires_on=data["expires_on"],
            )
        except ApiError as exc:
            add_form_error(form, exc, {"org_id": "org"})
        else:
            messages.success(request, _("通知已发布：%(title)s。") % {"title": notice.title})
            return redirect("notices:detail", notice_id=notice.pk)
    return render(request, "notices/new.html", {"form": form}, status=422 if form.errors else 200)


@require_POST
@page("workbench")
def notice_withdraw(request: HttpRequest, notice_id: int) -> HttpResponse:
    user = user_of(request)
    notice = access_notice_to_manage(user, notice_id)
    try:
        do_withdraw_notice(user, notice)
    except ApiError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("通知已撤回，大家不会再看到它。"))
    return redirect("notices:list")
