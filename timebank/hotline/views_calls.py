"""The desk's calls: the list of logged calls (`GET /api/v1/hotline/calls`) and correcting one (`PATCH
/api/v1/hotline/calls/{id}`: a fuller summary, when it ended, the order or need it produced). The page asks
access_call(write=True), as the endpoint: the operator who logged the call, or staff of its subtree."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from timebank.hotline.access import access_call, visible_calls
from timebank.hotline.actions import do_update_call
from timebank.hotline.forms import CallEditForm
from timebank.hotline.models import CallLog
from timebank.lib.errors import ApiError, Forbidden, NotFound
from timebank.lib.masking import mask_phone
from timebank.needs.access import access_need
from timebank.ops.idempotency import form_once
from timebank.orders.access import access_order
from timebank.orgs.access import has_role
from timebank.orgs.models import MANAGING_ROLES, User
from timebank.orgs.scope import user_of
from timebank.web.views.common import add_form_error, explain, page

PAGE_SIZE = 30


def may_change(user: User, call: CallLog) -> bool:
    """access_call(write=True)'s rule, for the list's links: the operator who logged it, or staff of its subtree."""
    return call.operator_id == user.pk or has_role(user, MANAGING_ROLES, call.org)


@never_cache
@page("workbench")
def calls(request: HttpRequest) -> HttpResponse:
    """The calls of the caller's desk subtree, newest first; each that they may change links to its page."""
    user = user_of(request)
    qs = visible_calls(user).select_related("org", "member", "operator").order_by("-started_at", "-pk")
    rows = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    for call in rows:
        call.changeable = may_change(user, call)  # type: ignore[attr-defined]
        call.masked_phone = mask_phone(call.phone) if call.phone else ""  # type: ignore[attr-defined]
    return render(request, "hotline/calls.html", {"rows": rows})


def _changes(form: CallEditForm, call: CallLog) -> dict[str, Any]:
    """As a PATCH: only the fields the form changed (an unchanged summary or end time is not sent again)."""
    data = form.cleaned_data
    ended = data["ended_at"]
    shown = timezone.localtime(call.ended_at).replace(second=0, microsecond=0) if call.ended_at else None
    return {
        "summary": data["summary"] if data["summary"] != call.summary else None,
        "ended_at": ended if ended is not None and ended != shown else None,
    }


@never_cache
@page("workbench")
def call_edit(request: HttpRequest, call_id: int) -> HttpResponse:
    """Correct a logged call: the summary, its end, and the order or need it produced (by their numbers)."""
    user = user_of(request)
    call = access_call(user, call_id, write=True)
    initial = {
        "summary": call.summary,
        "ended_at": timezone.localtime(call.ended_at) if call.ended_at else None,
        "order_id": call.order_id,
        "need_id": call.need_id,
    }
    form = CallEditForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            data = form.cleaned_data
            try:
                # As the endpoint (_linked): an order the caller may dispatch, a need they may read.
                order = need = None
                if data["order_id"] is not None and data["order_id"] != call.order_id:
                    order = _linked(form, "order_id", lambda: access_order(user, data["order_id"], "dispatch")[0])
                if data["need_id"] is not None and data["need_id"] != call.need_id:
                    need = _linked(form, "need_id", lambda: access_need(user, data["need_id"]))
                if not form.errors:
                    with form_once(request, data["idempotency_key"], "hotline.update_call") as once:
                        if once.replay is None:
                            do_update_call(user, call, **_changes(form, call), order=order, need=need)
                            once.keep(str(call.pk))
            except ApiError as exc:
                add_form_error(form, exc)
            if not form.errors:
                messages.success(request, _("通话记录已更正。"))
                return redirect("web:hotline_calls")
    return render(request, "hotline/call_edit.html", {"form": form, "call": call}, status=status)


def _linked(form: CallEditForm, field: str, find: Any) -> Any:
    """The order or need a number names, or its refusal (403 outside the subtree, 404 unknown) next to it."""
    try:
        return find()
    except (Forbidden, NotFound) as exc:
        form.add_error(field, explain(exc))
        return None
