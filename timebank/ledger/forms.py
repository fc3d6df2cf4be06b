"""The settlement, adjustment and reversal pages' forms. They check the shape of what was typed; the actions
check the rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.ledger.models import MEMBER_BUCKETS, AccountKind
from timebank.ledger.posting import MAX_MINUTES
from timebank.lib import clock
from timebank.web.forms import Form, new_idempotency_key


class SettlementForm(Form):
    period_end = forms.DateField(
        label=_("结算截止日期"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
        help_text=_("这一天结束前存入的时间参加结算。不能晚于今天。"),
    )

    def clean_period_end(self) -> dt.date:
        day: dt.date = self.cleaned_data["period_end"]
        if day > clock.localdate():
            raise forms.ValidationError(_("结算日期不能晚于今天。"))
        if day < dt.date(2000, 1, 1):
            raise forms.ValidationError(_("日期太早了。"))
        return day


class MemberSearchForm(Form):
    """Whom to pick: part of a name or a phone number."""

    q = forms.CharField(label=_("会员姓名或电话"), max_length=50, required=False)


class AdjustmentForm(Form):
    """An opening balance from a paper ledger, or a correction: the API's fields (`member_id`, `minutes`,
    `bucket`, `reason`). The action checks the rules (range, reason, balance floor, the approval gate)."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    member_id = forms.IntegerField(label=_("会员编号"), min_value=1, max_value=2**31 - 1)
    minutes = forms.IntegerField(
        label=_("时间（分钟）"), help_text=_("记入为正数，扣减为负数。纸质台账上的 1 小时写 60。")
    )
    bucket = forms.ChoiceField(
        label=_("时间账户"),
        choices=[(k.value, k.label) for k in MEMBER_BUCKETS],
        initial=AccountKind.EARNED,
    )
    reason = forms.CharField(label=_("原因"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("idempotency_key", new_idempotency_key())
        super().__init__(*args, **kwargs)


class WithdrawalForm(Form):
    """A service the member received and paid from stored time outside an order (支取): the API's fields
    (`member_id`, `minutes`, `memo`). The action checks the rules (the member active, the balance floor)."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    member_id = forms.IntegerField(label=_("会员编号"), min_value=1, max_value=2**31 - 1)
    minutes = forms.IntegerField(
        label=_("支取时间（分钟）"),
        min_value=1,
        max_value=MAX_MINUTES,
        help_text=_("从会员存下的时间里扣除。1 小时写 60。"),
    )
    memo = forms.CharField(
        label=_("备注"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("接受了什么服务，例如：助餐 2 次（纸质登记表）。"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("idempotency_key", new_idempotency_key())
        super().__init__(*args, **kwargs)


class ReversalForm(Form):
    """Reverse a transaction: the API's `reason`."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    reason = forms.CharField(label=_("冲正原因"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("idempotency_key", new_idempotency_key())
        super().__init__(*args, **kwargs)
