"""The pages' forms for federation (issue 16): sending minutes to a member of a peer node."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.orders.forms import TransferForm


class FederatedTransferForm(TransferForm):
    """The gift form of 转赠 (hours, extra minutes, memo, a form key), plus the peer node, and the receiver's member
    number and name there."""

    peer = forms.TypedChoiceField(label=_("对方所在的时间银行"), coerce=int)
    to_account = forms.CharField(
        label=_("收款人在对方的会员编号"),
        max_length=64,
        help_text=_("请向收款的家人要他在那边时间银行的会员编号。"),
    )
    to_name = forms.CharField(label=_("收款人姓名"), max_length=100, help_text=_("要和会员编号对应的姓名完全一致。"))

    field_order = ["peer", "to_account", "to_name", "hours", "minutes", "memo"]

    def __init__(self, *args: Any, peers: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, relatives=None, **kwargs)
        self._choice("peer").choices = peers
        self.fields["to_account"].widget.attrs["inputmode"] = "numeric"
        self.order_fields(self.field_order)

    def clean_to_account(self) -> str:
        value = str(self.cleaned_data["to_account"]).strip()
        if not value.isdigit():
            raise forms.ValidationError(_("会员编号只能是数字。"))
        return value


class ReconcileForm(forms.Form):
    date = forms.DateField(label=_("核对哪一天"), widget=forms.DateInput(attrs={"type": "date"}))
