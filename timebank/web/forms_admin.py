"""Forms of the outlet counter, the member's goods pages and the management pages (settlement, rules, funds,
safety, catalogue and menu). They check the shape of what was typed; the actions check the rules."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.catalogue.models import Category, CertificateKind, Tier
from timebank.funds.models import Direction, ExpenseKind, Fund, Source
from timebank.funds.money import parse_money
from timebank.goods.actions import MAX_PRICE, MAX_STOCK
from timebank.orgs import rules as rule_registry
from timebank.safety.models import TrainingKind
from timebank.web.forms import Form

# A voucher's QR code carries "TBV:" and 16 hex digits; people typing it may add spaces or dashes.
VOUCHER_TEXT = re.compile(r"^[0-9a-f]{4,40}$")


def clean_voucher_code(raw: str) -> str:
    code = re.sub(r"[\s\-]", "", raw).lower().removeprefix("tbv:")
    if not VOUCHER_TEXT.match(code):
        raise forms.ValidationError(_("兑换码由数字 0–9 和字母 a–f 组成，请对照兑换券再输一次。"))
    return code


class FindMemberForm(Form):
    q = forms.CharField(label=_("会员姓名或电话"), required=False, max_length=50)


class VoucherForm(Form):
    code = forms.CharField(
        label=_("兑换码"),
        max_length=60,
        help_text=_("输入兑换券上的兑换码（16 位），或用手机摄像头扫二维码。"),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "off", "spellcheck": "false"}),
    )

    def clean_code(self) -> str:
        return clean_voucher_code(self.cleaned_data["code"])


class GoodsForm(Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    name = forms.CharField(label=_("物品名称"), max_length=100)
    price_minutes = forms.IntegerField(
        label=_("兑换价格（分钟）"), min_value=1, max_value=MAX_PRICE, help_text=_("60 分钟 = 1 小时。")
    )
    stock = forms.IntegerField(label=_("现有数量"), min_value=0, max_value=MAX_STOCK, initial=0)


class RestockForm(Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    quantity = forms.IntegerField(label=_("入库数量"), min_value=1, max_value=MAX_STOCK)
    note = forms.CharField(label=_("备注（可以不填）"), required=False, max_length=200)


class CountForm(Form):
    counted = forms.IntegerField(label=_("盘点实有数量"), min_value=0, max_value=MAX_STOCK)
    note = forms.CharField(label=_("备注（可以不填）"), required=False, max_length=200)


class CounterRedeemForm(Form):
    """At the counter: staff choose the member (found by a search) and the goods."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    member = forms.TypedChoiceField(label=_("为哪位会员兑换"), coerce=int, widget=forms.RadioSelect)
    goods = forms.TypedChoiceField(label=_("物品"), coerce=int)
    quantity = forms.IntegerField(label=_("数量"), min_value=1, max_value=1000, initial=1)

    def __init__(self, *args: Any, members: list[tuple[int, str]], goods: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("member").choices = members
        self._choice("goods").choices = [("", _("请选择")), *goods]
        self.fields["quantity"].widget.attrs["inputmode"] = "numeric"


class CardRedeemForm(Form):
    """At the counter, for a member of another community: the member card's number and code, then the goods."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    card = forms.IntegerField(label=_("会员号"), min_value=1, max_value=10**17)
    member_code = forms.RegexField(
        label=_("卡码"),
        regex=r"^[0-9 -]{8,20}$",
        max_length=20,
        help_text=_("会员卡上的 8 位卡码，或请会员念出来。"),
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}),
    )
    goods = forms.TypedChoiceField(label=_("物品"), coerce=int)
    quantity = forms.IntegerField(label=_("数量"), min_value=1, max_value=1000, initial=1)

    def __init__(self, *args: Any, goods: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("goods").choices = [("", _("请选择")), *goods]
        self.fields["card"].widget.attrs["inputmode"] = "numeric"
        self.fields["quantity"].widget.attrs["inputmode"] = "numeric"


class MemberRedeemForm(Form):
    """The member's own redemption: which goods, how many."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    goods = forms.TypedChoiceField(label=_("想换什么"), coerce=int, widget=forms.RadioSelect)
    quantity = forms.IntegerField(label=_("数量"), min_value=1, max_value=1000, initial=1)

    def __init__(self, *args: Any, goods: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("goods").choices = goods
        self.fields["quantity"].widget.attrs["inputmode"] = "numeric"


# Settlement ---------------------------------------------------------------------------------------------


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


# Rules --------------------------------------------------------------------------------------------------


class RulesForm(Form):
    """Built from the rules' registry: one field per rule (three for the multipliers), grouped by fieldset.
    The action checks the values (thresholds increasing, ...); the view puts its refusal next to the field."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields.update(rule_registry.form_fields())

    def fieldsets(self) -> list[tuple[Any, list[Any]]]:
        return [(legend, [self[name] for name in names]) for legend, names in rule_registry.fieldsets()]

    @staticmethod
    def aliases() -> dict[str, str]:
        return rule_registry.form_aliases()

    @staticmethod
    def initial_for(rules: Any) -> dict[str, Any]:
        return rule_registry.initial(rules)

    def changes(self) -> dict[str, Any]:
        """What `do_update_rules` stores, in the API's shapes (multipliers as numbers)."""
        return rule_registry.from_form(self.cleaned_data)


# Funds --------------------------------------------------------------------------------------------------

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
        if day > timezone.localdate():
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


# Safety -------------------------------------------------------------------------------------------------

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


# Catalogue and menu -------------------------------------------------------------------------------------


class ServiceItemForm(Form):
    name = forms.CharField(label=_("服务项目名称"), max_length=100)
    category = forms.ChoiceField(label=_("服务类别"), choices=[("", _("请选择")), *Category.choices])
    tier = forms.ChoiceField(
        label=_("服务等级"),
        choices=Tier.choices,
        widget=forms.RadioSelect,
        help_text=_("等级决定 1 小时服务记多少时间（见规则里的倍数）。"),
    )
    requires_certificate = forms.ChoiceField(
        label=_("需要的证书"), required=False, choices=[("", _("不需要")), *CertificateKind.choices]
    )
    description = forms.CharField(label=_("说明（可以不填）"), required=False, max_length=500)


class MenuEntryForm(Form):
    offered = forms.BooleanField(label=_("本社区提供这项服务"), required=False)
    times = forms.CharField(label=_("服务时间（可以不填）"), required=False, max_length=200)
    place = forms.CharField(label=_("服务地点（可以不填）"), required=False, max_length=200)
