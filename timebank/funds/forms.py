"""The fund book's forms. They check the shape of what was typed; the actions check the rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.funds.models import Direction, ExpenseKind, Fund, Source
from timebank.funds.money import parse_money
from timebank.lib import clock
from timebank.web.forms import Form

# One choice for "what kind of money": an income's source or an expense's kind.
CATEGORY_CHOICES: list[Any] = [
    ("", _("请选择")),
    (_("收入"), [(f"income:{s.value}", s.label) for s in Source]),
    (_("支出"), [(f"expense:{k.value}", k.label) for k in ExpenseKind]),
]


class FundEntryForm(Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    category = forms.ChoiceField(label=_("收入来源或支出类别"), choices=CATEGORY_CHOICES)
    amount = forms.CharField(label=_("金额（元）"), max_length=20, help_text=_("例如 1280 或 1280.50，最多两位小数。"))
    occurred_on = forms.DateField(
        label=_("日期"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
    )
    fund = forms.ChoiceField(label=_("记入哪项资金"), choices=Fund.choices, initial=Fund.GENERAL)
    description = forms.CharField(label=_("说明（可以不填）"), required=False, max_length=500)
    donor_name = forms.CharField(
        label=_("捐赠企业（可以不填）"),
        required=False,
        max_length=100,
        help_text=_("只写企业名称，会在公示里出现。个人捐款请选“居民筹集”，不写姓名。"),
    )
    provider = forms.CharField(label=_("收款机构（支出时可填）"), required=False, max_length=100)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["amount"].widget.attrs.update({"inputmode": "decimal", "autocomplete": "off"})

    def clean_amount(self) -> Decimal:
        try:
            return parse_money(self.cleaned_data["amount"].strip())
        except ValueError:
            raise forms.ValidationError(_("金额应大于 0、不超过 1 亿元，最多两位小数，例如 1280.50。")) from None

    def clean_occurred_on(self) -> dt.date:
        day: dt.date = self.cleaned_data["occurred_on"]
        if day > clock.localdate():
            raise forms.ValidationError(_("日期不能在将来。"))
        return day

    def direction_and_code(self) -> tuple[str, str]:
        direction, _sep, code = self.cleaned_data["category"].partition(":")
        return direction, code

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("category"):
            direction, _code = self.direction_and_code()
            if direction == Direction.EXPENSE and data.get("donor_name"):
                self.add_error("donor_name", _("只有收入才有捐赠方。"))
            if direction == Direction.INCOME and data.get("provider"):
                self.add_error("provider", _("收入不填收款机构。"))
        return data


class ReverseForm(Form):
    reason = forms.CharField(label=_("冲正原因"), max_length=500)


def _money(value: str) -> Decimal:
    try:
        return parse_money(value.strip())
    except ValueError:
        raise forms.ValidationError(_("金额应大于 0、不超过 1 亿元，最多两位小数，例如 1280.50。")) from None


def _past_day(day: dt.date) -> dt.date:
    if day > clock.localdate():
        raise forms.ValidationError(_("日期不能在将来。"))
    return day


class InKindForm(Form):
    """A donation in kind (`POST /funds/in-kind`), booked at its estimated value: the API's fields."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    item_description = forms.CharField(
        label=_("捐赠的物品"), max_length=200, help_text=_("例如：大米 20 袋、食用油 10 桶。")
    )
    estimated_value = forms.CharField(
        label=_("折价（元）"), max_length=20, help_text=_("按市场价估算的总值，例如 1280 或 1280.50。")
    )
    source = forms.ChoiceField(label=_("来源"), choices=[("", _("请选择")), *Source.choices])
    donor_name = forms.CharField(
        label=_("捐赠企业（可以不填）"),
        required=False,
        max_length=100,
        help_text=_("只写企业名称，会在公示里出现。个人捐赠请选“居民筹集”，不写姓名。"),
    )
    occurred_on = forms.DateField(
        label=_("收到的日期"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
    )
    fund = forms.ChoiceField(label=_("记入哪项资金"), choices=Fund.choices, initial=Fund.GENERAL)
    description = forms.CharField(label=_("说明（可以不填）"), required=False, max_length=500)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["estimated_value"].widget.attrs.update({"inputmode": "decimal", "autocomplete": "off"})

    def clean_estimated_value(self) -> Decimal:
        return _money(self.cleaned_data["estimated_value"])

    def clean_occurred_on(self) -> dt.date:
        return _past_day(self.cleaned_data["occurred_on"])


class BuyServiceForm(Form):
    """Buy an unfilled order's service from the emergency fund (`POST /orders/{id}/buy-service`): the API's
    fields; `org_id` is the order's org or one above it whose fund pays."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    provider = forms.CharField(label=_("服务机构"), max_length=100, help_text=_("提供这次服务的家政公司或机构的名称。"))
    amount = forms.CharField(label=_("金额（元）"), max_length=20, help_text=_("付给服务机构的钱，例如 80 或 80.50。"))
    org_id = forms.TypedChoiceField(label=_("由哪一级的专项基金支付"), coerce=int)
    occurred_on = forms.DateField(
        label=_("付款日期"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
    )
    unfillable = forms.BooleanField(
        label=_("无法由志愿者完成"),
        required=False,
        help_text=_("还没到规定的派单时间，但确实没有志愿者能接时勾选，并在下面说明原因。"),
    )
    note = forms.CharField(label=_("说明"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, orgs: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("org_id").choices = orgs
        self.fields["amount"].widget.attrs.update({"inputmode": "decimal", "autocomplete": "off"})

    def clean_amount(self) -> Decimal:
        return _money(self.cleaned_data["amount"])

    def clean_occurred_on(self) -> dt.date:
        return _past_day(self.cleaned_data["occurred_on"])


class StockForm(Form):
    """The optional `stock` of a donation in kind: put the goods on an outlet's shelf in the same step. Its inputs
    are named as the API's nested fields (`stock.outlet_id`, `stock.quantity`, ...)."""

    outlet_id = forms.TypedChoiceField(label=_("放到哪个网点"), coerce=int, required=False, empty_value=None)
    quantity = forms.IntegerField(label=_("入库数量"), required=False, min_value=1, max_value=1_000_000)
    goods_id = forms.IntegerField(
        label=_("补充已有物品的编号（可以不填）"),
        required=False,
        min_value=1,
        max_value=2**31 - 1,
        help_text=_("网点已经有这种物品时填它的编号；新物品请填下面的名称和价格。"),
    )
    name = forms.CharField(label=_("新物品名称"), required=False, max_length=100)
    price_minutes = forms.IntegerField(label=_("兑换价格（分钟）"), required=False, min_value=1, max_value=100_000)

    def __init__(self, *args: Any, outlets: list[tuple[int, str]], **kwargs: Any) -> None:
        kwargs["prefix"] = "stock"
        super().__init__(*args, **kwargs)
        self._choice("outlet_id").choices = [("", _("不入库，只记账")), *outlets]

    def add_prefix(self, field_name: str) -> str:
        return f"{self.prefix}.{field_name}" if self.prefix else field_name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("outlet_id") is not None and data.get("quantity") is None and "quantity" not in self.errors:
            self.add_error("quantity", _("请填写入库数量。"))
        return data
