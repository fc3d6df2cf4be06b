"""Management pages: the list of what the caller may manage, settlement runs and their report, the head office's
rules, the service catalogue, and a community's service menu (制单)."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any, cast

from django.contrib import messages
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.catalogue.actions import do_create_service_item, do_set_menu_entry
from timebank.catalogue.models import MenuEntry, ServiceItem
from timebank.ledger.models import Account, AccountKind, Settlement, SettlementStatus
from timebank.ledger.settlement import start_settlement
from timebank.lib.errors import ApiError, Forbidden
from timebank.orgs import rules as rule_registry
from timebank.orgs.access import access_bank_admin, access_rules, has_role, staff_scope
from timebank.orgs.actions import do_update_rules
from timebank.orgs.models import Org, OrgKind, Role, Rules, SettlementPeriod, User
from timebank.web.forms_admin import MenuEntryForm, RulesForm, ServiceItemForm, SettlementForm
from timebank.web.settlement_report import CONTENT_TYPE, report_file, report_name
from timebank.web.tasks import enqueue_settlement
from timebank.web.views.common import add_form_error, can_manage, page, user_of
from timebank.web.views.scope import banks_for, manage_org, managed_orgs, require_manager

MENU_KINDS = (OrgKind.SUB_BRANCH, OrgKind.OUTLET)


def _is_bank_admin(user: User, bank: Org) -> bool:
    return has_role(user, {Role.HEAD_OFFICE_ADMIN}, bank)


@page("workbench")
def manage_home(request: HttpRequest) -> HttpResponse:
    """Everything the caller may manage beyond orders and members, as tiles."""
    user = user_of(request)
    if not can_manage(user):
        raise Forbidden(_("这个页面只给社区工作人员和管理员使用。"), code="not_staff")
    banks = [(bank, _is_bank_admin(user, bank)) for bank in banks_for(user)]
    scope = staff_scope(user)
    return render(
        request,
        "web/admin/home.html",
        {
            "banks": banks,
            "scope": scope,
            "has_counter": managed_orgs(user, (OrgKind.OUTLET, OrgKind.SUB_BRANCH)).exists(),
            "has_menu": managed_orgs(user, MENU_KINDS).exists(),
        },
    )


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


@page("workbench")
def settlements(request: HttpRequest, bank_id: int) -> HttpResponse:
    """Past settlements, and starting one for a period end (today or earlier)."""
    user = user_of(request)
    bank = access_bank_admin(user, bank_id)
    rules = Rules.objects.get(head_office=bank)
    if request.method == "POST":
        form = SettlementForm(request.POST)
        if form.is_valid():
            period_end = form.cleaned_data["period_end"]
            try:
                settlement, already = start_settlement(user, bank, period_end)
            except ApiError as exc:
                add_form_error(form, exc)
            else:
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
        form = SettlementForm(initial={"period_end": last_boundary(timezone.localdate(), rules.settlement_period)})
    rows = list(Settlement.objects.filter(head_office=bank).select_related("actor").order_by("-period_end")[:100])
    return render(
        request,
        "web/admin/settlements.html",
        {"bank": bank, "rules": rules, "form": form, "rows": rows},
        status=422 if form.errors else 200,
    )


@page("workbench")
def settlement_detail(request: HttpRequest, bank_id: int, settlement_id: int) -> HttpResponse:
    user = user_of(request)
    bank = access_bank_admin(user, bank_id)
    settlement = _settlement(bank, settlement_id)
    context = {"bank": bank, "s": settlement, "p": progress(settlement)}
    return render(request, "web/admin/settlement.html", context)


@page("workbench")
def settlement_progress(request: HttpRequest, bank_id: int, settlement_id: int) -> HttpResponse:
    """The progress bar alone, polled by htmx while the run goes on."""
    user = user_of(request)
    bank = access_bank_admin(user, bank_id)
    settlement = _settlement(bank, settlement_id)
    return render(
        request, "web/admin/_settlement_progress.html", {"bank": bank, "s": settlement, "p": progress(settlement)}
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


# Rules --------------------------------------------------------------------------------------------------


@page("workbench")
def rules_page(request: HttpRequest, bank_id: int) -> HttpResponse:
    """Head-office admins change the rules; staff and admins elsewhere in the bank read them."""
    user = user_of(request)
    rules = access_rules(user, bank_id, write=False)
    bank = rules.head_office
    editable = _is_bank_admin(user, bank)
    form = None
    if editable:
        if request.method == "POST":
            form = RulesForm(request.POST)
            if form.is_valid():
                try:
                    access_rules(user, bank_id, write=True)
                    do_update_rules(user, rules, form.changes())
                except ApiError as exc:
                    add_form_error(form, exc, RulesForm.aliases())
                else:
                    messages.success(request, _("规则已保存，新的规则从现在起生效。"))
                    return redirect("web:rules", bank_id=bank.pk)
        else:
            form = RulesForm(initial=RulesForm.initial_for(rules))
    elif request.method == "POST":
        access_rules(user, bank_id, write=True)  # refuses: only the head office's admins change the rules
    context = {"bank": bank, "rules": rules, "form": form, "rows": rule_registry.read_only_rows(rules)}
    return render(request, "web/admin/rules.html", context, status=422 if form is not None and form.errors else 200)


# Catalogue and menu -------------------------------------------------------------------------------------


@page("workbench")
def catalogue(request: HttpRequest, bank_id: int) -> HttpResponse:
    """The bank's service catalogue (服务清单); head-office admins add items."""
    user = user_of(request)
    bank = access_bank_admin(user, bank_id)
    form = ServiceItemForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            item = do_create_service_item(
                user,
                head_office=bank,
                name=data["name"],
                category=data["category"],
                tier=data["tier"],
                requires_certificate=data["requires_certificate"] or None,
                description=data["description"],
            )
        except ApiError as exc:
            add_form_error(form, exc)
        else:
            messages.success(request, _("已添加服务项目：%(name)s。") % {"name": item.name})
            return redirect("web:catalogue", bank_id=bank.pk)
    items = list(ServiceItem.objects.filter(head_office=bank).order_by("-active", "category", "tier", "name"))
    multipliers = Rules.objects.values_list("multipliers", flat=True).get(head_office=bank)
    for item in items:
        item.multiplier = multipliers.get(item.tier)  # type: ignore[attr-defined]
    return render(
        request,
        "web/admin/catalogue.html",
        {"bank": bank, "form": form, "items": items},
        status=422 if form.errors else 200,
    )


