"""The fund book (资金账目) for staff of an org's subtree: record income and expenses in yuan, read the totals by
source and kind, and correct a mistake with a reversing entry. The public disclosure is at /disclosure/."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.funds.access import access_fund_entry, access_fund_org, visible_fund_entries
from timebank.funds.actions import EntryInput, do_record_entry, do_reverse_entry
from timebank.funds.disclosure import Period, fund_report
from timebank.funds.forms import FundEntryForm, ReverseForm
from timebank.funds.models import FundEntry
from timebank.lib import clock
from timebank.lib.errors import ApiError
from timebank.orgs.access import staff_scope
from timebank.orgs.models import Org, OrgKind, User
from timebank.orgs.scope import require_manager, user_of
from timebank.web.forms import new_idempotency_key
from timebank.web.views.common import add_form_error, back, explain, page


@page("workbench")
def funds_home(request: HttpRequest) -> HttpResponse:
    """Straight to the caller's own org; the superuser chooses a bank."""
    user = user_of(request)
    require_manager(user)
    scope = staff_scope(user)
    if scope is not None:
        return redirect("web:funds", org_id=scope.pk)
    banks = list(Org.objects.filter(kind=OrgKind.HEAD_OFFICE).order_by("name"))
    return render(request, "funds/fundbook_banks.html", {"banks": banks})


def _entry_form(org: Org, data: Any = None) -> FundEntryForm:
    return FundEntryForm(data, initial={"idempotency_key": new_idempotency_key(), "occurred_on": clock.localdate()})


def _funds_page(request: HttpRequest, org: Org, form: FundEntryForm, status: int = 200) -> HttpResponse:
    user = user_of(request)
    entries = (
        visible_fund_entries(user)
        .filter(org__path__startswith=org.path)
        .select_related("org", "created_by", "reverses")
        .order_by("-occurred_on", "-pk")
    )
    rows = Paginator(entries, 30).get_page(request.GET.get("page"))
    reversed_ids = set(
        FundEntry.objects.filter(reverses_id__in=[e.pk for e in rows]).values_list("reverses_id", flat=True)
    )
    for entry in rows:
        entry.is_reversed = entry.pk in reversed_ids  # type: ignore[attr-defined]
        entry.reverse_form = ReverseForm(prefix=f"x{entry.pk}")  # type: ignore[attr-defined]
    report = fund_report(org, Period())
    context = {
        "org": org,
        "form": form,
        "rows": rows,
        "report": report,
        "parent": org.parent if org.parent is not None and _manages(user, org.parent) else None,
    }
    return render(request, "funds/fundbook.html", context, status=status)


def _manages(user: User, org: Org) -> bool:
    try:
        access_fund_org(user, org.pk)
    except ApiError:
        return False
    return True


@page("workbench")
def funds(request: HttpRequest, org_id: int) -> HttpResponse:
    """The org's fund book: totals of its subtree, the entry form, and the entries newest first."""
    user = user_of(request)
    org = access_fund_org(user, org_id)
    if request.method == "POST":
        form = FundEntryForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            direction, code = form.direction_and_code()
            try:
                entry, replayed = do_record_entry(
                    user,
                    org,
                    EntryInput(
                        direction=direction,
                        amount=data["amount"],
                        occurred_on=data["occurred_on"],
                        source=code if direction == "income" else "",
                        kind=code if direction == "expense" else "",
                        fund=data["fund"],
                        description=data["description"],
                        donor_name=data["donor_name"],
                        provider=data["provider"],
                    ),
                    idempotency_key=data["idempotency_key"],
                )
            except ApiError as exc:
                add_form_error(form, exc, {"source": "category", "kind": "category", "direction": "category"})
            else:
                if replayed:
                    messages.info(request, _("这一笔刚才已经记过了，没有重复记账。"))
                else:
                    messages.success(
                        request,
                        _("已记账：%(category)s %(amount)s 元。")
                        % {"category": entry.get_source_display() or entry.get_kind_display(), "amount": entry.amount},
                    )
                return redirect("web:funds", org_id=org.pk)
        return _funds_page(request, org, form, status=422)
    return _funds_page(request, org, _entry_form(org))


@require_POST
@page("workbench")
def reverse_entry(request: HttpRequest, entry_id: int) -> HttpResponse:
    """冲正: the entry stays; a new one with the amount negated corrects it."""
    user = user_of(request)
    entry = access_fund_entry(user, entry_id)
    form = ReverseForm(request.POST, prefix=f"x{entry.pk}")
    fallback = reverse("web:funds", args=[entry.org_id])
    if not form.is_valid():
        messages.error(request, _("请写明冲正的原因。"))
        return back(request, fallback)
    try:
        do_reverse_entry(user, entry, reason=form.cleaned_data["reason"])
    except ApiError as exc:
        messages.error(request, explain(exc))
    else:
        messages.success(request, _("已冲正，原记录保留，合计已经扣除。"))
    return back(request, fallback)
