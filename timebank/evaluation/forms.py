"""The evaluation pages' forms: they check the shape of what was typed; the actions check the rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.evaluation.models import Indicator, PenaltyKind
from timebank.web.forms import Form

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _score(label: Any, *, help_text: Any = "") -> forms.DecimalField:
    return forms.DecimalField(
        label=label, min_value=Decimal(0), max_value=Decimal(100), decimal_places=1, max_digits=4, help_text=help_text
    )


def _weight(label: Any) -> forms.IntegerField:
    return forms.IntegerField(label=label, min_value=0, max_value=100)


class RulesForm(Form):
    third_party_weight = _weight(_("第三方评估权重"))
    self_weight = _weight(_("自我评估权重"))
    satisfaction_weight = _weight(_("服务对象满意度权重"))
    complaint_deduction = forms.DecimalField(
        label=_("每条成立的投诉扣分"), min_value=Decimal(0), max_value=Decimal(100), decimal_places=1, max_digits=4
    )
    star_hold_rating_below = forms.DecimalField(
        label=_("平均评分低于多少时星级降一级"),
        min_value=Decimal(0),
        max_value=Decimal(5),
        decimal_places=2,
        max_digits=3,
    )
    star_min_reviews = forms.IntegerField(label=_("至少有多少次评价才看评分"), min_value=0, max_value=100)
    star_hold_complaints = forms.IntegerField(
        label=_("一年内成立的投诉达到几条时星级降一级"),
        min_value=0,
        max_value=100,
        help_text=_("填 0 表示投诉不影响星级。"),
    )


class IndicatorForm(Form):
    code = forms.SlugField(
        label=_("代码"), max_length=40, help_text=_("英文小写字母、数字和下划线，例如 service_quality。")
    )
    name = forms.CharField(label=_("指标名称"), max_length=50)
    weight = _weight(_("权重"))
    description = forms.CharField(label=_("说明"), max_length=500, required=False)


class AssessForm(Form):
    year = forms.IntegerField(label=_("年度"), min_value=2000, max_value=2100)
    note = forms.CharField(label=_("评语"), max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, indicators: list[Indicator], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for indicator in indicators:
            self.fields[f"score_{indicator.pk}"] = _score(
                indicator.name,
                help_text=_("0 到 100 分，权重 %(weight)s。") % {"weight": indicator.weight},
            )

    def scores(self) -> dict[int, Decimal]:
        return {
            int(name.removeprefix("score_")): value
            for name, value in self.cleaned_data.items()
            if name.startswith("score_")
        }


class SelfAssessForm(Form):
    year = forms.IntegerField(label=_("年度"), min_value=2000, max_value=2100)
    score = _score(_("自评分"), help_text=_("0 到 100 分：给自己这一年的服务打个分。"))
    summary = forms.CharField(
        label=_("这一年的服务小结"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 4})
    )


class ComplaintForm(Form):
    org = forms.TypedChoiceField(
        label=_("投诉的机构"), coerce=int, required=False, help_text=_("投诉志愿者时可以不选。")
    )
    volunteer = forms.TypedChoiceField(label=_("投诉的志愿者"), coerce=int, required=False, empty_value=None)
    complainant = forms.CharField(label=_("投诉人"), max_length=50, required=False)
    text = forms.CharField(label=_("投诉内容"), max_length=2000, widget=forms.Textarea(attrs={"rows": 4}))

    def __init__(
        self, *args: Any, orgs: list[tuple[Any, str]], volunteers: list[tuple[Any, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._choice("org").choices = [("", _("（不选）")), *orgs]
        self._choice("volunteer").choices = [("", _("（不选）")), *volunteers]


class FollowUpForm(Form):
    note = forms.CharField(label=_("跟进情况"), max_length=1000, widget=forms.Textarea(attrs={"rows": 3}))


class DecideForm(Form):
    outcome = forms.ChoiceField(
        label=_("结论"), choices=[("upheld", _("投诉成立")), ("dismissed", _("投诉不成立"))], widget=forms.RadioSelect
    )
    note = forms.CharField(label=_("认定理由"), max_length=1000, widget=forms.Textarea(attrs={"rows": 3}))


class PenaltyForm(Form):
    volunteer = forms.TypedChoiceField(label=_("志愿者"), coerce=int)
    kind = forms.ChoiceField(label=_("处理方式"), choices=PenaltyKind.choices)
    reason = forms.CharField(label=_("理由"), max_length=1000, widget=forms.Textarea(attrs={"rows": 3}))
    complaint = forms.TypedChoiceField(label=_("依据的投诉"), coerce=int, required=False, empty_value=None)
    starts_on = forms.DateField(label=_("开始日期"), required=False, widget=DATE, help_text=_("不填就是今天。"))
    ends_on = forms.DateField(
        label=_("结束日期"), required=False, widget=DATE, help_text=_("只用于暂停派单；不填就一直暂停，直到解除。")
    )

    def __init__(
        self, *args: Any, volunteers: list[tuple[Any, str]], complaints: list[tuple[Any, str]], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._choice("volunteer").choices = volunteers
        self._choice("complaint").choices = [("", _("（没有）")), *complaints]


class LiftForm(Form):
    reason = forms.CharField(label=_("解除理由"), max_length=500)


class CorrectionForm(Form):
    transaction = forms.TypedChoiceField(label=_("要冲正的存入"), coerce=int)
    reason = forms.CharField(
        label=_("冲正理由"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("会写进账目，志愿者能看到。"),
    )

    def __init__(self, *args: Any, credits: list[tuple[Any, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("transaction").choices = credits


class YearForm(Form):
    year = forms.IntegerField(label=_("年度"), min_value=2000, max_value=2100)