@page("workbench")
def menus(request: HttpRequest) -> HttpResponse:
    """Which community's menu: straight to the caller's own, or a list to choose from."""
    user = user_of(request)
    require_manager(user)
    scope = staff_scope(user)
    if scope is not None and scope.kind in MENU_KINDS:
        return redirect("web:menu", org_id=scope.pk)
    orgs = list(managed_orgs(user, MENU_KINDS)[:300])
    return render(request, "web/admin/menus.html", {"orgs": orgs})


def _menu_rows(org: Org, bound: dict[int, MenuEntryForm]) -> list[ServiceItem]:
    items = list(
        ServiceItem.objects.filter(head_office_id=org.head_office_id, active=True).order_by("category", "tier", "name")
    )
    entries = {e.item_id: e for e in MenuEntry.objects.filter(org=org)}
    for item in items:
        entry = entries.get(item.pk)
        item.entry = entry  # type: ignore[attr-defined]
        item.menu_form = bound.get(item.pk) or MenuEntryForm(  # type: ignore[attr-defined]
            prefix=f"i{item.pk}",
            initial={
                "offered": bool(entry and entry.active),
                "times": entry.times if entry else "",
                "place": entry.place if entry else "",
            },
        )
    return items


def _menu_page(
    request: HttpRequest, org: Org, status: int = 200, bound: dict[int, MenuEntryForm] | None = None
) -> HttpResponse:
    rows = _menu_rows(org, bound or {})
    entries: list[MenuEntry | None] = [getattr(item, "entry", None) for item in rows]
    offered = sum(1 for entry in entries if entry is not None and entry.active)
    return render(request, "web/admin/menu.html", {"org": org, "rows": rows, "offered": offered}, status=status)


@page("workbench")
def menu(request: HttpRequest, org_id: int) -> HttpResponse:
    """制单: which of the bank's services this community offers, when and where."""
    return _menu_page(request, manage_org(user_of(request), org_id, MENU_KINDS))


@require_POST
@page("workbench")
def menu_entry(request: HttpRequest, org_id: int, item_id: int) -> HttpResponse:
    user = user_of(request)
    org = manage_org(user, org_id, MENU_KINDS)
    item = ServiceItem.objects.filter(pk=item_id, head_office_id=org.head_office_id).first()
    if item is None:
        raise Http404(str(_("找不到该服务项目。")))
    form = MenuEntryForm(request.POST, prefix=f"i{item.pk}")
    if form.is_valid():
        data = form.cleaned_data
        try:
            do_set_menu_entry(
                user, org=org, item=item, times=data["times"], place=data["place"], active=data["offered"]
            )
        except ApiError as exc:
            add_form_error(form, exc)
        else:
            if data["offered"]:
                messages.success(request, _("已发布：%(name)s。") % {"name": item.name})
            else:
                messages.success(request, _("已不再提供：%(name)s。") % {"name": item.name})
            return redirect(f"{reverse('web:menu', args=[org.pk])}#item-{item.pk}")
    return _menu_page(request, org, status=422, bound={item.pk: form})
