"""The needs register's and the census import's pages for staff (in the `web` URL namespace).

Each page is guarded by its endpoint's access function and calls the endpoint's action:
- a need (`GET /api/v1/needs/{id}`: `access_need`): edit it (`PATCH`: `do_update_need`), add a follow-up
  (`do_add_follow_up`), close it (`do_close_need`), for staff of the recipient's home subtree (operators read);
- the census import: upload a file and read its dry-run report (`POST /api/v1/census-imports`: `census_scope`,
  `do_create_census_import`; nothing written but the report), then confirm (`access_census_import`,
  `do_confirm_census_import`). Every form carries a key: a double submit does its work once."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from timebank.catalogue.models import ServiceItem
from timebank.lib.errors import ApiError, Forbidden, NotFound
from timebank.lib.masking import mask_phone
from timebank.needs import census
from timebank.needs.access import (
    access_census_import,
    access_need,
    census_list_scope,
    census_scope,
    visible_needs,
)
from timebank.needs.actions import (
    do_add_follow_up,
    do_close_need,
    do_confirm_census_import,
    do_create_census_import,
    do_update_need,
)
from timebank.needs.forms import CensusUploadForm, CloseForm, ConfirmForm, FollowUpForm, NeedEditForm
from timebank.needs.models import OPEN_STATUSES, CensusImport, CensusImportStatus, Need, NeedFollowUp, NeedStatus
from timebank.ops.idempotency import submit_once
from timebank.orgs.access import has_role
from timebank.orgs.models import MANAGING_ROLES, User
from timebank.orgs.scope import org_choices, user_of
from timebank.web.views.common import add_form_error, page

LIST_LIMIT = 200
REPORT_ROWS_SHOWN = 1000
ROW_FILTERS = ("all", "accepted", "rejected", "written", "failed")


def _refused(form: Any, exc: ApiError) -> int:
    """An action's refusal beside its field; access refusals stay 403/404 pages."""
    if isinstance(exc, (Forbidden, NotFound)):
        raise exc
    add_form_error(form, exc)
    return exc.status if 400 <= exc.status < 500 else 422


# ---- 需求清单 -------------------------------------------------------------------------------------------


@never_cache
@page("workbench")
def needs_list(request: HttpRequest) -> HttpResponse:
    """需求清单 of the caller's subtree (`GET /api/v1/needs`), newest first; open ones unless asked."""
    user = user_of(request)
    qs = visible_needs(user).select_related("recipient", "recipient__home_org")
    wanted = request.GET.get("status", "open")
    if wanted == "open":
        qs = qs.filter(status__in=OPEN_STATUSES)
    elif wanted in NeedStatus.values:
        qs = qs.filter(status=wanted)
    else:
        wanted = "all"
    rows = list(qs.order_by("-pk")[: LIST_LIMIT + 1])
    for need in rows:
        need.masked_phone = mask_phone(need.recipient.phone)  # type: ignore[attr-defined]
    filters = [("open", _("待跟进和跟进中")), *NeedStatus.choices, ("all", _("全部"))]
    return render(
        request,
        "needs/list.html",
        {"needs": rows[:LIST_LIMIT], "more": len(rows) > LIST_LIMIT, "filters": filters, "wanted": wanted},
    )


def _item_choices(need: Need) -> list[tuple[int, str]]:
    """The bank's active service items, and those the need names already (even if no longer offered)."""
    current = set(need.items.values_list("pk", flat=True))
    items = ServiceItem.objects.filter(head_office_id=need.bank_id).order_by("tier", "name")
    return [
        (i.pk, str(_("%(name)s（%(tier)s）") % {"name": i.name, "tier": i.get_tier_display()}))
        for i in items
        if i.active or i.pk in current
    ]


def _edit_initial(need: Need) -> dict[str, Any]:
    return {"level": need.level, "item_ids": list(need.items.values_list("pk", flat=True)), "notes": need.notes}


def _detail_page(
    request: HttpRequest,
    user: User,
    need_id: int,
    *,
    edit: NeedEditForm | None = None,
    follow: FollowUpForm | None = None,
    close: CloseForm | None = None,
    status: int = 200,
) -> HttpResponse:
    need = access_need(user, need_id)  # read afresh: a refused action changed nothing
    may_manage = has_role(user, MANAGING_ROLES, need.recipient.home_org)
    is_open = need.status in OPEN_STATUSES
    follow_ups = list(NeedFollowUp.objects.filter(need=need).select_related("created_by").order_by("pk"))
    labels = dict(NeedStatus.choices)
    for f in follow_ups:
        f.from_label = labels.get(f.from_status, f.from_status)  # type: ignore[attr-defined]
        f.to_label = labels.get(f.to_status, f.to_status)  # type: ignore[attr-defined]
    context = {
        "need": need,
        "masked_phone": mask_phone(need.recipient.phone),
        "items": list(need.items.order_by("pk")),
        "orders": list(need.orders.order_by("pk").values_list("pk", flat=True)),
        "follow_ups": follow_ups,
        "may_manage": may_manage,
        "is_open": is_open,
        "edit_form": edit or NeedEditForm(initial=_edit_initial(need), items=_item_choices(need)),
        "follow_form": follow or FollowUpForm(),
        "close_form": close or CloseForm(),
    }
    return render(request, "needs/detail.html", context, status=status)


@never_cache
@page("workbench")
def need_detail(request: HttpRequest, need_id: int) -> HttpResponse:
    """A need, its follow-ups and orders (`GET /api/v1/needs/{id}`); staff of the subtree get the forms."""
    return _detail_page(request, user_of(request), need_id)


