"""The safety lists' forms: expiry filters, training sessions and attendance. They check the shape of what was
typed; the actions check the rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.catalogue.models import CertificateKind
from timebank.safety.models import TrainingKind
from timebank.web.forms import Form

DAYS_CHOICES = [(7, _("7 天内")), (30, _("30 天内")), (60, _("60 天内")), (90, _("90 天内"))]


class AlertFilterForm(Form):
    status = forms.ChoiceField(
        label=_("显示"),
        required=False,
        choices=[("", _("全部")), ("uninsured", _("没有保险")), ("expiring", _("保险快到期"))],
    )
    days = forms.TypedChoiceField(label=_("到期时间"), coerce=int, required=False, choices=DAYS_CHOICES)


class DaysForm(Form):
    days = forms.TypedChoiceField(label=_("到期时间"), coerce=int, required=False, choices=DAYS_CHOICES)


class TrainingForm(Form):
    org = forms.TypedChoiceField(label=_("举办单位"), coerce=int)
    title = forms.CharField(label=_("培训名称"), max_length=100)
    held_on = forms.DateField(
        label=_("培训日期"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
    )
    kind = forms.ChoiceField(label=_("培训类型"), choices=TrainingKind.choices, initial=TrainingKind.GENERAL)
    place = forms.CharField(label=_("地点（可以不填）"), required=False, max_length=200)
    trainer = forms.CharField(label=_("授课人（可以不填）"), required=False, max_length=50)
    topic = forms.CharField(label=_("内容（可以不填）"), required=False, max_length=500)
    grants_certificate = forms.ChoiceField(
        label=_("考核通过后发的证书"),
        required=False,
        choices=[("", _("不发证书")), *CertificateKind.choices],
    )
    certificate_valid_years = forms.IntegerField(label=_("证书有效期（年）"), min_value=1, max_value=10, initial=3)

    def __init__(self, *args: Any, orgs: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("org").choices = orgs


RESULT_CHOICES = [("none", _("未考核")), ("passed", _("考核通过")), ("failed", _("考核未通过"))]


class AttendanceForm(Form):
    member = forms.TypedChoiceField(label=_("会员"), coerce=int)
    attended = forms.BooleanField(label=_("参加了培训"), required=False, initial=True)
    result = forms.ChoiceField(label=_("考核结果"), choices=RESULT_CHOICES, initial="none")
    score = forms.DecimalField(
        label=_("分数（可以不填）"), required=False, min_value=0, max_value=100, max_digits=4, decimal_places=1
    )
    note = forms.CharField(label=_("备注（可以不填）"), required=False, max_length=500)

    def __init__(self, *args: Any, members: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("member").choices = [("", _("请选择")), *members]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("attended") and (data.get("result") not in (None, "none") or data.get("score") is not None):
            self.add_error("result", _("没有参加培训的人不能有考核结果。"))
        if data.get("score") is not None and data.get("result") == "none":
            self.add_error("result", _("有分数就要写明考核是否通过。"))
        return data
