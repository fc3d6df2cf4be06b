"""The hotline's two call lists: 满意度回访 (a call back after a finished service) and 定期巡访 (regular welfare
checks on those who live alone). Split from the console (timebank/hotline/views.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.hotline.access import (
    access_member_at_desk,
    desk_scope,
)
from timebank.hotline.actions import (
    NeedSpec,
    do_record_return_visit,
    do_record_welfare_check,
)
from timebank.hotline.forms import ReturnVisitForm, WelfareCheckForm
from timebank.hotline.models import ReturnVisitOutcome
from timebank.hotline.queries import due_return_visits, due_welfare_checks, return_visit_days
from timebank.hotline.views import QUEUE_PAGE, category_words
from timebank.lib.errors import ApiError
from timebank.lib.masking import mask_phone
from timebank.members.models import Member, RecipientCategory
from timebank.ops.idempotency import form_once
from timebank.orders.access import access_order
from timebank.orders.models import Order
from timebank.orgs.scope import user_of
from timebank.web.views.common import add_form_error, explain, is_htmx, page


def _visit_row(
    order: Order, after: dict[int, int], form: ReturnVisitForm | None = None, **extra: Any
) -> dict[str, Any]:
    assert order.confirmed_at is not None
    return {
        "order": order,
        # A queue is a list: the phone masked; the full number is on the caller screen, where views are audited.
        "phone": mask_phone(order.recipient.phone),
        "due_since": order.confirmed_at + dt.timedelta(days=after.get(order.bank_id, 0)),
        "form": form or ReturnVisitForm(prefix=f"rv{order.pk}"),
        **extra,
    }


@page("workbench")
def return_visits(request: HttpRequest) -> HttpResponse:
    """Orders confirmed a few days ago whose recipient has not been asked yet, the longest waiting first."""
    user = user_of(request)
    after = return_visit_days(user)
    rows = Paginator(due_return_visits(user, after).order_by("confirmed_at", "pk"), QUEUE_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "hotline/return_visits.html",
        {"rows": rows, "visits": [_visit_row(o, after) for o in rows], "search": ""},
    )


@require_POST
@page("workbench")
def record_return_visit(request: HttpRequest, order_id: int) -> HttpResponse:
    user = user_of(request)
    order, _roles = access_order(user, order_id, "dispatch")
    form = ReturnVisitForm(request.POST, prefix=f"rv{order.pk}")
    done = ""
    error = ""
    if form.is_valid():
        data = form.cleaned_data
        try:
            with form_once(request, data["idempotency_key"], "hotline.return_visit") as once:
                if once.replay is not None:
                    done = str(_("这次回访刚才已经记录了，没有重复记录。"))
                else:
                    visit = do_record_return_visit(
                        user, order=order, outcome=data["outcome"], satisfaction=data["satisfaction"], note=data["note"]
                    )
                    once.keep(str(visit.pk))
        except ApiError as exc:
            if exc.fields and set(exc.fields) & set(form.fields):
                add_form_error(form, exc)
            else:
                error = explain(exc)
        else:
            if once.replay is None:
                done = str(
                    _("已记录：%(outcome)s。") % {"outcome": ReturnVisitOutcome(visit.outcome).label}
                    if visit.satisfaction is None
                    else _("已记录：%(outcome)s，满意度 %(n)s 分。")
                    % {"outcome": ReturnVisitOutcome(visit.outcome).label, "n": visit.satisfaction}
                )
    invalid = bool(form.errors) or bool(error)
    if not is_htmx(request) and not invalid:
        messages.success(request, done)
        return redirect("web:hotline_return_visits")
    after = return_visit_days(user)
    fresh = access_order(user, order_id, "dispatch")[0]
    if fresh.confirmed_at is None:  # pragma: no cover - only confirmed orders reach the list
        return redirect("web:hotline_return_visits")
    row = _visit_row(fresh, after, form, done=done, error=error)
    if is_htmx(request):
        return render(request, "hotline/_visit_row.html", {"v": row}, status=422 if invalid else 200)
    rows = Paginator(due_return_visits(user, after).order_by("confirmed_at", "pk"), QUEUE_PAGE).get_page(1)
    visits = [row if o.pk == fresh.pk else _visit_row(o, after) for o in rows]
    if all(v["order"].pk != fresh.pk for v in visits):
        visits.insert(0, row)
    return render(request, "hotline/return_visits.html", {"rows": rows, "visits": visits, "search": ""}, status=422)


def _category_filter(request: HttpRequest) -> str:
    raw = request.GET.get("category", "")
    return raw if raw in RecipientCategory.values else ""


def _check_row(due: Any, member: Member, form: WelfareCheckForm | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "due": due,
        "member": member,
        "phone": mask_phone(member.phone),  # masked in the queue; in full on the caller screen, audited
        "categories": category_words(member),
        "form": form or WelfareCheckForm(prefix=f"wc{member.pk}"),
        **extra,
    }


def _welfare_page(
    request: HttpRequest, *, replace: dict[int, dict[str, Any]] | None = None, status: int = 200
) -> HttpResponse:
    user = user_of(request)
    category = _category_filter(request)
    due = due_welfare_checks(user, category=category or None)
    rows = Paginator(due, QUEUE_PAGE).get_page(request.GET.get("page"))
    members = Member.objects.select_related("home_org").in_bulk([d.member_id for d in rows])
    checks = [_check_row(d, members[d.member_id]) for d in rows]
    for member_id, row in (replace or {}).items():
        checks = [row if c["member"].pk == member_id else c for c in checks]
        if all(c["member"].pk != member_id for c in checks):
            checks.insert(0, row)
    return render(
        request,
        "hotline/welfare_checks.html",
        {
            "rows": rows,
            "checks": checks,
            "category": category,
            "query": urlencode({"category": category}) if category else "",
            "categories": [(c, label) for c, label in RecipientCategory.choices],
            "search": "",
        },
        status=status,
    )


@page("workbench")
def welfare_checks(request: HttpRequest) -> HttpResponse:
    """Recipients due a call or visit: never checked first, then the longest waiting."""
    desk_scope(user_of(request))
    return _welfare_page(request)


@require_POST
@page("workbench")
def record_welfare_check(request: HttpRequest, member_id: int) -> HttpResponse:
    """Record a check; a changed health opens a need (found by phone, visit or video) in the same action."""
    user = user_of(request)
    member = access_member_at_desk(user, member_id)
    form = WelfareCheckForm(request.POST, prefix=f"wc{member.pk}")
    done = ""
    error = ""
    if form.is_valid():
        data = form.cleaned_data
        spec = NeedSpec(level=data["need_level"], notes=data["note"]) if data["need_level"] else None
        try:
            with form_once(request, data["idempotency_key"], "hotline.welfare_check") as once:
                if once.replay is not None:
                    done = str(_("这次巡访刚才已经记录了，没有重复记录。"))
                else:
                    check = do_record_welfare_check(
                        user,
                        member=member,
                        method=data["method"],
                        found_ok=data["found"] == "yes",
                        health_changed=data["health_changed"],
                        note=data["note"],
                        need=spec,
                    )
                    once.keep(str(check.pk))
        except ApiError as exc:
            error = explain(exc)
        else:
            if once.replay is None:
                done = str(
                    _("已记录巡访，并登记了需求 #%(id)s，社区会跟进。") % {"id": check.need_id}
                    if check.need_id
                    else _("已记录巡访。")
                )
    invalid = bool(form.errors) or bool(error)
    if not is_htmx(request) and not invalid:
        messages.success(request, done)
        return HttpResponseRedirect(reverse("web:hotline_welfare_checks"))
    row = _check_row(None, member, form, done=done, error=error)
    if is_htmx(request):
        return render(request, "hotline/_check_row.html", {"c": row}, status=422 if invalid else 200)
    return _welfare_page(request, replace={member.pk: row}, status=422)
