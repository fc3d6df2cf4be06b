"""Pages anyone may open: what the time bank is, joining, logging in and out, display preferences."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.lib import ratelimit
from timebank.lib.errors import ApiError
from timebank.members.actions import MemberInput, do_record_consents, do_register_member
from timebank.orgs.models import Org, OrgKind, Rules
from timebank.web.forms import JoinForm, LoginForm
from timebank.web.views.common import add_form_error, explain, is_workbench_user, page, safe_next, who

LARGE_TEXT_COOKIE = "large_text"


@page("public")
def home(request: HttpRequest) -> HttpResponse:
    """Visitors read what the time bank is; everyone else goes to their own workspace."""
    if not request.user.is_authenticated:
        return about(request)
    person = who(request)
    if person.member is not None:
        from timebank.web.views.member import member_home

        return member_home(request)
    if person.user.role == "operator":
        return redirect("web:hotline")
    if is_workbench_user(person.user):
        return redirect("web:staff_home")
    return render(request, "web/other_home.html", {"person": person})


def _rules_for_about() -> dict[str, Any]:
    """The numbers on the about page come from the bank's rules (the seeds' defaults when there are several)."""
    banks = list(Rules.objects.select_related("head_office")[:2])
    rules = banks[0] if len(banks) == 1 else Rules()
    multipliers = rules.multipliers
    return {
        "ordinary": multipliers.get("ordinary", 1),
        "technical": multipliers.get("technical", 2),
        "professional": multipliers.get("professional", 3),
        "goods_percent": rules.goods_share_percent,
        "reserve_percent": 100 - rules.goods_share_percent,
        "half_year": rules.settlement_period == "half_year",
    }


@page("public")
def about(request: HttpRequest) -> HttpResponse:
    return render(request, "web/about.html", {"rules": _rules_for_about()})


@page("public")
def join(request: HttpRequest) -> HttpResponse:
    """Self-registration: a pending member with a login, approved later by the community's staff."""
    if request.user.is_authenticated:
        messages.info(request, _("您已经登录了，不用再注册。"))
        return redirect("web:home")
    form = JoinForm(request.POST or None)
    if request.method == "POST":
        # The same limit per client address as `POST /api/v1/register`: counted together.
        try:
            ratelimit.hit(request, "register")
        except ApiError as exc:
            form.add_error(None, explain(exc))
            return render(request, "web/join.html", {"form": form}, status=exc.status)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        home_org = Org.objects.filter(pk=data["home_org"], kind__in=[OrgKind.SUB_BRANCH, OrgKind.OUTLET]).first()
        if home_org is None:
            form.add_error("home_org", _("请从列表里选择社区。"))
        else:
            try:
                member = do_register_member(
                    None,
                    home_org=home_org,
                    data=MemberInput(
                        name=data["name"],
                        phone=data["phone"],
                        gender=data["gender"] or None,
                        birth_date=data["birth_date"],
                        roles=data["roles"],
                    ),
                    login=(data["username"], data["password1"]),
                    approved=False,
                )
            except ApiError as exc:
                add_form_error(form, exc, {"password": "password1", "roles": "roles"})
            else:
                assert member.user is not None
                do_record_consents(member.user, member, form.consents(), channel="web")
                login(request, member.user, backend="django.contrib.auth.backends.ModelBackend")
                messages.success(
                    request,
                    _("注册好了！%(org)s的工作人员审核后，您就可以点单或接单了。审核时可能会打电话给您。")
                    % {"org": home_org.name},
                )
                return redirect("web:home")
    status = 422 if form.errors else 200
    return render(request, "web/join.html", {"form": form}, status=status)


class WebLoginView(LoginView):
    template_name = "web/login.html"
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
