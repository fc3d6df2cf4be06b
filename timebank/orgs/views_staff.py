"""The admins' pages of staff logins (工作人员账号) and of the org tree (机构): the pages of GET/POST /staff,
PATCH /staff/{id}, POST /staff/{id}/password-reset, GET /orgs and POST /orgs. Each page asks the endpoint's access
function and calls its action (timebank.orgs.actions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from timebank.lib.errors import ApiError, Forbidden
from timebank.orgs.access import (
    access_org_as_admin,
    access_staff_login,
    can_grant_role,
    check_may_manage_staff,
    has_role,
    visible_orgs,
    visible_staff,
)
from timebank.orgs.actions import do_create_org, do_create_staff, do_reset_password, do_update_staff
from timebank.orgs.forms import OrgCreateForm, StaffCreateForm, StaffEditForm, StaffFilterForm
from timebank.orgs.models import ADMIN_ROLES, ALLOWED_PARENTS, Org, OrgKind, Role, User
from timebank.orgs.scope import MAX_ORG_CHOICES, user_of
from timebank.web.views.common import add_form_error, page

# 工作人员账号 ---------------------------------------------------------------------------------------------------


def admin_of_logins(user: User) -> User:
    if not (user.is_superuser or (user.org_id is not None and user.role in ADMIN_ROLES)):
        raise Forbidden(_("工作人员账号由上级机构的管理员管理。"), code="not_admin")
    return user


def _grantable_roles(user: User) -> list[str]:
    return [r for r in Role.values if can_grant_role(user, r)]


def _orgs(user: User) -> list[Org]:
    return list(visible_orgs(user).order_by("path")[:MAX_ORG_CHOICES])


def _rows(
    user: User, request: HttpRequest, orgs: list[Org], roles: list[str], bound: tuple[int, StaffEditForm] | None
) -> tuple[Any, StaffFilterForm, str]:
    """One page of the caller's staff logins (visible_staff, as GET /staff), filtered as GET /staff filters,
    each with its edit form where the caller may manage it; `bound` is a form sent back with its errors."""
    filters = StaffFilterForm(request.GET or None, orgs=orgs, roles=roles, auto_id="filter-%s")
    qs = visible_staff(user).filter(**filters.filters()).select_related("org").order_by("org__path", "username")
    rows = Paginator(qs, 50).get_page(request.GET.get("page"))
    for staff in rows:
        try:
            check_may_manage_staff(user, staff)
        except ApiError:
            staff.edit_form = None  # type: ignore[attr-defined]
            continue
        if bound is not None and bound[0] == staff.pk:
            staff.edit_form = bound[1]  # type: ignore[attr-defined]
            continue
        staff.edit_form = StaffEditForm(  # type: ignore[attr-defined]
            initial={"org_id": staff.org_id, "role": staff.role, "is_active": staff.is_active},
            orgs=orgs,
            roles=roles,
            auto_id=f"staff-{staff.pk}-%s",
        )
    query = urlencode({k: v for k, v in request.GET.items() if k != "page" and v})
    return rows, filters, query


def _list_page(
    request: HttpRequest,
    user: User,
    *,
    form: StaffCreateForm | None = None,
    bound: tuple[int, StaffEditForm] | None = None,
) -> HttpResponse:
    orgs, roles = _orgs(user), _grantable_roles(user)
    form = form or StaffCreateForm(orgs=orgs, roles=roles, initial={"org_id": request.GET.get("org_id")})
    rows, filters, query = _rows(user, request, orgs, roles, bound)
    failed = form.errors or (bound is not None and bound[1].errors)
    context = {"form": form, "rows": rows, "filters": filters, "query": query}
    return render(request, "orgs/staff_logins.html", context, status=422 if failed else 200)


@never_cache
@page("login")
def staff_logins(request: HttpRequest) -> HttpResponse:
    """List the staff logins of the caller's subtree (filtered by org, role, state) and create new ones."""
    user = admin_of_logins(user_of(request))
    if request.method != "POST":
        return _list_page(request, user)
    orgs, roles = _orgs(user), _grantable_roles(user)
    form = StaffCreateForm(request.POST, orgs=orgs, roles=roles)
    if form.is_valid():
        data = form.cleaned_data
        try:
            org = access_org_as_admin(user, data["org_id"])
            if not can_grant_role(user, data["role"]):
                raise Forbidden(_("不能授予比自己更高的角色。"), code="role_too_high", fields={"role": "too_high"})
            staff = do_create_staff(
                user,
                org=org,
                username=data["username"],
                password=data["password"],
                name=data["name"],
                role=data["role"],
            )
        except ApiError as exc:
            add_form_error(form, exc)
        else:
            messages.success(request, _("已新建账号 %(username)s。") % {"username": staff.username})
            return redirect("web:staff_logins")
    return _list_page(request, user, form=form)


