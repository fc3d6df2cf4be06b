"""The one-screen entry of an activity's paper sign-in sheet (issue 13 "Paper mode"): every confirmed sign-up
(name, phone masked as on the printed sheet, teams/sheet.py, whose QR code opens this page) with 到场/缺席/未填
and optional minutes; one submit marks every filled row through `do_mark_attendance`, all or nothing, once.
The same access as marking one person's attendance (`access_activity(manage=True)`); the orders' day sheet
(orders/views_sheets.py) works the same way."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from timebank.lib.errors import ApiError, NotFound
from timebank.lib.masking import mask_phone
from timebank.ops.idempotency import form_once
from timebank.orders.sheets import SheetRefused
from timebank.orgs.scope import user_of
from timebank.teams import actions
from timebank.teams.access import access_activity
from timebank.teams.models import Activity, ActivitySignup, SignupStatus
from timebank.web.forms import Form, new_idempotency_key
from timebank.web.views.common import add_form_error, explain, page

PRESENT, ABSENT, BLANK = "present", "absent", ""
MARKS = ((BLANK, _("未填")), (PRESENT, _("到场")), (ABSENT, _("缺席")))
MAX_ROWS = 500


def confirmed_signups(activity: Activity) -> Any:
    """The sheet's rows: the confirmed sign-ups, in the printed sheet's order (teams/sheet.py)."""
    return (
        ActivitySignup.objects.filter(activity=activity, status=SignupStatus.CONFIRMED)
        .select_related("member")
        .order_by("queued_at", "pk")
    )


class ActivitySheetForm(Form):
    """The hidden key and, per sign-up (by member id), the mark and the minutes as written on the sheet."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    def __init__(self, *args: Any, signups: list[ActivitySignup], **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", new_idempotency_key())
        super().__init__(*args, **kwargs)
        self.signups = signups
        for s in signups:
            self.fields[f"m{s.member_id}_mark"] = forms.ChoiceField(label=_("出勤"), choices=MARKS, required=False)
            self.fields[f"m{s.member_id}_minutes"] = forms.IntegerField(
                label=_("分钟数（可不填）"), required=False, min_value=1, max_value=24 * 60
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for s in self.signups:
            # Minutes belong to someone who came: beside 缺席 or 未填 they are a slip of the pen, not a guess.
            if data.get(f"m{s.member_id}_minutes") is not None and data.get(f"m{s.member_id}_mark") != PRESENT:
                self.add_error(f"m{s.member_id}_minutes", _("只有到场的才记分钟数。"))
        return data

    def marks(self) -> list[actions.SheetMark]:
        return [
            actions.SheetMark(s.member, mark == PRESENT, self.cleaned_data.get(f"m{s.member_id}_minutes"))
            for s in self.signups
            if (mark := self.cleaned_data.get(f"m{s.member_id}_mark")) in (PRESENT, ABSENT)
        ]


def _posted_signups(request: HttpRequest, activity: Activity) -> list[ActivitySignup]:
    """The rows the submitted page showed (its hidden `member` ids), each a confirmed sign-up of this activity
    (else 404: someone else's member is not on this sheet)."""
    raw = request.POST.getlist("member")
    if len(raw) > MAX_ROWS or not all(r.isdigit() and len(r) <= 18 for r in raw):
        raise NotFound(_("签到表上没有这位志愿者。"), code="member_not_found")
    ids = {int(r) for r in raw}
    signups = list(confirmed_signups(activity).filter(member_id__in=ids))
    if len(signups) != len(ids):
        raise NotFound(_("签到表上没有这位志愿者。"), code="member_not_found")
    return signups


def _render(request: HttpRequest, activity: Activity, form: ActivitySheetForm, status: int = 200) -> HttpResponse:
    rows = [
        {
            "key": s.member_id,
            "signup": s,
            "phone": mask_phone(s.member.phone) if s.member.phone else "",
            "cells": [form[f"m{s.member_id}_mark"], form[f"m{s.member_id}_minutes"]],
        }
        for s in form.signups
    ]
    context = {"activity": activity, "form": form, "rows": rows}
    return render(request, "teams/activity_sheet_entry.html", context, status=status)


@require_http_methods(["GET", "POST"])
@page("login")
def activity_sheet_entry(request: HttpRequest, activity_id: int) -> HttpResponse:
    """GET: the confirmed sign-ups. POST: mark every filled row, once (the hidden key); a refused row: nothing
    written, 422, the refusal beside that row and every typed value kept."""
    user = user_of(request)
    activity = access_activity(user, activity_id, manage=True)
    if request.method != "POST":
        return _render(request, activity, ActivitySheetForm(signups=list(confirmed_signups(activity))))
    form = ActivitySheetForm(request.POST, signups=_posted_signups(request, activity))
    if form.is_valid():
        marks = form.marks()
        if not marks:
            form.add_error(None, _("签到表上没有填写任何人的出勤。"))
        else:
            try:
                with form_once(request, form.cleaned_data["idempotency_key"], f"teams.sheet.{activity.pk}") as once:
                    if once.replay is None:
                        done = actions.do_enter_activity_sheet(user, activity, marks)
                        once.keep(",".join(str(s.pk) for s in done))
            except SheetRefused as refused:
                for member_id, (_action, exc) in refused.errors.items():
                    field = "minutes" if "minutes" in exc.fields else "mark"
                    form.add_error(f"m{member_id}_{field}", explain(exc))
            except ApiError as exc:
                add_form_error(form, exc)
    if form.errors:
        return _render(request, activity, form, status=422)
    messages.success(request, _("签到表已录入。"))
    return redirect(reverse("teams:activity", args=[activity.pk]))
