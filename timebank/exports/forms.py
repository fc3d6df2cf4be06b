from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.lib import clock


class PeriodForm(forms.Form):
    """From – to, both dates; defaults to this year so far."""

    # A date input takes only ISO dates: the Chinese locale's 2026/01/01 would leave it empty (and required).
    start = forms.DateField(label=_("从"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    end = forms.DateField(label=_("到"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            raise forms.ValidationError(_("开始日期不能晚于结束日期。"))
        return data


def default_period() -> dict[str, dt.date]:
    today = clock.localdate()
    return {"start": today.replace(month=1, day=1), "end": today}
