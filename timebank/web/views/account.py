"""Login pages: one's own password (also the forced change after a reset), a member's password reset by staff,
and the admins' page of staff logins (工作人员账号)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from timebank.lib.errors import ApiError, Forbidden
from timebank.members.access import access_member_login_to_reset
from timebank.orgs import lockout
from timebank.orgs.access import (
    access_org_as_admin,
    access_staff_login,
    can_grant_role,
    check_may_manage_staff,
    visible_orgs,
    visible_staff,
)
from timebank.orgs.actions import do_change_password, do_create_staff, do_reset_password, do_update_staff
from timebank.orgs.models import ADMIN_ROLES, Org, Role, User
from timebank.web.forms_account import PasswordForm, StaffCreateForm, StaffEditForm
from timebank.web.views.common import add_form_error, page, safe_next, user_of


@never_cache
@page("login")
def password(request: HttpRequest) -> HttpResponse:
    """Every login changes its own password here; after a staff reset it is the only page that opens."""
    user = user_of(request)
    forced = user.must_change_password
    form = PasswordForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            lockout.check_not_locked(request, user)
            user = do_change_password(user, old_password=data["old_password"], new_password=data["new_password1"])
        except ApiError as exc:
            if exc.code == "wrong_password":
                lockout.count_wrong_password(request, user)
            # This page says why itself (timebank.api.core.axes_lockout_response keeps the answer).
            request.web_lockout_shown = True  # type: ignore[attr-defined]
            add_form_error(form, exc, {"new_password": "new_password1"})
            status = exc.status if exc.status == 429 else 422
        else:
            # This browser stays logged in; other sessions (their hash changed) and all tokens end.
            update_session_auth_hash(request, user)
            messages.success(request, _("密码改好了。下次登录请用新密码。"))
            return redirect(safe_next(request, "/"))
    if form.errors and status == 200:
        status = 422
    return render(
        request,
        "web/account/password.html",
        {"form": form, "forced": forced, "next": safe_next(request, "")},
        status=status,
    )


def _temporary_page(request: HttpRequest, *, name: str, username: str, temporary: str, back: str) -> HttpResponse:
    return render(
        request,
        "web/account/temporary_password.html",
        {"name": name, "username": username, "temporary": temporary, "back": back},
    )


@never_cache
@require_POST
@page("workbench")
def member_password_reset(request: HttpRequest, member_id: int) -> HttpResponse:
    """Staff of the member's home subtree give the member a temporary password, shown on this answer only."""
    user = user_of(request)
    member, login = access_member_login_to_reset(user, member_id)
    temporary = do_reset_password(user, login)
    return _temporary_page(
        request,
        name=member.name,
        username=login.username,
        temporary=temporary,
        back=safe_next(request, "/staff/members/"),
    )


# 工作人员账号 ---------------------------------------------------------------------------------------------------


def _admin(user: User) -> User:
    if not (user.is_superuser or (user.org_id is not None and user.role in ADMIN_ROLES)):
        raise Forbidden(_("工作人员账号由上级机构的管理员管理。"), code="not_admin")
    return user


def _grantable_roles(user: User) -> list[str]:
    return [r for r in Role.values if can_grant_role(user, r)]


def _orgs(user: User) -> list[Org]:
    return list(visible_orgs(user).order_by("path")[:500])


def _rows(user: User, request: HttpRequest, orgs: list[Org], roles: list[str]) -> Any:
    rows = Paginator(visible_staff(user).select_related("org").order_by("org__path", "username"), 50).get_page(
        request.GET.get("page")
    )
    for staff in rows:
        try:
            check_may_manage_staff(user, staff)
        except ApiError:
            staff.edit_form = None  # type: ignore[attr-defined]
        else:
            staff.edit_form = StaffEditForm(  # type: ignore[attr-defined]
                initial={"org": staff.org_id, "role": staff.role, "is_active": staff.is_active},
                orgs=orgs,
                roles=roles,
                auto_id=f"staff-{staff.pk}-%s",
            )
    return rows


@never_cache
@page("login")
def staff_logins(request: HttpRequest) -> HttpResponse:
    """List the staff logins of the caller's subtree and create new ones."""
    user = _admin(user_of(request))
    orgs, roles = _orgs(user), _grantable_roles(user)
    form = StaffCreateForm(request.POST or None, orgs=orgs, roles=roles)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            org = access_org_as_admin(user, data["org"])
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
    rows = _rows(user, request, orgs, roles)
    status = 422 if form.errors else 200
    return render(request, "web/account/staff_logins.html", {"form": form, "rows": rows}, status=status)


@require_POST
@page("login")
def staff_login(request: HttpRequest, staff_id: int) -> HttpResponse:
    """Move a staff login, change its role, or disable it (an unticked box disables)."""
    user = _admin(user_of(request))
    target = access_staff_login(user, staff_id)
    form = StaffEditForm(request.POST, orgs=_orgs(user), roles=_grantable_roles(user))
    if not form.is_valid():
        messages.error(request, _("请从列表里选择机构和角色。"))
        return redirect("web:staff_logins")
    data = form.cleaned_data
    org = access_org_as_admin(user, data["org"])
    if not can_grant_role(user, data["role"]):
        raise PermissionDenied(_("不能授予比自己更高的角色。"))
    try:
        target = do_update_staff(user, target, org=org, role=data["role"], is_active=data["is_active"])
    except ApiError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("账号 %(username)s 已保存。") % {"username": target.username})
    return redirect("web:staff_logins")


@never_cache
@require_POST
@page("login")
def staff_login_reset(request: HttpRequest, staff_id: int) -> HttpResponse:
    user = _admin(user_of(request))
    target = access_staff_login(user, staff_id)
    temporary = do_reset_password(user, target)
    return _temporary_page(
        request,
        name=target.display_name or target.username,
        username=target.username,
        temporary=temporary,
        back="/manage/staff/",
    )
