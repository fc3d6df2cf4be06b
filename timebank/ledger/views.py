"""The settlement pages: settlement runs, their progress and their report."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any, cast

from django.contrib import messages
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.ledger.forms import SettlementForm
from timebank.ledger.models import Account, AccountKind, Settlement, SettlementStatus
from timebank.ledger.settlement import preview_settlement, start_settlement
from timebank.ledger.settlement_report import CONTENT_TYPE, report_file, report_name
from timebank.ledger.tasks import enqueue_settlement
from timebank.lib import clock
from timebank.lib.errors import ApiError
from timebank.orgs.access import access_bank_admin
from timebank.orgs.models import Org, Rules, SettlementPeriod
from timebank.orgs.scope import user_of
from timebank.web.views.common import add_form_error, page

# Settlement ---------------------------------------------------------------------------------------------


def last_boundary(today: dt.date, period: str) -> dt.date:
    """The most recent half-year or year end on or before `today` (the scheduled job's default)."""
    if period == SettlementPeriod.HALF_YEAR and today >= dt.date(today.year, 6, 30):
        return dt.date(today.year, 6, 30)
    return dt.date(today.year - 1, 12, 31)


def _settlement(bank: Org, settlement_id: int) -> Settlement:
    settlement = (
        Settlement.objects.select_related("head_office", "actor").filter(pk=settlement_id, head_office=bank).first()
    )
    if settlement is None:
        raise Http404(str(_("找不到这次结算。")))
    return settlement


def progress(settlement: Settlement) -> dict[str, Any]:
    """Members done out of all members, from the run's position (members are settled in account order)."""
    earned = Account.objects.filter(bank_id=settlement.head_office_id, kind=AccountKind.EARNED, member__isnull=False)
    if settlement.status == SettlementStatus.DONE:
        total = done = max(earned.filter(pk__lte=settlement.last_account_id).count(), settlement.members)
    else:
        total = earned.count()
        done = earned.filter(pk__lte=settlement.last_account_id).count()
    percent = 100 if total == 0 else min(100, done * 100 // total)
    return {"done": done, "total": total, "percent": percent, "running": settlement.status == SettlementStatus.RUNNING}


def _run(settlement: Settlement) -> None:
    # After commit: the worker must see the settlement row. Outside a transaction this runs at once.
    transaction.on_commit(partial(enqueue_settlement, settlement.pk))


def next_period_end(bank: Org, rules: Rules, today: dt.date) -> dt.date | None:
    """The period end the form proposes: the most recent scheduled boundary when it comes after the last settlement
    (the usual case), a settlement still running (to finish it), else today for an early settlement; None when
    today is settled already (nothing can run)."""
    last = Settlement.objects.filter(head_office=bank).order_by("-period_end").first()
    boundary = last_boundary(today, rules.settlement_period)
    if last is None or boundary > last.period_end:
        return boundary
    if last.status != SettlementStatus.DONE:
        return last.period_end
    return today if today > last.period_end else None


@page("workbench")
def settlements(request: HttpRequest, bank_id: int) -> HttpResponse:
    """Past settlements, and starting one for a period end (today or earlier): the form proposes the next period
    that can run; 预览 shows what it would move (members, minutes to goods and to reserve: a dry run by the
    settlement's own rule, `preview_settlement`) and asks for confirmation; the confirmation starts it."""
    user = user_of(request)
    bank = access_bank_admin(user, bank_id)
    rules = Rules.objects.get(head_office=bank)
    preview = None
    proposed = next_period_end(bank, rules, clock.localdate())
    if request.method == "POST":
        form = SettlementForm(request.POST)
        if form.is_valid():
            period_end = form.cleaned_data["period_end"]
            try:
                if request.POST.get("preview"):
                    preview = preview_settlement(bank, period_end)
                else:
                    settlement, already = start_settlement(user, bank, period_end)
            except ApiError as exc:
                add_form_error(form, exc)
            else:
                if preview is None:
                    if already:
                        messages.info(
                            request,
                            _("截至 %(day)s 的结算已经做过了，这次没有移动任何时间。下面是当时的结果。")
                            % {"day": period_end.isoformat()},
                        )
                    else:
                        _run(settlement)
                    return redirect("web:settlement", bank_id=bank.pk, settlement_id=settlement.pk)
    else:
        form = SettlementForm(initial={"period_end": proposed or clock.localdate()})
    rows = list(Settlement.objects.filter(head_office=bank).select_related("actor").order_by("-period_end")[:100])
    return render(
        request,
        "ledger/settlements.html",
        {"bank": bank, "rules": rules, "form": form, "rows": rows, "preview": preview, "proposed": proposed},
        status=422 if form.errors else 200,
    )


@page("workbench")
def settlement_detail(request: HttpRequest, bank_id: int, settlement_id: int) -> HttpResponse:
    user = user_of(request)
    bank = access_bank_admin(user, bank_id)
    settlement = _settlement(bank, settlement_id)
    context = {"bank": bank, "s": settlement, "p": progress(settlement)}
    return render(request, "ledger/settlement.html", context)


@page("workbench")
def settlement_progress(request: HttpRequest, bank_id: int, settlement_id: int) -> HttpResponse:
    """The progress bar alone, polled by htmx while the run goes on."""
    user = user_of(request)
    bank = access_bank_admin(user, bank_id)
    settlement = _settlement(bank, settlement_id)
    return render(
        request, "ledger/_settlement_progress.html", {"bank": bank, "s": settlement, "p": progress(settlement)}
    )


@require_POST
@page("workbench")
def settlement_resume(request: HttpRequest, bank_id: int, settlement_id: int) -> HttpResponse:
    """An interrupted run (a worker stopped, a server restarted) continues where it stopped."""
    user = user_of(request)
    bank = access_bank_admin(user, bank_id)
    settlement = _settlement(bank, settlement_id)
    if settlement.status == SettlementStatus.DONE:
        messages.info(request, _("这次结算已经完成了，没有再移动任何时间。"))
    else:
        _run(settlement)
        messages.success(request, _("结算在继续进行。"))
    return redirect("web:settlement", bank_id=bank.pk, settlement_id=settlement.pk)


@page("workbench")
def settlement_report(request: HttpRequest, bank_id: int, settlement_id: int) -> HttpResponse:
    user = user_of(request)
    bank = access_bank_admin(user, bank_id)
    settlement = _settlement(bank, settlement_id)
    if settlement.status != SettlementStatus.DONE:
        messages.warning(request, _("结算完成以后才能下载报表。"))
        return redirect("web:settlement", bank_id=bank.pk, settlement_id=settlement.pk)
    response = FileResponse(
        report_file(settlement, user), as_attachment=True, filename=report_name(settlement), content_type=CONTENT_TYPE
    )
    return cast(HttpResponse, response)  # streamed: the pages' guard passes any response through
