"""Anonymising a member who left (`POST /api/v1/members/{id}/anonymise`) from the pages: staff of the member's
home subtree (access_member_to_manage), from the member's page once the member has left. It cannot be undone, so
the page first names the member and what will be removed, and acts only on an explicit confirmation. The action
(do_anonymise_member) writes the audit row; a double submit of one confirmation acts once."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from timebank.members.access import access_member_to_manage
from timebank.members.actions import do_anonymise_member
from timebank.members.forms_staff import KeyedForm
from timebank.members.models import MemberStatus
from timebank.ops.idempotency import submit_once
from timebank.orgs.scope import user_of
from timebank.web.views.common import page


class AnonymiseForm(KeyedForm):
    confirm = forms.BooleanField(
        label=_("我已核对姓名，确认注销这位会员的个人信息，知道这不能撤销"),
        error_messages={"required": _("请先勾选确认。")},
    )


@never_cache
@page("workbench")
def staff_member_anonymise(request: HttpRequest, member_id: int) -> HttpResponse:
    """GET: the confirmation naming the member; POST (with `confirm`): anonymise them."""
    user = user_of(request)
    member = access_member_to_manage(user, member_id)
    back = reverse("web:staff_member", kwargs={"member_id": member.pk})
    form = AnonymiseForm(request.POST if request.method == "POST" else None)

    def again(status: int) -> HttpResponse:
        context = {"m": member, "form": form, "back": back, "left": member.status == MemberStatus.LEFT}
        return render(request, "members/staff/anonymise.html", context, status=status)

    if request.method != "POST":
        return again(200)
    return submit_once(
        request,
        form,
        "members.anonymise",
        lambda _data: do_anonymise_member(user, member),
        success=_("已注销。这位会员的个人信息已删除，时间账户和记录保留。"),
        done=lambda _kept: redirect(back),
        again=again,
    )
