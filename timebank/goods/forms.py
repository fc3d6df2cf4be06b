"""Forms of the outlet counter and the member's goods pages. They check the shape of what was typed; the actions
check the rules."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.goods.actions import MAX_PRICE, MAX_STOCK
from timebank.web.forms import Form

# A voucher's QR code carries "TBV:" and its code: 8 digits (16 hex characters on vouchers issued before);
# people typing it may add spaces or dashes.
VOUCHER_TEXT = re.compile(r"^[0-9a-f]{4,40}$")


def clean_voucher_code(raw: str) -> str:
    code = re.sub(r"[\s\-]", "", raw).lower().removeprefix("tbv:")
    if not VOUCHER_TEXT.match(code):
        raise forms.ValidationError(
            _("兑换码是兑换券上的 8 位数字（早先的兑换券是 16 位数字和字母），请对照兑换券再输一次。")
        )
    return code


class FindMemberForm(Form):
    q = forms.CharField(label=_("会员姓名或电话"), required=False, max_length=50)


class VoucherForm(Form):
    code = forms.CharField(
        label=_("兑换码"),
        max_length=60,
        help_text=_("输入兑换券上的 8 位兑换码，或用手机摄像头扫二维码。"),
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
