"""The management pages of the service catalogue and of each community's menu."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.catalogue.actions import do_create_service_item, do_set_menu_entry
from timebank.catalogue.forms import MenuEntryForm, ServiceItemForm
from timebank.catalogue.models import MenuEntry, ServiceItem
from timebank.lib.errors import ApiError
from timebank.orgs.access import access_bank_admin, staff_scope
from timebank.orgs.models import Org, Rules
from timebank.orgs.scope import MENU_KINDS, manage_org, managed_orgs, require_manager, user_of
from timebank.web.views.common import add_form_error, page


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
        "catalogue/catalogue.html",
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
    return render(request, "catalogue/menus.html", {"orgs": orgs})


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
    return render(request, "catalogue/menu.html", {"org": org, "rows": rows, "offered": offered}, status=status)


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