@require_POST
@page("workbench")
def need_edit(request: HttpRequest, need_id: int) -> HttpResponse:
    """`PATCH /api/v1/needs/{id}`: `access_need(manage=True)`, `do_update_need`."""
    user = user_of(request)
    need = access_need(user, need_id, manage=True)
    form = NeedEditForm(request.POST, items=_item_choices(need))
    return submit_once(
        request,
        form,
        "needs.update",
        lambda data: do_update_need(
            user,
            need,
            level=data["level"],
            item_ids=data["item_ids"],
            notes=data["notes"],
            status=data["status"] or None,
        ),
        success=_("需求已保存。"),
        done=lambda _kept: redirect("web:staff_need", need.pk),
        again=lambda status: _detail_page(request, user, need.pk, edit=form, status=status),
        refused=_refused,
    )


@require_POST
@page("workbench")
def need_follow_up(request: HttpRequest, need_id: int) -> HttpResponse:
    """`POST /api/v1/needs/{id}/follow-ups`: `access_need(manage=True)`, `do_add_follow_up`."""
    user = user_of(request)
    need = access_need(user, need_id, manage=True)
    form = FollowUpForm(request.POST)
    return submit_once(
        request,
        form,
        "needs.follow_up",
        lambda data: do_add_follow_up(user, need, note=data["note"], status=data["status"] or None),
        success=_("跟进记录已保存。"),
        done=lambda _kept: redirect("web:staff_need", need.pk),
        again=lambda status: _detail_page(request, user, need.pk, follow=form, status=status),
        refused=_refused,
    )


@require_POST
@page("workbench")
def need_close(request: HttpRequest, need_id: int) -> HttpResponse:
    """`POST /api/v1/needs/{id}/close`: `access_need(manage=True)`, `do_close_need`."""
    user = user_of(request)
    need = access_need(user, need_id, manage=True)
    form = CloseForm(request.POST)
    return submit_once(
        request,
        form,
        "needs.close",
        lambda data: do_close_need(user, need, reason=data["reason"]),
        success=_("需求已关闭。"),
        done=lambda _kept: redirect("web:staff_need", need.pk),
        again=lambda status: _detail_page(request, user, need.pk, close=form, status=status),
        refused=_refused,
    )


# ---- 人口普查导入 ---------------------------------------------------------------------------------------


def _imports_page(request: HttpRequest, user: User, form: CensusUploadForm, status: int = 200) -> HttpResponse:
    scope = census_list_scope(user)
    qs = CensusImport.objects.select_related("org", "created_by").order_by("-pk")
    if scope is not None:
        qs = qs.filter(org__path__startswith=scope.path)
    return render(request, "needs/census_imports.html", {"form": form, "imports": list(qs[:50])}, status=status)


@never_cache
@page("workbench")
def census_imports(request: HttpRequest) -> HttpResponse:
    """Step one (`POST /api/v1/census-imports`): upload a file; the dry-run report is kept, nothing else."""
    user = user_of(request)
    census_list_scope(user)  # staff only: operators and members get the 403 page
    orgs = org_choices(user)
    initial = {"org_id": user.org_id} if user.org_id else {}
    if request.method != "POST":
        return _imports_page(request, user, CensusUploadForm(orgs=orgs, initial=initial))
    form = CensusUploadForm(request.POST, request.FILES, orgs=orgs)

    def upload(data: dict[str, Any]) -> CensusImport:
        org = census_scope(user, data["org_id"])
        filename = data["file"].name or ""
        checked = census.check_table(org, census.read_table(filename, data["file"].read(census.MAX_FILE_BYTES + 1)))
        return do_create_census_import(user, org=org, filename=filename, checked=checked)

    return submit_once(
        request,
        form,
        "needs.census_upload",
        upload,
        done=lambda kept: redirect("web:census_import", int(kept)),
        again=lambda status: _imports_page(request, user, form, status),
        refused=_refused,
    )


@never_cache
@page("workbench")
def census_import(request: HttpRequest, import_id: int) -> HttpResponse:
    """The dry-run report (`GET /api/v1/census-imports/{id}`) and step two, confirming it
    (`POST .../confirm`: `access_census_import`, `do_confirm_census_import`)."""
    user = user_of(request)
    imp = access_census_import(user, import_id)
    if request.method != "POST":
        return _import_page(request, imp, ConfirmForm(), 200)
    form = ConfirmForm(request.POST)
    return submit_once(
        request,
        form,
        "needs.census_confirm",
        lambda _data: do_confirm_census_import(user, imp),
        success=_("已导入。"),
        done=lambda _kept: redirect("web:census_import", imp.pk),
        # Read again: the refused confirmation may have changed nothing, or another one may have finished.
        again=lambda status: _import_page(request, access_census_import(user, import_id), form, status),
        refused=_refused,
    )


def _import_page(request: HttpRequest, imp: CensusImport, form: ConfirmForm, status: int) -> HttpResponse:
    wanted = request.GET.get("rows", "all")
    wanted = wanted if wanted in ROW_FILTERS else "all"
    report = imp.report or {}
    rows = [r for r in report.get("rows", []) if wanted == "all" or r["status"] == wanted]
    context = {
        "imp": imp,
        "form": form,
        "counts": report.get("counts", {}),
        "columns": report.get("columns", {}),
        "ignored_columns": report.get("ignored_columns", []),
        "rows": census.render_rows(rows[:REPORT_ROWS_SHOWN]),
        "rows_total": len(rows),
        "rows_cut": len(rows) > REPORT_ROWS_SHOWN,
        "wanted": wanted,
        "filters": [
            ("all", _("全部")),
            ("accepted", _("将导入")),
            ("rejected", _("不导入")),
            ("written", _("已写入")),
            ("failed", _("写入失败")),
        ],
        "may_confirm": imp.status != CensusImportStatus.CONFIRMED,
    }
    return render(request, "needs/census_import.html", context, status=status)
