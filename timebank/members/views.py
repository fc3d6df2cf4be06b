"""Pages anyone may open about the members: what the time bank is and joining; and a member's password reset by
staff."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from timebank.lib import ratelimit
from timebank.lib.errors import ApiError
from timebank.members.access import access_member_login_to_reset
from timebank.members.actions import MemberInput, do_record_consents, do_register_member
from timebank.members.forms import JoinForm
from timebank.members.models import Member
from timebank.orgs.actions import do_reset_password
from timebank.orgs.models import Org, OrgKind, Rules, User
from timebank.orgs.scope import user_of
from timebank.orgs.views import temporary_page
from timebank.web.views.common import add_form_error, explain, page, safe_next


def _bank_for_about(request: HttpRequest) -> Org | None:
    """The bank the visitor looks at: `?bank=` (any org of the bank names it), else the logged-in person's bank,
    else the only bank there is; None when there are several and the visitor has not chosen."""
    raw = request.GET.get("bank", "")
    if raw.isdigit() and len(raw) <= 12:
        org = Org.objects.select_related("head_office").filter(pk=int(raw)).first()
        if org is not None:
            return org.bank
    user = request.user
    if isinstance(user, User):
        member = Member.objects.select_related("bank").filter(user=user).first()
        if member is not None:
            return member.bank
        if user.org is not None:
            return user.org.bank
    banks = list(Org.objects.filter(kind=OrgKind.HEAD_OFFICE)[:2])
    return banks[0] if len(banks) == 1 else None


def _rules_for_about(bank: Org | None) -> dict[str, Any]:
    """The numbers on the about page come from the bank's rules (the seeds' defaults when no bank is chosen)."""
    rules = (Rules.objects.filter(head_office=bank).first() if bank is not None else None) or Rules()
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
    bank = _bank_for_about(request)
    banks = [] if bank is not None else list(Org.objects.filter(kind=OrgKind.HEAD_OFFICE).order_by("name"))
    return render(request, "members/about.html", {"rules": _rules_for_about(bank), "bank": bank, "banks": banks})


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
            return render(request, "members/join.html", {"form": form}, status=exc.status)
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
    return render(request, "members/join.html", {"form": form}, status=status)


@never_cache
@require_POST
@page("workbench")
def member_password_reset(request: HttpRequest, member_id: int) -> HttpResponse:
    """Staff of the member's home subtree give the member a temporary password, shown on this answer only."""
    user = user_of(request)
    member, login = access_member_login_to_reset(user, member_id)
    temporary = do_reset_password(user, login)
    return temporary_page(
        request,
        name=member.name,
        username=login.username,
        temporary=temporary,
        back=safe_next(request, "/staff/members/"),
    )
