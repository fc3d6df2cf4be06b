"""The settlement page's form. It checks the shape of what was typed; the action checks the rules."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.web.forms import Form


class SettlementForm(Form):
    period_end = forms.DateField(
        label=_("结算截止日期"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
        help_text=_("这一天结束前存入的时间参加结算。不能晚于今天。"),
    )

    def clean_period_end(self) -> dt.date:
        day: dt.date = self.cleaned_data["period_end"]
        if day > timezone.localdate():
            raise forms.ValidationError(_("结算日期不能晚于今天。"))
        if day < dt.date(2000, 1, 1):
            raise forms.ValidationError(_("日期太早了。"))
        return day