@require_POST
@page("login")
def staff_login(request: HttpRequest, staff_id: int) -> HttpResponse:
    """Move a staff login, change its role, or disable and re-enable it (an unticked box disables)."""
    user = admin_of_logins(user_of(request))
    target = access_staff_login(user, staff_id)
    form = StaffEditForm(request.POST, orgs=_orgs(user), roles=_grantable_roles(user), auto_id=f"staff-{target.pk}-%s")
    if form.is_valid():
        data = form.cleaned_data
        try:
            org = access_org_as_admin(user, data["org_id"])
            if not can_grant_role(user, data["role"]):
                raise PermissionDenied(_("不能授予比自己更高的角色。"))
            target = do_update_staff(user, target, org=org, role=data["role"], is_active=data["is_active"])
        except ApiError as exc:
            add_form_error(form, exc)
        else:
            messages.success(request, _("账号 %(username)s 已保存。") % {"username": target.username})
            # Back to the same page of the same list (the form's action carries its query).
            query = f"?{request.GET.urlencode()}" if request.GET else ""
            return redirect(f"{reverse('web:staff_logins')}{query}#staff-{target.pk}")
    return _list_page(request, user, bound=(target.pk, form))  # the same page of the list: the row shows why


@never_cache
@require_POST
@page("login")
def staff_login_reset(request: HttpRequest, staff_id: int) -> HttpResponse:
    """A temporary password, shown on this answer only (a POST: reloading the list never shows it again)."""
    user = admin_of_logins(user_of(request))
    target = access_staff_login(user, staff_id)
    temporary = do_reset_password(user, target)
    return render(
        request,
        "orgs/temporary_password.html",
        {
            "name": target.display_name or target.username,
            "username": target.username,
            "temporary": temporary,
            "back": reverse("web:staff_logins"),
        },
    )


# 机构 (the org tree) ---------------------------------------------------------------------------------------------


@dataclass
class Node:
    org: Org
    staff: int
    can_open: bool  # the caller may open an org under this one
    children: list[Node] = field(default_factory=list)


def _tree(user: User, orgs: list[Org]) -> list[Node]:
    active = visible_staff(user).filter(is_active=True)
    counts = dict(active.values("org_id").annotate(n=Count("pk")).values_list("org_id", "n"))
    child_kinds = {parent for kinds in ALLOWED_PARENTS.values() for parent in kinds}
    nodes = {o.pk: Node(o, counts.get(o.pk, 0), o.kind in child_kinds and has_role(user, ADMIN_ROLES, o)) for o in orgs}
    roots: list[Node] = []
    for org in orgs:  # by path: a parent before its children
        parent = nodes.get(org.parent_id) if org.parent_id else None
        (parent.children if parent is not None else roots).append(nodes[org.pk])
    return roots


def _org_form(user: User, orgs: list[Org], data: Any = None, parent_id: str | None = None) -> OrgCreateForm:
    parents = [o for o in orgs if has_role(user, ADMIN_ROLES, o) and o.kind != OrgKind.OUTLET]
    kinds: list[str] = [OrgKind.BRANCH, OrgKind.SUB_BRANCH, OrgKind.OUTLET]
    if user.is_superuser:
        kinds.insert(0, OrgKind.HEAD_OFFICE)
    return OrgCreateForm(data, parents=parents, kinds=kinds, initial={"parent_id": parent_id})


def _may_open_orgs(user: User) -> bool:
    return user.is_superuser or (user.org_id is not None and user.role in ADMIN_ROLES)


@never_cache
@page("workbench")
def org_tree(request: HttpRequest) -> HttpResponse:
    """The caller's subtree (visible_orgs, as GET /orgs); admins open a branch, sub-branch or outlet under an org
    of their subtree (access_org_as_admin and do_create_org, as POST /orgs)."""
    user = user_of(request)
    orgs = _orgs(user)
    form = None
    if request.method == "POST":
        if not _may_open_orgs(user):
            raise Forbidden(_("只有上级机构的管理员可以在这里新建机构或账号。"), code="not_admin")
        form = _org_form(user, orgs, request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if data["kind"] == OrgKind.HEAD_OFFICE and not user.is_superuser:
                    raise Forbidden(_("只有系统管理员可以新建时间银行（总行）。"), code="not_superuser")
                parent = access_org_as_admin(user, data["parent_id"]) if data["parent_id"] is not None else None
                org = do_create_org(user, name=data["name"], kind=data["kind"], parent=parent)
            except ApiError as exc:
                add_form_error(form, exc)
            else:
                messages.success(request, _("已开设 %(name)s。") % {"name": org.name})
                return redirect(f"{reverse('web:org_tree')}#org-{org.pk}")
    elif _may_open_orgs(user):
        form = _org_form(user, orgs, parent_id=request.GET.get("parent_id"))
    context = {"roots": _tree(user, orgs), "form": form, "is_admin": _may_open_orgs(user)}
    return render(request, "orgs/org_tree.html", context, status=422 if form is not None and form.errors else 200)
