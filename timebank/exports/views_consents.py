"""A member's own separate consents (单独同意) from the pages: what they have given or withdrawn, scope by scope,
and the form to give or withdraw one (`POST /api/v1/me/consents`: the member themselves, access_own_member;
do_record_consent with the channel `web`). Opened from "我的时间" (its downloads section). A double submit of one
rendered form records once."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from timebank.exports.access import access_own_member
from timebank.members.actions import current_consents, do_record_consent
from timebank.members.forms_staff import KeyedForm
from timebank.members.models import ConsentScope
from timebank.ops.idempotency import submit_once
from timebank.orgs.scope import user_of
from timebank.web.views.common import page


class MyConsentForm(KeyedForm):
    """`scope` and `granted`, as `POST /api/v1/me/consents` names them."""

    scope = forms.ChoiceField(label=_("哪一项"), choices=ConsentScope.choices, widget=forms.RadioSelect)
    granted = forms.TypedChoiceField(
        label=_("我的意见"),
        choices=[("true", _("我同意")), ("false", _("我不同意（撤回同意）"))],
        coerce=lambda value: value == "true",
        widget=forms.RadioSelect,
    )


@never_cache
@page("member")
def my_consents(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    member = access_own_member(user)
    form = MyConsentForm(request.POST if request.method == "POST" else None)

    def again(status: int) -> HttpResponse:
        consents = [(ConsentScope(scope).label, c) for scope, c in current_consents(member).items()]
        context = {"member": member, "consents": consents, "form": form}
        return render(request, "exports/my_consents.html", context, status=status)

    if request.method != "POST":
        return again(200)
    return submit_once(
        request,
        form,
        "members.my_consent",
        lambda data: do_record_consent(user, member, scope=data["scope"], granted=data["granted"], channel="web"),
        success=_("已记录您的意见。"),
        done=lambda _kept: redirect("exports:my_consents"),
        again=again,
    )
