from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.reports.actions import RISK_FIELDS
from timebank.reports.models import RiskRules

DATE = {"widget": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"), "input_formats": ["%Y-%m-%d"]}
MAX_DAYS = 3 * 366


class PeriodForm(forms.Form):
    date_from = forms.DateField(label=_("从"), required=False, **DATE)  # type: ignore[arg-type]
    date_to = forms.DateField(label=_("到"), required=False, **DATE)  # type: ignore[arg-type]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError(_("开始日期不能晚于结束日期。"))
        if start and end and (end - start) > dt.timedelta(days=MAX_DAYS):
            raise forms.ValidationError(_("一次最多看三年。"))
        return data


HELP = {
    "window_months": _("用最近几个月记入的服务时间来估算每月的服务能力。"),
    "default_reserve_age": _("总行规则里没有设定可支取储存时间的年龄时，用这个年龄。"),
    "max_months_to_honour": _("兑付欠会员的全部时间需要的月数超过这个数，就提醒。"),
    "max_unfilled_percent": _("没有派出志愿者的订单占比达到这个数，就提醒。"),
    "max_ageing_percent": _("100 表示：新到龄的志愿者多于新加入的志愿者，就提醒。"),
    "anomaly_daily_hours": _("给一个人一天记入的时间超过这么多小时，在看板的异常提醒里列出。"),
    "anomaly_yearly_hours": _("给一个人一年记入的时间超过这么多小时，在看板的异常提醒里列出。"),
}


class RiskRulesForm(forms.Form):
    """The thresholds, with the bounds the action enforces."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, (low, high) in RISK_FIELDS.items():
            self.fields[name] = forms.IntegerField(
                label=getattr(RiskRules._meta.get_field(name), "verbose_name", name),
                min_value=low,
                max_value=high,
                help_text=HELP[name],
            )
