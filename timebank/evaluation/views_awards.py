"""Defining the kinds of yearly award from the pages (head-office admins): a bank's award kinds with a form for a
new one (`POST /api/v1/orgs/{id}/award-kinds`) and a kind's page to change it (`PATCH /api/v1/award-kinds/{id}`),
opened from the awards page. Guarded by the endpoints' access functions (access_bank_settings and
access_award_kind with write=True) and calling their actions; a double submit of one rendered form acts once."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from timebank.evaluation import access, actions
from timebank.evaluation.models import AwardBasis, AwardKind, AwardSubject
from timebank.members.forms_staff import KeyedForm
from timebank.ops.idempotency import submit_once
from timebank.orgs.scope import user_of
from timebank.web.views.common import page

FIELDS = ("name", "basis", "winners", "bonus_minutes", "min_star_level", "active", "position")


class AwardKindEditForm(KeyedForm):
    """What `PATCH /api/v1/award-kinds/{id}` changes, named as there."""

    name = forms.CharField(label=_("表彰名称"), max_length=50, help_text=_("例如：最美志愿者"))
    basis = forms.ChoiceField(label=_("排名依据"), choices=AwardBasis.choices, initial=AwardBasis.COMBINED_SCORE)
    winners = forms.IntegerField(label=_("名额（人）"), min_value=1, max_value=actions.MAX_WINNERS, initial=10)
    bonus_minutes = forms.IntegerField(
        label=_("奖励时间（分钟）"),
        min_value=0,
        max_value=actions.MAX_BONUS_MINUTES,
        initial=0,
        help_text=_("确认获奖时存入每位获奖志愿者的时间账户；表彰组织的不存。不奖励时间填 0。"),
    )
    min_star_level = forms.IntegerField(
        label=_("最低星级"), min_value=0, max_value=10, initial=0, help_text=_("不限星级填 0。")
    )
    active = forms.BooleanField(label=_("启用"), required=False, initial=True)
    position = forms.IntegerField(
        label=_("排列顺序"), min_value=0, max_value=1000, initial=0, help_text=_("数字小的排在前面。")
    )

    def kind_input(self, **extra: Any) -> actions.AwardKindInput:
        data = self.cleaned_data
        return actions.AwardKindInput(**{f: data[f] for f in FIELDS}, **extra)


class AwardKindForm(AwardKindEditForm):
    """A new kind (`POST /api/v1/orgs/{id}/award-kinds`): also its `code` and `subject`, fixed once made."""

    code = forms.CharField(
        label=_("代码"), max_length=40, help_text=_("英文字母、数字和下划线，例如 best_volunteer；建好后不能改。")
    )
    subject = forms.ChoiceField(label=_("表彰对象"), choices=AwardSubject.choices, initial=AwardSubject.VOLUNTEER)

    field_order = ["name", "code", "subject", "basis", "winners", "bonus_minutes", "min_star_level", "active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_new_%s")
        super().__init__(*args, **kwargs)


@never_cache
@page("login")
def award_kinds(request: HttpRequest, bank_id: int) -> HttpResponse:
    """A bank's award kinds, active or not, and a new one: head-office admins of the bank."""
    user = user_of(request)
    bank = access.access_bank_settings(user, bank_id, write=True)
    form = AwardKindForm(request.POST if request.method == "POST" else None)

    def again(status: int) -> HttpResponse:
        kinds = list(AwardKind.objects.filter(bank=bank).order_by("position", "pk"))
        return render(
            request, "evaluation/award_kinds.html", {"bank": bank, "kinds": kinds, "form": form}, status=status
        )

    if request.method != "POST":
        return again(200)
    return submit_once(
        request,
        form,
        "evaluation.create_award_kind",
        lambda data: actions.do_create_award_kind(
            user, bank, form.kind_input(code=data["code"], subject=data["subject"])
        ),
        success=_("已建立表彰类别。"),
        done=lambda _kept: redirect("evaluation:award_kinds", bank_id=bank.pk),
        again=again,
    )


@never_cache
@page("login")
def award_kind(request: HttpRequest, kind_id: int) -> HttpResponse:
    """Change a kind: its name, basis, number of winners, bonus, star level, whether it is used, its place."""
    user = user_of(request)
    kind = access.access_award_kind(user, kind_id, write=True)
    initial = {f: getattr(kind, f) for f in FIELDS}
    form = AwardKindEditForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method != "POST":
        return render(request, "evaluation/award_kind.html", {"kind": kind, "form": form})
    return submit_once(
        request,
        form,
        "evaluation.update_award_kind",
        lambda _data: actions.do_update_award_kind(user, kind, form.kind_input()),
        success=_("已保存。"),
        done=lambda _kept: redirect("evaluation:award_kinds", bank_id=kind.bank_id),
        again=lambda status: render(request, "evaluation/award_kind.html", {"kind": kind, "form": form}, status=status),
    )
