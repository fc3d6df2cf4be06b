"""The notify app's pages: the staff's page of what was sent to a member (`GET /api/v1/members/{id}/messages`),
from which an elder without a smartphone has their accepted order's code and their login code read out; and
logging in with a one-time code sent by SMS (the contract's "Logging in with an SMS code", as a page)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import login as auth_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from timebank.lib.errors import Locked
from timebank.lib.events import publish
from timebank.notify.access import access_member_messages
from timebank.notify.forms import SmsCodeForm, SmsPhoneForm
from timebank.notify.login_codes import do_send_login_code
from timebank.notify.schemas import MemberMessageOut
from timebank.notify.sms import member_messages
from timebank.orgs.access import login_allowed
from timebank.orgs.events import SmsCodeLogin
from timebank.orgs.models import User
from timebank.orgs.scope import user_of
from timebank.web.views.common import page, safe_next

PAGE_SIZE = 50
# Django's login needs to know which backend vouched for the login; the code, not a password, did here.
SESSION_BACKEND = "django.contrib.auth.backends.ModelBackend"


@never_cache
@page("workbench")
def staff_member_messages(request: HttpRequest, member_id: int) -> HttpResponse:
    """Staff and operators of the member's home subtree (403 page for others), newest first."""
    member = access_member_messages(user_of(request), member_id)
    rows = list(member_messages(member).select_related("member", "user").order_by("-pk")[:PAGE_SIZE])
    items = [
        {"n": n, "to_masked": MemberMessageOut.resolve_to_masked(n), "channel": n.get_channel_display()} for n in rows
    ]
    return render(request, "notify/staff/member_messages.html", {"m": member, "items": items})


def _login_page(request: HttpRequest, form: Any, *, sent: bool = False, status: int = 200) -> HttpResponse:
    context = {"form": form, "sent": sent, "next": safe_next(request, "")}
    return render(request, "notify/sms_login.html", context, status=status)


@never_cache
@sensitive_post_parameters("code")
@page("public")
def sms_login(request: HttpRequest) -> HttpResponse:
    """用短信验证码登录: the phone (`step=send`: the API's `POST /auth/sms-code`, with its limits), then the code
    (`step=check`: as `POST /auth/token` with `{"phone", "sms_code"}`), then a session as with a password.
    The second step looks the same whether or not the phone is known."""
    if request.user.is_authenticated:
        return redirect(safe_next(request, "/"))
    if request.method != "POST":
        return _login_page(request, SmsPhoneForm())
    if request.POST.get("step") == "check":
        return _check_code(request)
    form = SmsPhoneForm(request.POST)
    if not form.is_valid():
        return _login_page(request, form, status=422)
    phone = form.cleaned_data["phone"]
    try:
        do_send_login_code(request, phone)
    except Locked as exc:
        form.add_error("phone", str(exc.message))
        return _login_page(request, form, status=exc.status)
    return _login_page(request, SmsCodeForm(initial={"phone": phone}), sent=True)


def _check_code(request: HttpRequest) -> HttpResponse:
    form = SmsCodeForm(request.POST)
    if not form.is_valid():
        if "phone" in form.errors:  # the hidden phone was tampered with: start again
            return _login_page(request, SmsPhoneForm(request.POST), status=422)
        return _login_page(request, form, sent=True, status=422)
    data = form.cleaned_data
    # The notify app's own check (timebank.notify.login_codes.on_sms_code_login), in one transaction with the
    # login: one code opens one login; a wrong code's count commits with the refusal.
    with transaction.atomic():
        answers = publish(SmsCodeLogin(phone=data["phone"], code=data["code"]))
        user = next((a for a in answers if isinstance(a, User)), None)
        if user is not None and login_allowed(user):
            auth_login(request, user, backend=SESSION_BACKEND)
            return redirect(safe_next(request, "/"))
    form.add_error(
        "code",
        _(
            "验证码不对，或者已经过期（10 分钟内有效）。请照短信再输一次；"
            "输错 5 次后这个验证码就不能用了，请点“重新获取验证码”。"
        ),
    )
    return _login_page(request, form, sent=True, status=401)
