"""Login pages: logging in and out, one's own password (also the forced change after a reset), display preferences;
and the management home and the head office's rules. The staff logins and the org tree: views_staff.py."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from timebank.lib.errors import ApiError, Forbidden
from timebank.orgs import lockout
from timebank.orgs import rules as rule_registry
from timebank.orgs.access import access_rules, has_role, staff_scope
from timebank.orgs.actions import do_change_password, do_update_rules
from timebank.orgs.forms import LoginForm, PasswordForm, RulesForm
from timebank.orgs.models import Org, OrgKind, Role, User
from timebank.orgs.scope import MENU_KINDS, banks_for, can_manage, managed_orgs, user_of
from timebank.web.views.common import add_form_error, page, safe_next


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
        "orgs/password.html",
        {"form": form, "forced": forced, "next": safe_next(request, "")},
        status=status,
    )


def temporary_page(request: HttpRequest, *, name: str, username: str, temporary: str, back: str) -> HttpResponse:
    return render(
        request,
        "orgs/temporary_password.html",
        {"name": name, "username": username, "temporary": temporary, "back": back},
    )


LARGE_TEXT_COOKIE = "large_text"


class WebLoginView(LoginView):
    template_name = "orgs/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True
    next_page = "/"

    def get_success_url(self) -> str:
        # After a staff reset, the temporary password only opens the page where the person chooses their own.
        if getattr(self.request.user, "must_change_password", False):
            return f"{reverse('web:password')}?{urlencode({'next': super().get_success_url()})}"
        return super().get_success_url()

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        # A lockout is a refusal, not a typo: say so with the status too. The page itself explains.
        if getattr(form, "locked_out", False):
            response.status_code = 403
            # Tells the lockout handler (timebank.api.core.axes_lockout_response) that this page explains it.
            self.request.web_lockout_shown = True  # type: ignore[attr-defined]
        return response


class WebLogoutView(LogoutView):
    next_page = "/"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        messages.success(request, _("您已安全退出。"))
        return response


@require_POST
def large_text(request: HttpRequest) -> HttpResponse:
    """Turn large text on or off. A cookie, so it stays on after logging out and on a shared phone's next visit."""
    turn_on = request.COOKIES.get(LARGE_TEXT_COOKIE) != "1"
    response = HttpResponseRedirect(safe_next(request))
    if turn_on:
        response.set_cookie(
            LARGE_TEXT_COOKIE,
            "1",
            max_age=365 * 24 * 3600,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
        )
    else:
        response.delete_cookie(LARGE_TEXT_COOKIE, samesite="Lax")
    return response


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
        "orgs/manage.html",
        {
            "banks": banks,
            "scope": scope,
            "has_counter": managed_orgs(user, (OrgKind.OUTLET, OrgKind.SUB_BRANCH)).exists(),
            "has_menu": managed_orgs(user, MENU_KINDS).exists(),
        },
    )


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
    return render(request, "orgs/rules.html", context, status=422 if form is not None and form.errors else 200)
